//! Which devices the history brings back at start: a device exists only if it is
//! configured or came on its own topic, and never more than `max_devices` of them. The
//! history may hold serials from before those rules (fakes a hostile payload once
//! created), so the restore admits, most recently heard first, only configured devices
//! (when a list is configured) and at most `max_devices`; the others stay in the file
//! until retention deletes them, and are never revived.

use crate::error::StoreError;
use crate::sqlite::{SqliteHistory, StoredRow};

/// The newest row of every state of every admitted device (see the module doc).
/// `configured` empty: every device is a candidate (fleet mode, or an account's list).
pub(crate) fn newest_rows(
    history: &SqliteHistory,
    configured: &[String],
    max_devices: usize,
) -> Result<Vec<StoredRow>, StoreError> {
    let devices: Vec<String> = {
        let conn = history.connection();
        let mut stmt =
            conn.prepare("SELECT device FROM history GROUP BY device ORDER BY MAX(ts_ms) DESC")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let admitted: Vec<&String> = devices
        .iter()
        .filter(|d| configured.is_empty() || configured.contains(d))
        .take(max_devices)
        .collect();
    if admitted.len() == devices.len() {
        return history.newest();
    }
    tracing::warn!(
        in_history = devices.len(),
        restored = admitted.len(),
        "the history holds devices that are not configured or past [store] max_devices ({max_devices}); only the configured, most recently heard ones are restored"
    );
    let conn = history.connection();
    let mut stmt = conn
        .prepare("SELECT key, MAX(ts_ms), num, text FROM history WHERE device = ?1 GROUP BY key")?;
    let mut rows = Vec::new();
    for device in admitted {
        let found = stmt.query_map([device], |r| {
            Ok((device.clone(), r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        for row in found {
            rows.push(row?);
        }
    }
    Ok(rows)
}
