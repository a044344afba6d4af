//! One-way 64-bit tags of members, kept with saved events instead of anything secret: a
//! session's (changes every run) or a proved key's (the same everywhere, always). They tell
//! a member's own messages and private messages apart after a reconnect or a restart.

use sha2::{Digest, Sha256};

/// A short, one-way tag of a client session: enough to tell a client's own messages and
/// private messages apart after a restart, without writing the session secret to disk.
pub(crate) type SessionTag = u64;

/// A session's tag (no key proved): the top bit is clear.
pub(crate) fn session_tag(session: &str) -> SessionTag {
    let digest = Sha256::new()
        .chain_update(b"lanchat-session\0")
        .chain_update(session.as_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("32-byte digest")) & !IDENTITY_BIT
}

/// Tags of members who proved a key have the top bit set, so saved history tells them
/// from sessions (whose tags change every run) and can rebuild who owns which nickname.
const IDENTITY_BIT: u64 = 1 << 63;

/// The tag of a member who proved the key `key`: the same in every run, on every host.
pub(crate) fn identity_tag(key: &crate::identity::Fingerprint) -> SessionTag {
    let digest = Sha256::new()
        .chain_update(b"lanchat-identity\0")
        .chain_update(key.0)
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("32-byte digest")) | IDENTITY_BIT
}

pub(crate) fn is_identity_tag(tag: SessionTag) -> bool {
    tag & IDENTITY_BIT != 0
}
