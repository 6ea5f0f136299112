//! [`DataDir`]: the bridge's state directory — one per installation. It holds what the
//! bridge keeps between runs: the SQLite history, the persisted MQTT client ids (protocol
//! §9: the cloud limits and fights over client ids, so one id per installation and account
//! must survive restarts) and the rolling frame capture for bug reports.
//!
//! Opening it takes an exclusive lock: two bridges on one directory would share a client
//! id, and the broker drops the older connection of a duplicated id (§9) — each would keep
//! kicking the other off. The second one gets a one-line error instead.
//!
//! Everything in it names the user's devices (serials, user ids), so it is the owner's
//! alone: the directory is 0700 (a looser one left by an older version or another tool is
//! tightened, with one info line), every file 0600 — the lock file, the client ids, the
//! capture and (`store`) the SQLite history with its `-wal`/`-shm` files.

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

    /// Creates the directory (owner-only permissions) if needed, tightens an existing one
    /// to 0700, and takes its lock.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        create_private_dir(path).map_err(|source| DataDirError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = open_lock_file(&lock_path).map_err(|source| DataDirError::Lock {
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

/// Atomic, owner-only replacement of `path`: a new temporary file in the same directory
/// (random name, created exclusively with mode 0600, so nothing planted there — a
/// symlink, a file of someone else's — is followed or reused), synced, renamed over
/// `path` (a symlink at `path` is replaced, not followed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let err = |source| DataDirError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.as_deref().unwrap_or("oceanbridge")))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    // On failure the temporary file is deleted when `tmp` is dropped.
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Creates `path` (and its parents) as an owner-only directory; an existing one that
/// others may read is tightened to 0700, and one info line says so (one that cannot be
/// — someone else's — gets a warning, and is used as it is).
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode_owner_only()
        .create(path)?;
    tighten_or_warn(path, 0o700);
    Ok(())
}

/// [`tighten`], with a warning instead of an error where it cannot be done.
pub fn tighten_or_warn(path: &Path, owner_mode: u32) {
    if let Err(e) = tighten(path, owner_mode) {
        tracing::warn!(
            "cannot make {} owner-only ({e}): others may read it",
            path.display()
        );
    }
}

/// Takes group and other permissions off `path` (a file: 0600 at most, a directory:
/// 0700), saying so once in the log; nothing to do where it is already so, or where the
/// platform has no modes. A missing file is fine.
#[cfg(unix)]
pub fn tighten(path: &Path, owner_mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // A symlink's own mode means nothing; what it points to is not ours to change.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let new = mode & owner_mode;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
    tracing::info!(
        "{} was readable by others (mode {mode:04o}): now {new:04o}, it holds serial numbers",
        path.display()
    );
    Ok(())
}

#[cfg(not(unix))]
pub fn tighten(_path: &Path, _owner_mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The lock file, created 0600 (an existing one is tightened).
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let file = options.open(path)?;
    tighten_or_warn(path, 0o600);
    Ok(file)
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

    #[cfg(unix)]
    #[test]
    fn a_loose_directory_and_lock_file_are_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_guard, path) = temp();
        std::fs::create_dir_all(&path).expect("dir");
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        set(&path, 0o755);
        std::fs::write(path.join(LOCK_FILE), b"").expect("old lock");
        set(&path.join(LOCK_FILE), 0o644);
        let dir = DataDir::open(&path).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&path.join(LOCK_FILE)), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_follow_no_planted_symlink() {
        let (_guard, path) = temp();
        let dir = DataDir::open(&path).expect("open");
        let victim = path.parent().expect("parent").join("victim.txt");
        std::fs::write(&victim, b"untouched").expect("victim");
        // The names an older version used for its temporary file, planted as symlinks.
        for name in [
            format!("client-ids.tmp{}", std::process::id()),
            format!(".{CLIENT_IDS_FILE}.tmp"),
        ] {
            std::os::unix::fs::symlink(&victim, path.join(name)).expect("plant");
        }
        // The target itself a symlink: replaced, not written through.
        std::os::unix::fs::symlink(&victim, dir.client_ids_file()).expect("plant target");
        dir.write_atomic(CLIENT_IDS_FILE, b"{}").expect("write");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"untouched");
        let meta = std::fs::symlink_metadata(dir.client_ids_file()).expect("meta");
        assert!(
            meta.file_type().is_file(),
            "the symlink was replaced by a file"
        );
        assert_eq!(std::fs::read(dir.client_ids_file()).expect("read"), b"{}");
    }

    #[test]
    fn unusable_path_is_a_clear_error() {
        let (_guard, path) = temp();
        std::fs::write(&path, b"a file, not a directory").expect("write");
        let e = DataDir::open(&path).expect_err("a file is no directory");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
