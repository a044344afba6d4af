//! Hosts this installation has met, each pinned to its key: `known_hosts.json` in the config
//! directory, host id to fingerprint.
//!
//! The first connection to a host is trust on first use (its short code is shown, for anyone
//! who wants to compare it by voice); later ones must present the same key. A host whose key
//! changed is refused with both codes until the user explicitly trusts the new key, because
//! that is exactly what an impostor announcing the same room looks like.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::identity::Fingerprint;

/// The file in the config directory.
pub const FILE_NAME: &str = "known_hosts.json";

/// Hosts met at most; past it the file stops growing (new hosts are still trusted on first
/// use, just not remembered).
const MAX_KNOWN: usize = 10_000;

/// What a host's key is, measured against what was remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Never met: trust on first use.
    New,
    /// The key remembered.
    Known,
    /// Another key than the one remembered.
    Changed { old: Fingerprint },
}

/// The pins, in memory and (if it has a path) on disk.
#[derive(Debug)]
pub struct KnownHosts {
    path: Option<PathBuf>,
    pins: Mutex<BTreeMap<String, Fingerprint>>,
}

impl KnownHosts {
    /// The pins kept in `dir`. A damaged file is set aside (renamed `.damaged`) and the pins
    /// start empty, so every host is met afresh and shown with its code.
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(FILE_NAME);
        let pins = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{} is damaged ({e}); starting afresh", path.display());
                let _ = std::fs::rename(&path, path.with_extension("json.damaged"));
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self {
            path: Some(path),
            pins: Mutex::new(pins),
        }
    }

    /// Pins for this run only.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            pins: Mutex::new(BTreeMap::new()),
        }
    }

    /// The key remembered for `host_id`.
    pub fn pinned(&self, host_id: &str) -> Option<Fingerprint> {
        self.pins
            .lock()
            .expect("never poisoned")
            .get(host_id)
            .copied()
    }

    pub fn check(&self, host_id: &str, key: Fingerprint) -> Verdict {
        match self.pinned(host_id) {
            None => Verdict::New,
            Some(old) if old == key => Verdict::Known,
            Some(old) => Verdict::Changed { old },
        }
    }

    /// Remembers `key` for `host_id` (a first meeting, or the user trusting a new key).
    pub fn remember(&self, host_id: &str, key: Fingerprint) -> std::io::Result<()> {
        let json = {
            let mut pins = self.pins.lock().expect("never poisoned");
            if pins.get(host_id) == Some(&key) {
                return Ok(());
            }
            if pins.len() >= MAX_KNOWN && !pins.contains_key(host_id) {
                return Ok(());
            }
            pins.insert(host_id.to_owned(), key);
            serde_json::to_vec_pretty(&*pins).expect("strings serialize")
        };
        match &self.path {
            Some(path) => crate::private::write_atomic(path, &json),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_trusted_on_first_use_and_a_changed_key_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let pins = KnownHosts::open(dir.path());
        assert_eq!(pins.check("host-1", a), Verdict::New);
        pins.remember("host-1", a).unwrap();
        let reopened = KnownHosts::open(dir.path());
        assert_eq!(reopened.check("host-1", a), Verdict::Known);
        assert_eq!(reopened.check("host-1", b), Verdict::Changed { old: a });
        reopened.remember("host-1", b).unwrap();
        assert_eq!(
            KnownHosts::open(dir.path()).check("host-1", b),
            Verdict::Known
        );

        std::fs::write(dir.path().join(FILE_NAME), b"not json").unwrap();
        assert_eq!(
            KnownHosts::open(dir.path()).check("host-1", b),
            Verdict::New
        );
        assert!(dir.path().join("known_hosts.json.damaged").exists());
    }
}
