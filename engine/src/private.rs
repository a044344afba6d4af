//! Files only their owner may read: the installation's key, room keys, history, settings.
//!
//! Directories are created 0700 and files 0600 (on Unix); ones that exist already with wider
//! permissions (an older LAN Chat made them 0755 and 0644) are tightened when opened, so other
//! users of the same computer cannot read a room's key or what was said.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` (and its parents) owner-only, or tightens it and the files directly in it if
/// it exists.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        tighten(dir, 0o700)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                tighten(&entry.path(), 0o600)?;
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Removes group and other permissions from `path` if it has any.
#[cfg(unix)]
pub fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Opens a file owner-only with `options` (create, append, ...), tightening an existing one.
pub fn open(path: &Path, options: &mut std::fs::OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        let file = options.open(path)?;
        tighten(path, 0o600)?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// Writes `bytes` to `path` atomically and owner-only: a temporary file beside it, synced,
/// then renamed over it, so a crash or a full disk never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = open(
            &tmp,
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
        )?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_old_files_end_up_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(old.join("room.json"), "{}").unwrap();
        std::fs::set_permissions(
            old.join("room.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!((mode(&old), mode(&old.join("room.json"))), (0o755, 0o644));
        ensure_dir(&old).unwrap();
        assert_eq!((mode(&old), mode(&old.join("room.json"))), (0o700, 0o600));

        let new = root.path().join("a/b");
        write_atomic(&new.join("key.json"), b"secret").unwrap();
        assert_eq!((mode(&new), mode(&new.join("key.json"))), (0o700, 0o600));
        assert_eq!(std::fs::read(new.join("key.json")).unwrap(), b"secret");
    }
}
