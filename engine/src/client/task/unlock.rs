//! The driver's part of a locked room's key exchange: the passphrase stretched with the
//! salt the host's challenge names (off the async threads, once per salt), and the client's
//! side of [`crate::lock::cpace`], bound to this very TLS connection.

use super::{CloseReason, Driver};
use crate::client::session::Challenge;
use crate::lock::{cpace, RoomKey, Salt};
use crate::protocol::{self, ErrorCode};

impl Driver {
    /// Answers a locked room's challenge: stretches the passphrase with the room's salt
    /// (off the async threads; once per salt), then the client's side of the key exchange,
    /// bound to this TLS connection.
    pub(super) async fn answer(
        &mut self,
        challenge: &Challenge,
    ) -> Result<(protocol::UnlockAnswer, String), CloseReason> {
        let unusable = |what: &str| CloseReason::Refused {
            code: ErrorCode::BadFrame,
            message: format!("the host's challenge has an unusable {what}"),
        };
        let salt = Salt::from_hex(&challenge.salt).ok_or_else(|| unusable("salt"))?;
        let mut host_share = [0u8; 32];
        hex::decode_to_slice(&challenge.share, &mut host_share).map_err(|_| unusable("share"))?;
        let Some(passphrase) = self.passphrase.clone() else {
            return Err(unusable("room"));
        };
        let key = match self.key.as_ref().filter(|k| k.salt() == salt) {
            Some(key) => key.clone(),
            None => {
                let derived =
                    tokio::task::spawn_blocking(move || RoomKey::derive(&passphrase, &salt))
                        .await
                        .map_err(|_| unusable("salt"))?
                        .map_err(|e| CloseReason::Refused {
                            code: ErrorCode::PassphraseWrong,
                            message: e.to_string(),
                        })?;
                self.key = Some(derived.clone());
                derived
            }
        };
        // tls-server-end-point (RFC 5929): the SHA-256 of the certificate this connection's
        // host presented. Through a relay it is the relay's, and the exchange fails.
        let Some(binding) = self.host_key.map(|k| k.0) else {
            return Err(unusable("connection"));
        };
        let room = protocol::name_key(self.options.room.trim());
        let ctx = cpace::Context {
            binding: &binding,
            nonce: &challenge.nonce,
            room: &room,
        };
        let mut seed = [0u8; 64];
        getrandom::fill(&mut seed).expect("the system's random number generator works");
        let answer =
            cpace::answer(&key, &ctx, &host_share, &seed).map_err(|_| unusable("share"))?;
        Ok((
            protocol::UnlockAnswer {
                share: hex::encode(answer.share),
                tag: hex::encode(answer.tag),
            },
            hex::encode(answer.expected_host_tag),
        ))
    }
}
