//! Scratch folders (removed when dropped) and names unique to one test, so tests running
//! in parallel — in several checkouts too — never share a file, topic, client id or table.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

pub use tempfile::TempDir;

/// A fresh folder under the system temp dir named `oceanbridge-<tag>-…`, removed on drop.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("oceanbridge-{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

/// `<tag>_<pid>_<time>_<n>`: unique per call on this machine. With a lowercase `tag`
/// it is a valid MQTT client id, topic level and unquoted SQL table or schema name.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}_{}_{nanos}_{n}", std::process::id())
}
