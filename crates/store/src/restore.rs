//! Which devices the history brings back at start: a device exists only if it is
//! configured or came on its own topic, and never more than `max_devices` of them. The
//! history may hold serials from before those rules (fakes a hostile payload once
//! created), so the restore admits, most recently heard first, only configured devices
//! (when a list is configured) and at most `max_devices`; the others stay in the file
//! until retention deletes them, and are never revived.

use std::collections::{HashMap, HashSet};

use crate::error::StoreError;
use crate::sqlite::{SqliteHistory, StoredRow};

/// The newest row of every state of every admitted device (see the module doc).
/// `configured` empty: every device is a candidate (fleet mode, or an account's list).
///
/// One pass over the history's newest rows (the query the restore always made); the
/// choice is made on them, so a clean history costs nothing more.
pub(crate) fn newest_rows(
    history: &SqliteHistory,
    configured: &[String],
    max_devices: usize,
) -> Result<Vec<StoredRow>, StoreError> {
    let mut rows = history.newest()?;
    // When each device was last heard: the newest of its rows.
    let mut heard: HashMap<&str, i64> = HashMap::new();
    for (device, _, ts, _, _) in &rows {
        let last = heard.entry(device).or_insert(*ts);
        *last = (*last).max(*ts);
    }
    let in_history = heard.len();
    let mut candidates: Vec<(&str, i64)> = heard
        .into_iter()
        .filter(|(d, _)| configured.is_empty() || configured.iter().any(|c| c == d))
        .collect();
    if candidates.len() == in_history && in_history <= max_devices {
        return Ok(rows);
    }
    candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let admitted: HashSet<String> = candidates
        .into_iter()
        .take(max_devices)
        .map(|(d, _)| d.to_string())
        .collect();
    tracing::warn!(
        in_history,
        restored = admitted.len(),
        "the history holds devices that are not configured or past [store] max_devices ({max_devices}); only the configured, most recently heard ones are restored"
    );
    rows.retain(|(device, ..)| admitted.contains(device));
    Ok(rows)
}
