//! The control audit table (docs/control.md): every attempt is one row in the SQLite history
//! file, committed when `append_audit` returns, kept across a restart, queried newest
//! first and per device.

use std::time::{Duration, SystemTime};

use model::{Origin, OutcomeKind, SetOutcome};
use protocol::{DeviceSettings, FeedMode, SetKind, SetRequest, WorkMode};
use store::{AuditEntry, Recorded, StateStore, StoreConfig};

const A: &str = "HJ31ZDH5ZF220001";
const B: &str = "HJ31ZDH5ZF220002";

#[test]
fn attempts_are_appended_kept_and_queried() {
    let dir = testkit::temp_dir("audit");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.sqlite")),
        // Retention runs at open; the audit is not history and must survive it.
        retention: Duration::from_secs(1),
        ..StoreConfig::default()
    };
    let before = DeviceSettings {
        work_mode: Some(0),
        backup_reserve: Some(10),
        surplus_threshold: Some(90),
        ..Default::default()
    };
    let t0 = SystemTime::now() - Duration::from_secs(3600);
    let backup = SetRequest::WorkMode {
        mode: WorkMode::Backup,
    };
    let limits = SetRequest::BatteryLimits {
        backup_reserve: 95,
        surplus_threshold: 90,
    };
    let cap = SetRequest::FeedIn {
        mode: FeedMode::Limited,
        cap_w: Some(800),
    };
    let rows = [
        AuditEntry::new(
            t0,
            A,
            &backup,
            Some(&before),
            &SetOutcome::Applied,
            Origin::Cli,
        ),
        AuditEntry::new(
            t0 + Duration::from_secs(1),
            A,
            &limits,
            Some(&before),
            &SetOutcome::Refused {
                reason: "backup reserve 95 % must not exceed the solar-surplus threshold 90 %"
                    .into(),
            },
            Origin::Web,
        ),
        AuditEntry::new(
            t0 + Duration::from_secs(2),
            B,
            &cap,
            None,
            &SetOutcome::NotApplied {
                reason: "no read-back within 2s".into(),
            },
            Origin::Ha,
        ),
    ];
    {
        let store = StateStore::open(&config).expect("open");
        for row in &rows {
            store.append_audit(row).expect("appended");
        }
    }
    let store = StateStore::open(&config).expect("reopen");
    let all = store.audit(None, 100).expect("query");
    let newest_first: Vec<_> = rows.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);

    let first = &all[2];
    assert_eq!(first.setting, "work_mode");
    assert_eq!(first.previous.as_deref(), Some("self_use"));
    assert_eq!(first.requested, "backup");
    assert_eq!(first.outcome, "applied");
    assert_eq!(first.origin, "cli");
    assert_eq!(first.detail, None);
    assert_eq!(
        all[1].previous.as_deref(),
        Some("reserve 10 %, threshold 90 %")
    );
    assert_eq!(all[1].outcome, "refused");
    assert_eq!(all[0].requested, "limited 800 W");
    assert_eq!(all[0].previous, None);
    assert_eq!(all[0].detail.as_deref(), Some("no read-back within 2s"));

    assert_eq!(store.audit(Some(A), 100).expect("query"), newest_first[1..]);
    assert_eq!(store.audit(Some(A), 1).expect("query"), newest_first[1..2]);
    assert!(store.audit(Some("nobody"), 100).expect("query").is_empty());
    let json = serde_json::to_value(&all[0]).expect("json");
    assert_eq!(json["outcome"], "not_applied");
    assert_eq!(json["origin"], "ha");
}

/// Refused writes cost a row each: the table keeps its newest `audit_keep` rows, across
/// restarts, and counts what it deleted.
#[test]
fn the_audit_keeps_its_newest_rows_and_counts_the_pruned() {
    let dir = testkit::temp_dir("audit-bound");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.sqlite")),
        audit_keep: 5,
        ..StoreConfig::default()
    };
    let refused = |i: u64| {
        let request = SetRequest::WorkMode {
            mode: WorkMode::Backup,
        };
        let reason = format!("refused write {i}");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i);
        AuditEntry::new(
            at,
            A,
            &request,
            None,
            &SetOutcome::Refused { reason },
            Origin::Web,
        )
    };
    {
        let store = StateStore::open(&config).expect("open");
        for i in 0..12 {
            store.append_audit(&refused(i)).expect("appended");
        }
        assert_eq!(store.audit_pruned(), 7);
        let kept: Vec<_> = store.audit(None, 100).expect("query");
        let details: Vec<_> = kept.iter().filter_map(|r| r.detail.clone()).collect();
        assert_eq!(
            details,
            (7..12)
                .rev()
                .map(|i| format!("refused write {i}"))
                .collect::<Vec<_>>()
        );
    }
    let store = StateStore::open(&config).expect("reopen");
    store.append_audit(&refused(12)).expect("appended");
    assert_eq!(store.audit_pruned(), 1, "counted since this start");
    let kept = store.audit(None, 100).expect("query");
    assert_eq!(kept.len(), 5);
    assert_eq!(kept[0].detail.as_deref(), Some("refused write 12"));
    assert_eq!(kept[4].detail.as_deref(), Some("refused write 8"));
}

/// Rows another version wrote, with texts this one does not know, still load: the text
/// is kept as `Unknown`, shown as it was, and the other columns are typed as usual.
#[test]
fn rows_with_unknown_texts_load_as_written() {
    let dir = testkit::temp_dir("audit-unknown");
    let config = StoreConfig {
        sqlite_path: Some(dir.path().join("history.sqlite")),
        ..StoreConfig::default()
    };
    let row = AuditEntry {
        at_ms: 1_700_000_000_000,
        device_sn: A.into(),
        setting: Recorded::from_text("charge_limit"),
        previous: None,
        requested: "95 %".into(),
        outcome: Recorded::from_text("queued"),
        detail: Some("a newer outcome".into()),
        origin: Recorded::from_text("optimiser"),
    };
    assert_eq!(row.setting, Recorded::Unknown("charge_limit".into()));
    {
        let store = StateStore::open(&config).expect("open");
        store.append_audit(&row).expect("appended");
        let known = AuditEntry::new(
            SystemTime::now(),
            A,
            &SetRequest::WorkMode {
                mode: WorkMode::Backup,
            },
            None,
            &SetOutcome::Applied,
            Origin::Ha,
        );
        store.append_audit(&known).expect("appended");
    }
    let store = StateStore::open(&config).expect("reopen");
    let rows = store.audit(Some(A), 10).expect("query");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], row);
    assert_eq!(rows[1].origin.to_string(), "optimiser");
    assert_eq!(rows[0].setting.known(), Some(SetKind::WorkMode));
    assert_eq!(rows[0].outcome.known(), Some(OutcomeKind::Applied));
    assert_eq!(rows[0].origin.known(), Some(Origin::Ha));
    let json = serde_json::to_value(&rows[1]).expect("json");
    assert_eq!(json["setting"], "charge_limit");
    assert_eq!(json["outcome"], "queued");
    let back: AuditEntry = serde_json::from_value(json).expect("from JSON");
    assert_eq!(back, row);
}
