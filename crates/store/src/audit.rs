//! The control audit log (docs/control.md): every write attempt — applied, not applied,
//! refused or dry run — as one row of the `control_audit` table in the SQLite history
//! file: time, device, setting, previous value, requested value, outcome (with its
//! reason), origin (cli/web/ha). Rows are kept forever (the history's retention does not
//! touch them): they are few and are the record of what the bridge asked a device to do.
//!
//! Writes go straight to the database (not through the history queue): an attempt is
//! audited before its outcome is reported, so a crash cannot lose it.
//!
//! The columns are text; a row holds them typed ([`Recorded`]): a text this version does
//! not know (written by an older or newer one) loads as [`Recorded::Unknown`] with the
//! text kept, never as an error that would lose the row.

use std::fmt;
use std::time::SystemTime;

use protocol::{DeviceSettings, SetKind, SetRequest};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::state_store::StateStore;
use model::unix_ms;
use model::{Origin, OutcomeKind, SetOutcome};
use protocol::settings::{current_value, requested_value};

/// At most this many rows per audit query.
pub const MAX_AUDIT_ROWS: usize = 10_000;

/// One write attempt, as stored and as the audit endpoint shows it (the JSON has the
/// same fields as the table, every typed one as its text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the attempt ended (its outcome was known), ms since the Unix epoch.
    pub at_ms: i64,
    pub device_sn: String,
    /// The frame the write changes ([`SetKind`]: `work_mode`, `battery_limits`, `feed_in`).
    pub setting: Recorded<SetKind>,
    /// The value the device last reported for this setting (96/8), if known.
    pub previous: Option<String>,
    /// The value asked for (see [`requested_value`]).
    pub requested: String,
    /// [`OutcomeKind`]: `applied`, `not_applied`, `refused`, `dry_run`.
    pub outcome: Recorded<OutcomeKind>,
    /// The reason (not applied, refused) or the frame hex (dry run).
    pub detail: Option<String>,
    /// [`Origin`]: `cli`, `web`, `ha`.
    pub origin: Recorded<Origin>,
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
            setting: Recorded::Known(request.kind()),
            previous: previous.and_then(|s| current_value(request, s)),
            requested: requested_value(request),
            outcome: Recorded::Known(outcome.kind()),
            detail: outcome.detail().map(Into::into),
            origin: Recorded::Known(origin),
        }
    }
}

/// A value the audit keeps as text: its name and the name's inverse.
pub trait AuditText: Sized + Copy {
    fn text(self) -> &'static str;
    fn from_text(text: &str) -> Option<Self>;
}

impl AuditText for SetKind {
    fn text(self) -> &'static str {
        self.as_str()
    }
    fn from_text(text: &str) -> Option<SetKind> {
        SetKind::parse(text)
    }
}

impl AuditText for OutcomeKind {
    fn text(self) -> &'static str {
        self.as_str()
    }
    fn from_text(text: &str) -> Option<OutcomeKind> {
        OutcomeKind::parse(text)
    }
}

impl AuditText for Origin {
    fn text(self) -> &'static str {
        self.as_str()
    }
    fn from_text(text: &str) -> Option<Origin> {
        Origin::parse(text)
    }
}

/// A typed audit column: a value this version knows, or the text as another wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<T> {
    Known(T),
    Unknown(String),
}

impl<T: AuditText> Recorded<T> {
    /// The value `text` names, or [`Recorded::Unknown`] with the text.
    pub fn from_text(text: &str) -> Recorded<T> {
        T::from_text(text).map_or_else(|| Recorded::Unknown(text.to_string()), Recorded::Known)
    }

    /// The text as stored.
    pub fn as_str(&self) -> &str {
        match self {
            Recorded::Known(v) => v.text(),
            Recorded::Unknown(text) => text,
        }
    }

    /// The value, when this version knows it.
    pub fn known(&self) -> Option<T> {
        match self {
            Recorded::Known(v) => Some(*v),
            Recorded::Unknown(_) => None,
        }
    }
}

impl<T: AuditText> fmt::Display for Recorded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<T: AuditText> PartialEq<&str> for Recorded<T> {
    fn eq(&self, text: &&str) -> bool {
        self.as_str() == *text
    }
}

impl<T: AuditText> Serialize for Recorded<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, T: AuditText> Deserialize<'de> for Recorded<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Recorded<T>, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Recorded::from_text(&text))
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
            e.setting.as_str(),
            e.previous,
            e.requested,
            e.outcome.as_str(),
            e.detail,
            e.origin.as_str()
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
            setting: Recorded::from_text(&row.get::<_, String>(2)?),
            previous: row.get(3)?,
            requested: row.get(4)?,
            outcome: Recorded::from_text(&row.get::<_, String>(5)?),
            detail: row.get(6)?,
            origin: Recorded::from_text(&row.get::<_, String>(7)?),
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
