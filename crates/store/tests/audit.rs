//! The control audit table (issue 14): every attempt is one row in the SQLite history
//! file, committed when `append_audit` returns, kept across a restart, queried newest
//! first and per device.

use std::time::{Duration, SystemTime};

use protocol::{DeviceSettings, FeedMode, SetRequest, WorkMode};
use store::{AuditEntry, Origin, Outcome, StateStore, StoreConfig};

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
            &Outcome::Applied,
            Origin::Cli,
        ),
        AuditEntry::new(
            t0 + Duration::from_secs(1),
            A,
            &limits,
            Some(&before),
            &Outcome::Refused {
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
            &Outcome::NotApplied {
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
