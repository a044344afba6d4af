//! A client proving who it is and what it knows: a browser's `identify` (a signature over
//! the connection's nonce), and a locked room's key exchange (`unlock`, its `challenge`, and
//! the check of the answer in `join`; see [`crate::lock::cpace`]), with the wrong-guess
//! limits per address and per room.

use super::outbox::Stop;
use super::reader::{Reader, Unlocking};
use super::room::Room;
use crate::lock::cpace;
use crate::protocol::{self, ErrorCode, HostFrame, Invalid, UnlockAnswer};

impl Reader<'_> {
    /// A browser proves its key: an ECDSA P-256 signature over this connection's nonce. A
    /// client that presented a TLS certificate is that certificate already.
    pub(super) fn identify(&mut self, key: &str, sig: &str) -> Result<(), Stop> {
        let refuse = |why: &str| Invalid {
            code: ErrorCode::BadFrame,
            message: format!("identify: {why}"),
        };
        if self.identity.is_some() {
            return self.refuse(None, refuse("this connection has proved its key already"));
        }
        let (Ok(key), Ok(sig)) = (hex::decode(key), hex::decode(sig)) else {
            return self.refuse(None, refuse("key and sig must be hex"));
        };
        let mut signed = b"lanchat-identity-v1\0".to_vec();
        signed.extend_from_slice(self.nonce().as_bytes());
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &key,
        );
        if key.len() != 65 || public.verify(&signed, &sig).is_err() {
            return self.refuse(None, refuse("the signature does not verify"));
        }
        self.identity = Some(Box::new(crate::identity::Fingerprint::of(&key)));
        Ok(())
    }

    /// Starts a locked room's key exchange: the room's salt and the host's share. Past the
    /// limit of wrong passphrases (per address, per room), even starting must wait.
    pub(super) fn challenge(&mut self, id: &str, room: &str, bound: bool) -> Result<(), Stop> {
        let opener = self.client;
        let room = match self.conn.shared.rooms.get_or_create(room, opener) {
            Ok(room) => room,
            Err(invalid) => return self.refuse(Some(id), invalid),
        };
        let Some(key) = room.key() else {
            self.unlocking = None;
            return self.reply(&HostFrame::Challenge {
                id: id.to_owned(),
                salt: None,
                share: None,
            });
        };
        if let Err(invalid) = self.attempts_left(&room) {
            return self.refuse(Some(id), invalid);
        }
        let binding = self.binding(bound);
        let nonce = self.nonce();
        let name = protocol::name_key(room.name());
        let ctx = cpace::Context {
            binding: &binding,
            nonce: &nonce,
            room: &name,
        };
        let share = cpace::Share::random(&cpace::generator(key, &ctx));
        let frame = HostFrame::Challenge {
            id: id.to_owned(),
            salt: Some(key.salt().to_hex()),
            share: Some(hex::encode(share.public)),
        };
        self.unlocking = Some(Box::new(Unlocking {
            room: name,
            share,
            bound,
        }));
        self.reply(&frame)
    }

    /// The channel binding of a bound exchange: tls-server-end-point (RFC 5929), the
    /// SHA-256 of the host's certificate, which a relay cannot present without the host's
    /// key. Empty for an unbound one (browsers).
    fn binding(&self, bound: bool) -> Vec<u8> {
        if bound {
            self.conn.shared.key.0.to_vec()
        } else {
            Vec::new()
        }
    }

    /// A stable number for a room's name, for counting wrong passphrases per room.
    fn room_id(room: &Room) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        protocol::name_key(room.name()).hash(&mut hasher);
        hasher.finish()
    }

    fn attempts_left(&self, room: &Room) -> Result<(), Invalid> {
        let shared = &self.conn.shared;
        let now = std::time::Instant::now();
        let too_many = |wait: std::time::Duration, whose: &str| Invalid {
            code: ErrorCode::TooManyAttempts,
            message: format!(
                "too many wrong passphrases {whose}; try again in {} s",
                wait.as_secs() + 1
            ),
        };
        let mut attempts = shared.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(wait) = attempts.check(self.client, now) {
            return Err(too_many(wait, "from your address"));
        }
        drop(attempts);
        let mut room_attempts = shared
            .room_attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Err(wait) = room_attempts.check(Self::room_id(room), now) {
            return Err(too_many(wait, "for this room"));
        }
        Ok(())
    }

    /// Checks a join's answer to the key exchange against a locked room; the host's tag for
    /// the welcome if it proves the room key. Wrong answers are counted per address and per
    /// room. The exchange is used up either way: each attempt needs a new `unlock`.
    pub(super) fn unlock(
        &mut self,
        room: &Room,
        answer: Option<&UnlockAnswer>,
    ) -> Result<Option<[u8; 32]>, Invalid> {
        if room.key().is_none() {
            return Ok(None);
        }
        let required = || Invalid {
            code: ErrorCode::PassphraseRequired,
            message: format!(
                "room \"{}\" is locked: join it with its passphrase",
                room.name()
            ),
        };
        let answer = answer.ok_or_else(required)?;
        let name = protocol::name_key(room.name());
        let pending = self
            .unlocking
            .take()
            .filter(|u| u.room == name)
            .ok_or_else(required)?;
        self.attempts_left(room)?;
        let binding = self.binding(pending.bound);
        let nonce = self.nonce();
        let ctx = cpace::Context {
            binding: &binding,
            nonce: &nonce,
            room: &name,
        };
        let mut share = [0u8; 32];
        let mut tag = [0u8; 32];
        let decoded = hex::decode_to_slice(&answer.share, &mut share).is_ok()
            && hex::decode_to_slice(&answer.tag, &mut tag).is_ok();
        let checked = if decoded {
            cpace::check(&pending.share, &ctx, &share, &tag)
        } else {
            Err(cpace::ExchangeError::BadShare)
        };
        match checked {
            Ok(host_tag) => Ok(Some(host_tag)),
            Err(_) => {
                let shared = &self.conn.shared;
                let now = std::time::Instant::now();
                shared
                    .attempts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed(self.client, now);
                shared
                    .room_attempts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed(Self::room_id(room), now);
                tracing::info!(client = %self.client, room = room.name(), "wrong passphrase");
                Err(Invalid {
                    code: ErrorCode::PassphraseWrong,
                    message: format!("wrong passphrase for room \"{}\"", room.name()),
                })
            }
        }
    }
}
