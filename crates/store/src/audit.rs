//! The control audit log (issue 14): every write attempt — applied, not applied,
//! refused or dry run — as one row of the `control_audit` table in the SQLite history
//! file: time, device, setting, previous value, requested value, outcome (with its
//! reason), origin (cli/web/ha). Rows are kept forever (the history's retention does not
//! touch them): they are few and are the record of what the bridge asked a device to do.
//!
//! Writes go straight to the database (not through the history queue): an attempt is
//! audited before its outcome is reported, so a crash cannot lose it.

use std::time::SystemTime;

use protocol::{DeviceSettings, SetRequest};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::state_store::StateStore;
use model::unix_ms;
use model::{Origin, SetOutcome};
use protocol::settings::{current_value, requested_value};

/// At most this many rows per audit query.
pub const MAX_AUDIT_ROWS: usize = 10_000;

/// One write attempt, as stored and as the audit endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the attempt ended (its outcome was known), ms since the Unix epoch.
    pub at_ms: i64,
    pub device_sn: String,
    /// [`SetRequest::name`]: `work_mode`, `battery_limits`, `feed_in`.
    pub setting: String,
    /// The value the device last reported for this setting (96/8), if known.
    pub previous: Option<String>,
    /// The value asked for (see [`requested_value`]).
    pub requested: String,
    /// [`SetOutcome::as_str`]: `applied`, `not_applied`, `refused`, `dry_run`.
    pub outcome: String,
    /// The reason (not applied, refused) or the frame hex (dry run).
    pub detail: Option<String>,
    /// [`Origin::as_str`]: `cli`, `web`, `ha`.
    pub origin: String,
}

impl AuditEntry {
    /// The row for one attempt; `previous` is what the device reported before it.
    pub fn new(
        at: SystemTime,
        device_sn: &str,
        request: &SetRequest,
        previous: Option<&DeviceSettings>,
        outcome: &SetOutcome,
        origin: Origin,
    ) -> AuditEntry {
        AuditEntry {
            at_ms: unix_ms(at),
            device_sn: device_sn.into(),
            setting: request.name().into(),
            previous: previous.and_then(|s| current_value(request, s)),
            requested: requested_value(request),
            outcome: outcome.as_str().into(),
            detail: outcome.detail().map(Into::into),
            origin: origin.as_str().into(),
        }
    }
}

/// Creates the table (called when the history file opens).
pub(crate) fn create_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS control_audit (
             id        INTEGER PRIMARY KEY AUTOINCREMENT,
             ts_ms     INTEGER NOT NULL,
             device    TEXT NOT NULL,
             setting   TEXT NOT NULL,
             previous  TEXT,
             requested TEXT NOT NULL,
             outcome   TEXT NOT NULL,
             detail    TEXT,
             origin    TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS control_audit_by_device ON control_audit(device, id);",
    )
}

/// Inserts one row and deletes the rows older than the newest `keep`; returns how many
/// were deleted. Ids only grow (`AUTOINCREMENT`) and the table only loses its oldest
/// rows, so the newest `keep` rows are the ids above `last - keep`: one range delete on
/// the primary key.
fn insert(conn: &Connection, e: &AuditEntry, keep: usize) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO control_audit (ts_ms, device, setting, previous, requested, outcome, detail, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.at_ms,
            e.device_sn,
            e.setting,
            e.previous,
            e.requested,
            e.outcome,
            e.detail,
            e.origin
        ],
    )?;
    let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX);
    let last = conn.last_insert_rowid();
    conn.execute(
        "DELETE FROM control_audit WHERE id <= ?1",
        params![last.saturating_sub(keep)],
    )
}

fn select(
    conn: &Connection,
    device_sn: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit.min(MAX_AUDIT_ROWS)).unwrap_or(0);
    let mut stmt = conn.prepare(
        "SELECT ts_ms, device, setting, previous, requested, outcome, detail, origin
         FROM control_audit WHERE ?1 IS NULL OR device = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![device_sn, limit], |row| {
        Ok(AuditEntry {
            at_ms: row.get(0)?,
            device_sn: row.get(1)?,
            setting: row.get(2)?,
            previous: row.get(3)?,
            requested: row.get(4)?,
            outcome: row.get(5)?,
            detail: row.get(6)?,
            origin: row.get(7)?,
        })
    })?;
    rows.collect()
}

impl StateStore {
    /// Appends one attempt to the audit table, committed when this returns (a short
    /// blocking write; the history writer may hold the file for one batch). The oldest
    /// rows past `[store] audit_keep` go (counted in [`StateStore::audit_pruned`]).
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let keep = self.config().audit_keep;
        let pruned = insert(&self.sqlite().connection(), entry, keep)?;
        if pruned > 0 {
            self.inner
                .audit_pruned
                .fetch_add(pruned as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Audit rows deleted since the start to keep the table at `[store] audit_keep`.
    pub fn audit_pruned(&self) -> u64 {
        self.inner
            .audit_pruned
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The newest `limit` audit rows (at most [`MAX_AUDIT_ROWS`]), newest first; only
    /// device `device_sn`'s when given.
    pub fn audit(
        &self,
        device_sn: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(select(&self.sqlite().connection(), device_sn, limit)?)
    }
}
