//! The user's settings (for now, the nickname), kept in `config.json` under the platform
//! config directory (`~/.config/lanchat/` on Linux) or under `LANCHAT_CONFIG_DIR`.
//!
//! Loading never fails the program: a missing file means defaults; a corrupt or unreadable
//! one means defaults plus a warning the caller shows. Saving writes a temporary file, syncs
//! it and renames it over the old one, so a crash or a full disk never leaves half a file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol;

/// Environment variable that overrides the config directory (tests use it).
pub const CONFIG_DIR_ENV: &str = "LANCHAT_CONFIG_DIR";
const FILE_NAME: &str = "config.json";

/// What is saved between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The nickname used when none is given; `None` until the user picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// Identifies this installation in room announcements, so listings can tell two hosts
    /// apart even when their machines have the same name. Created on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Network interfaces pinned for discovery; empty means "choose automatically".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// After this long without input at the desktop the app says "away" by itself (and
    /// "available" again on the next input); 0 never. Unset: [`DEFAULT_AWAY_AFTER_SECONDS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_after_seconds: Option<u64>,
}

/// Ten minutes without input: away.
pub const DEFAULT_AWAY_AFTER_SECONDS: u64 = 600;

/// Why the settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no config directory: set {CONFIG_DIR_ENV} or HOME")]
    NoDirectory,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid settings ({source}); using defaults")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot save settings to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    InvalidNick(#[from] protocol::Invalid),
}

/// The settings file's location and its last loaded content.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    /// The store in `LANCHAT_CONFIG_DIR` if set, else the platform config directory.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::at(dir));
        }
        directories::ProjectDirs::from("", "", "lanchat")
            .map(|dirs| Self::at(dirs.config_dir()))
            .ok_or(ConfigError::NoDirectory)
    }

    /// The store in a given directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory holding the settings.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Reads the settings. Always yields usable settings; the error, if any, says why they are
    /// the defaults (or why the saved nickname was ignored) and is meant to be shown as a warning.
    pub fn load(&self) -> (Settings, Option<ConfigError>) {
        // Settings, keys and known hosts are the user's alone; an older LAN Chat left the
        // directory readable by everyone.
        if self.dir.is_dir() {
            let _ = crate::private::ensure_dir(&self.dir);
        }
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Settings::default(), None)
            }
            Err(source) => {
                return (
                    Settings::default(),
                    Some(ConfigError::Read { path, source }),
                )
            }
        };
        match serde_json::from_slice::<Settings>(&bytes) {
            Ok(mut settings) => {
                // A hand-edited nickname that breaks the rules is dropped, not sent to hosts.
                if let Some(nick) = settings.nickname.take() {
                    match protocol::validate_nick(&nick) {
                        Ok(valid) => settings.nickname = Some(valid.to_owned()),
                        Err(e) => return (settings, Some(ConfigError::InvalidNick(e))),
                    }
                }
                (settings, None)
            }
            Err(source) => (
                Settings::default(),
                Some(ConfigError::Corrupt { path, source }),
            ),
        }
    }

    /// Writes the settings atomically and owner-only: temp file in the same directory,
    /// fsync, rename (see [`crate::private`]).
    pub fn save(&self, settings: &Settings) -> Result<(), ConfigError> {
        let path = self.path();
        let mut json = serde_json::to_vec_pretty(settings).expect("settings serialize");
        json.push(b'\n');
        crate::private::write_atomic(&path, &json)
            .map_err(|source| ConfigError::Write { path, source })
    }

    /// This installation's host id, created and saved on first use. If it cannot be saved,
    /// a fresh id is used for this run and the error says why.
    pub fn host_id(&self) -> (String, Option<ConfigError>) {
        let (mut settings, _) = self.load();
        if let Some(id) = settings.host_id.as_ref().filter(|id| is_host_id(id)) {
            return (id.clone(), None);
        }
        let id = crate::ids::random_hex(8);
        settings.host_id = Some(id.clone());
        let error = self.save(&settings).err();
        (id, error)
    }

    /// Saves the interfaces to pin (empty: automatic), keeping the other settings.
    pub fn save_interfaces(&self, names: &[String]) -> Result<(), ConfigError> {
        let (mut settings, _) = self.load();
        settings.interfaces = names.to_vec();
        self.save(&settings)
    }

    /// Validates and saves a nickname, keeping the other settings.
    pub fn save_nickname(&self, raw: &str) -> Result<String, ConfigError> {
        let nick = protocol::validate_nick(raw)?.to_owned();
        let (mut settings, _) = self.load();
        settings.nickname = Some(nick.clone());
        self.save(&settings)?;
        Ok(nick)
    }
}

/// A host id is 16 lowercase hex digits (also usable in a DNS host name).
fn is_host_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_without_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (settings, warning) = ConfigStore::at(dir.path().join("nope")).load();
        assert_eq!(settings, Settings::default());
        assert!(warning.is_none());
    }

    #[test]
    fn nickname_round_trips_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path().join("sub"));
        assert_eq!(store.save_nickname("  alice ").unwrap(), "alice");
        let (settings, warning) = store.load();
        assert!(warning.is_none());
        assert_eq!(settings.nickname.as_deref(), Some("alice"));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn corrupt_file_gives_defaults_and_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        std::fs::write(store.path(), b"{\"nickname\": 12").unwrap();
        let (settings, warning) = store.load();
        assert_eq!(settings, Settings::default());
        let warning = warning.unwrap().to_string();
        assert!(warning.contains("config.json"), "{warning}");
        assert!(warning.contains("using defaults"), "{warning}");
        // Saving over a corrupt file repairs it.
        store.save_nickname("bob").unwrap();
        assert_eq!(store.load().0.nickname.as_deref(), Some("bob"));
    }

    #[test]
    fn invalid_saved_nickname_is_dropped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        std::fs::write(store.path(), br#"{"nickname":"   "}"#).unwrap();
        let (settings, warning) = store.load();
        assert_eq!(settings.nickname, None);
        assert!(matches!(warning, Some(ConfigError::InvalidNick(_))));
    }

    #[test]
    fn invalid_nickname_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        assert!(matches!(
            store.save_nickname(&"x".repeat(40)),
            Err(ConfigError::InvalidNick(_))
        ));
        assert!(!store.path().exists());
    }

    #[test]
    fn host_id_is_created_once_and_kept_with_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        store.save_nickname("alice").unwrap();
        let (id, err) = store.host_id();
        assert!(err.is_none());
        assert!(is_host_id(&id), "{id}");
        assert_eq!(store.host_id().0, id);
        store.save_interfaces(&["eth1".into()]).unwrap();
        let (settings, _) = store.load();
        assert_eq!(settings.nickname.as_deref(), Some("alice"));
        assert_eq!(settings.host_id.as_deref(), Some(id.as_str()));
        assert_eq!(settings.interfaces, ["eth1"]);
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the directory should be: fails for root too.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let store = ConfigStore::at(blocker.join("lanchat"));
        let err = store.save_nickname("alice").unwrap_err();
        assert!(matches!(err, ConfigError::Write { .. }));
        assert!(err.to_string().starts_with("cannot save settings to"));
    }
}
