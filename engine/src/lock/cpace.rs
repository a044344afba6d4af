//! The locked-room key exchange: CPace (draft-irtf-cfrg-cpace) on ristretto255, bound to the
//! host's certificate as the client's TLS connection presented it. Both sides derive a generator from the room key (the passphrase stretched
//! with the room's random salt), the channel binding and the host's per-connection nonce;
//! each sends a random multiple of it; both compute the same secret only if they used the
//! same room key, and confirm it with a tag over the whole transcript.
//!
//! What this gives (PROTOCOL.md, "Locked rooms", says it with the exact bytes):
//! - A recording holds nothing to test guesses against: the shares are random points, the
//!   tags are keyed by a Diffie-Hellman secret the recorder cannot compute.
//! - A host that does not know the passphrase cannot produce the host's tag; the client
//!   stops. Each connection lets a fake host (or a fake client) test one guess, no more,
//!   and the host counts wrong ones per address and per room.
//! - A relay cannot complete the exchange: the client's TLS leg shows the relay's certificate
//!   (the host's needs the host's key), so the two ends derive different generators.
//! - Nothing can be precomputed: the salt is random per room.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::RoomKey;

/// Domain separation for everything hashed here.
pub const DSI: &[u8] = b"lanchat-cpace-v1";

/// What both sides must agree on besides the room key.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The channel binding: the SHA-256 of the host's certificate as the TLS connection
    /// presented it (RFC 5929's `tls-server-end-point`), or empty for a browser, which
    /// cannot see it.
    pub binding: &'a [u8],
    /// The host's `hello` nonce, as sent (ASCII hex).
    pub nonce: &'a str,
    /// The room's name as the host compares names (`protocol::name_key`).
    pub room: &'a str,
}

/// A share that is not a valid, non-identity ristretto255 point, or a wrong tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("the other side's share is not a valid point")]
    BadShare,
    #[error("the passphrase does not match")]
    Mismatch,
}

/// One side's secret scalar and public share.
pub struct Share {
    scalar: Scalar,
    /// The compressed point, 32 bytes.
    pub public: [u8; 32],
}

fn length_prefixed(hash: &mut impl Digest, part: &[u8]) {
    hash.update((part.len() as u32).to_be_bytes());
    hash.update(part);
}

/// The generator: SHA-512 of the length-prefixed DSI, room key, binding, nonce and room,
/// mapped to ristretto255 (RFC 9496's element derivation).
pub fn generator(key: &RoomKey, ctx: &Context<'_>) -> RistrettoPoint {
    let mut hash = Sha512::new();
    for part in [
        DSI,
        key.secret(),
        ctx.binding,
        ctx.nonce.as_bytes(),
        ctx.room.as_bytes(),
    ] {
        length_prefixed(&mut hash, part);
    }
    RistrettoPoint::from_uniform_bytes(&hash.finalize().into())
}

impl Share {
    /// A share from 64 random bytes (reduced modulo the group order).
    pub fn from_seed(generator: &RistrettoPoint, seed: &[u8; 64]) -> Self {
        let scalar = Scalar::from_bytes_mod_order_wide(seed);
        let public = (scalar * generator).compress().to_bytes();
        Self { scalar, public }
    }

    pub fn random(generator: &RistrettoPoint) -> Self {
        let mut seed = [0u8; 64];
        getrandom::fill(&mut seed).expect("the system's random number generator works");
        Self::from_seed(generator, &seed)
    }

    /// The confirmation key both sides get from `self` and the other side's share.
    pub fn confirm_key(
        &self,
        other: &[u8; 32],
        transcript: &Transcript,
    ) -> Result<ConfirmKey, ExchangeError> {
        let point = CompressedRistretto(*other)
            .decompress()
            .ok_or(ExchangeError::BadShare)?;
        let secret = self.scalar * point;
        if secret == RistrettoPoint::default() {
            return Err(ExchangeError::BadShare);
        }
        let mut hash = Sha512::new();
        length_prefixed(&mut hash, b"lanchat-cpace-v1 confirm");
        length_prefixed(&mut hash, secret.compress().as_bytes());
        hash.update(&transcript.0);
        let digest = hash.finalize();
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest[..32]);
        Ok(ConfirmKey(key))
    }
}

/// Everything both sides saw, in order: DSI, binding, nonce, room, client's share, host's.
pub struct Transcript(Vec<u8>);

impl Transcript {
    pub fn new(ctx: &Context<'_>, client: &[u8; 32], host: &[u8; 32]) -> Self {
        let mut bytes = Vec::with_capacity(256);
        for part in [
            DSI,
            ctx.binding,
            ctx.nonce.as_bytes(),
            ctx.room.as_bytes(),
            client,
            host,
        ] {
            bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
            bytes.extend_from_slice(part);
        }
        Self(bytes)
    }
}

/// The key the confirmation tags are made with.
pub struct ConfirmKey([u8; 32]);

impl ConfirmKey {
    fn tag(&self, role: &[u8], transcript: &Transcript) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(role);
        mac.update(&transcript.0);
        mac.finalize().into_bytes().into()
    }

    /// The client's tag, sent in `join`.
    pub fn client_tag(&self, transcript: &Transcript) -> [u8; 32] {
        self.tag(b"client", transcript)
    }

    /// The host's tag, sent in `welcome`.
    pub fn host_tag(&self, transcript: &Transcript) -> [u8; 32] {
        self.tag(b"host", transcript)
    }

    /// Checks the client's tag in constant time.
    pub fn verify_client(&self, transcript: &Transcript, tag: &[u8]) -> Result<(), ExchangeError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"client");
        mac.update(&transcript.0);
        mac.verify_slice(tag).map_err(|_| ExchangeError::Mismatch)
    }
}

/// The client's side, given the host's challenge: the share and tag to send, and the host tag
/// to expect in the welcome.
pub struct ClientAnswer {
    pub share: [u8; 32],
    pub tag: [u8; 32],
    pub expected_host_tag: [u8; 32],
}

pub fn answer(
    key: &RoomKey,
    ctx: &Context<'_>,
    host_share: &[u8; 32],
    seed: &[u8; 64],
) -> Result<ClientAnswer, ExchangeError> {
    let share = Share::from_seed(&generator(key, ctx), seed);
    let transcript = Transcript::new(ctx, &share.public, host_share);
    let confirm = share.confirm_key(host_share, &transcript)?;
    Ok(ClientAnswer {
        share: share.public,
        tag: confirm.client_tag(&transcript),
        expected_host_tag: confirm.host_tag(&transcript),
    })
}

/// The host's side, after the client's answer: its tag for the welcome, if the client's
/// tag proves the same room key.
pub fn check(
    host: &Share,
    ctx: &Context<'_>,
    client_share: &[u8; 32],
    client_tag: &[u8],
) -> Result<[u8; 32], ExchangeError> {
    let transcript = Transcript::new(ctx, client_share, &host.public);
    let confirm = host.confirm_key(client_share, &transcript)?;
    confirm.verify_client(&transcript, client_tag)?;
    Ok(confirm.host_tag(&transcript))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::Salt;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../../tests/scenarios/cpace-vectors.json");

    fn bytes<const N: usize>(v: &Value) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
        out
    }

    #[test]
    fn the_construction_matches_the_published_vectors() {
        let doc: Value = serde_json::from_str(VECTORS).unwrap();
        for case in doc["vectors"].as_array().unwrap() {
            let salt = Salt(bytes(&case["salt"]));
            let key = RoomKey::derive(case["passphrase"].as_str().unwrap(), &salt).unwrap();
            assert_eq!(hex::encode(key.secret()), case["room_key"], "room key");
            let binding = hex::decode(case["binding"].as_str().unwrap()).unwrap();
            let ctx = Context {
                binding: &binding,
                nonce: case["nonce"].as_str().unwrap(),
                room: case["room"].as_str().unwrap(),
            };
            let g = generator(&key, &ctx);
            assert_eq!(hex::encode(g.compress().as_bytes()), case["generator"]);
            let host = Share::from_seed(&g, &bytes(&case["host_seed"]));
            assert_eq!(hex::encode(host.public), case["host_share"]);
            let client = answer(&key, &ctx, &host.public, &bytes(&case["client_seed"])).unwrap();
            assert_eq!(hex::encode(client.share), case["client_share"]);
            assert_eq!(hex::encode(client.tag), case["client_tag"]);
            assert_eq!(hex::encode(client.expected_host_tag), case["host_tag"]);
            let host_tag = check(&host, &ctx, &client.share, &client.tag).unwrap();
            assert_eq!(host_tag, client.expected_host_tag);
        }
    }

    #[test]
    fn a_wrong_passphrase_another_channel_or_a_bad_share_fails() {
        let salt = Salt([9; 16]);
        let right = RoomKey::derive("correct horse", &salt).unwrap();
        let wrong = RoomKey::derive("correct horse!", &salt).unwrap();
        let ctx = Context {
            binding: &[1; 32],
            nonce: "n1",
            room: "vault",
        };
        let host = Share::random(&generator(&right, &ctx));
        // The right key works.
        let ok = answer(&right, &ctx, &host.public, &[3; 64]).unwrap();
        assert!(check(&host, &ctx, &ok.share, &ok.tag).is_ok());
        // A wrong one is refused by the host.
        let bad = answer(&wrong, &ctx, &host.public, &[3; 64]).unwrap();
        assert_eq!(
            check(&host, &ctx, &bad.share, &bad.tag),
            Err(ExchangeError::Mismatch)
        );
        // The same passphrase on another TLS connection (a relay): refused.
        let relayed = Context {
            binding: &[2; 32],
            ..ctx.clone()
        };
        let other_leg = answer(&right, &relayed, &host.public, &[3; 64]).unwrap();
        assert_eq!(
            check(&host, &ctx, &other_leg.share, &other_leg.tag),
            Err(ExchangeError::Mismatch)
        );
        // Not a point, or the identity: refused before anything is computed with it.
        assert_eq!(
            check(&host, &ctx, &[0xff; 32], &ok.tag),
            Err(ExchangeError::BadShare)
        );
        assert_eq!(
            check(&host, &ctx, &[0; 32], &ok.tag),
            Err(ExchangeError::BadShare)
        );
    }
}
