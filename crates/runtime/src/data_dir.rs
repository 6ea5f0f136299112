//! [`DataDir`]: the bridge's state directory — one per installation. It holds what the
//! bridge keeps between runs: the SQLite history, the persisted MQTT client ids (protocol
//! §9: the cloud limits and fights over client ids, so one id per installation and account
//! must survive restarts) and the rolling frame capture for bug reports.
//!
//! Opening it takes an exclusive lock: two bridges on one directory would share a client
//! id, and the broker drops the older connection of a duplicated id (§9) — each would keep
//! kicking the other off. The second one gets a one-line error instead.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// File names inside the directory (stable: the package and the docs name them).
pub const HISTORY_FILE: &str = "history.db";
pub const CLIENT_IDS_FILE: &str = "client-ids.json";
pub const CAPTURE_DIR: &str = "capture";
const LOCK_FILE: &str = "oceanbridge.lock";

/// Why the directory could not be used; each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create the data directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another oceanbridge is running with the data directory {path}{holder} (one bridge per directory: they would share one MQTT client id)"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("cannot lock the data directory {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An opened, locked state directory. The lock is held until this value is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Where a user's bridge keeps its state when nothing else is configured: the XDG
    /// state directory (`$XDG_STATE_HOME/oceanbridge`, else `~/.local/state/oceanbridge`),
    /// or the platform's local data directory where there is no such thing. The Debian
    /// package runs with `/var/lib/oceanbridge` (systemd `StateDirectory=`) instead.
    pub fn default_path() -> Option<PathBuf> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("oceanbridge"))
    }

    /// Creates the directory (owner-only permissions) if needed and takes its lock.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let create = |source| DataDirError::Create {
            path: path.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode_owner_only()
            .create(path)
            .map_err(create)?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|source| DataDirError::Lock {
                path: path.to_path_buf(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path)
                    .ok()
                    .map(|pid| pid.trim().to_string())
                    .filter(|pid| !pid.is_empty())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(DataDirError::Locked {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(DataDirError::Lock {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        // Who holds it, for the other process's error line (best effort: the lock is
        // what counts, not this text).
        let _ = lock.set_len(0);
        let _ = writeln!(lock, "{}", std::process::id());
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SQLite history file.
    pub fn history_db(&self) -> PathBuf {
        self.path.join(HISTORY_FILE)
    }

    /// The persisted MQTT client ids (one per route and account).
    pub fn client_ids_file(&self) -> PathBuf {
        self.path.join(CLIENT_IDS_FILE)
    }

    /// The persisted MQTT client ids, ready for `CloudSource::with_client_ids`.
    pub fn client_ids(&self) -> crate::client_ids::ClientIdFile {
        crate::client_ids::ClientIdFile::open(&self.client_ids_file())
    }

    /// The rolling raw-frame capture (JSON-lines segments in the `record` format).
    pub fn capture_dir(&self) -> PathBuf {
        self.path.join(CAPTURE_DIR)
    }

    /// Replaces `name` inside the directory atomically (write a temporary file, sync,
    /// rename), owner-only: a crash never leaves a half-written file behind.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), DataDirError> {
        write_atomic(&self.path.join(name), bytes)
    }
}

/// Atomic, owner-only replacement of `path` (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let err = |source| DataDirError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = owner_only_file(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(unix)]
fn owner_only_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn owner_only_file(path: &Path) -> std::io::Result<File> {
    File::create(path)
}

/// `DirBuilder::mode(0o700)` where the platform has modes.
trait OwnerOnly {
    fn mode_owner_only(&mut self) -> &mut Self;
}

impl OwnerOnly for std::fs::DirBuilder {
    #[cfg(unix)]
    fn mode_owner_only(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt as _;
        self.mode(0o700)
    }

    #[cfg(not(unix))]
    fn mode_owner_only(&mut self) -> &mut Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state");
        (dir, path)
    }

    #[test]
    fn second_open_is_refused_until_the_first_is_dropped() {
        let (_guard, path) = temp();
        let path = path.join("nested");
        let first = DataDir::open(&path).expect("first open creates and locks");
        assert_eq!(first.history_db(), path.join("history.db"));
        let e = DataDir::open(&path).expect_err("locked");
        let line = e.to_string();
        assert!(line.contains("another oceanbridge"), "{line}");
        assert!(
            line.contains(&format!("pid {}", std::process::id())),
            "{line}"
        );
        drop(first);
        DataDir::open(&path).expect("free again after the first is dropped");
    }

    #[cfg(unix)]
    #[test]
    fn directory_and_atomic_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_guard, path) = temp();
        let dir = DataDir::open(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        dir.write_atomic(CLIENT_IDS_FILE, b"{\"a\":1}")
            .expect("write");
        dir.write_atomic(CLIENT_IDS_FILE, b"{\"a\":2}")
            .expect("replace");
        let file = dir.client_ids_file();
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "{\"a\":2}");
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(&path)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn unusable_path_is_a_clear_error() {
        let (_guard, path) = temp();
        std::fs::write(&path, b"a file, not a directory").expect("write");
        let e = DataDir::open(&path).expect_err("a file is no directory");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
