//! The lease decisions: hold and normal, renewals that send nothing, expiry, the conflict
//! rule, refusals, and a controller repeating itself every 10 s for 10 simulated minutes.

use super::*;
use protocol::DeviceSettings;

const MIN: u64 = 60_000;

fn settings(reserve: u32, threshold: u32) -> DeviceSettings {
    DeviceSettings {
        backup_reserve: Some(reserve),
        surplus_threshold: Some(threshold),
        ..Default::default()
    }
}

fn limits(backup_reserve: u32, surplus_threshold: u32) -> Limits {
    Limits {
        backup_reserve,
        surplus_threshold,
    }
}

fn hold(minutes: u64) -> Command {
    Command {
        mode: BatteryMode::Hold,
        lease: Duration::from_secs(minutes * 60),
    }
}

fn device(now_ms: u64, s: &DeviceSettings, soc: f64) -> Device<'_> {
    Device {
        now_ms,
        settings: Some(s),
        soc: Some(soc),
        discharge_limit: Some(5),
    }
}

#[test]
fn modes_parse_as_evcc_numbers_and_names() {
    assert_eq!(BatteryMode::parse("2"), Some(BatteryMode::Hold));
    assert_eq!(BatteryMode::parse(" Hold "), Some(BatteryMode::Hold));
    assert_eq!(
        BatteryMode::parse("hold_charge"),
        Some(BatteryMode::HoldCharge)
    );
    assert_eq!(BatteryMode::parse("1"), Some(BatteryMode::Normal));
    assert_eq!(BatteryMode::parse("5"), None);
    assert_eq!(BatteryMode::parse("boost"), None);
    for m in BatteryMode::ALL {
        assert_eq!(BatteryMode::parse(m.as_str()), Some(m));
    }
}

#[test]
fn hold_raises_the_reserve_to_the_soc_and_normal_restores() {
    let user = settings(10, 90);
    let step = command(None, hold(15), device(0, &user, 63.7)).unwrap();
    assert_eq!(step.request, Some(limits(63, 90).request()));
    let lease = step.lease.unwrap();
    assert_eq!(lease.normal, limits(10, 90));
    assert_eq!(lease.applied, limits(63, 90));
    assert_eq!(lease.until_ms, 15 * MIN);
    assert!(!step.adopted);

    let held = settings(63, 90);
    assert_eq!(applied_mode(Some(&lease), Some(&held)), BatteryMode::Hold);
    assert_eq!(applied_mode(Some(&lease), Some(&user)), BatteryMode::Normal);
    let normal = Command {
        mode: BatteryMode::Normal,
        lease: Duration::from_secs(60),
    };
    let back = command(Some(&lease), normal, device(MIN, &held, 60.0)).unwrap();
    assert_eq!(back.request, Some(limits(10, 90).request()));
    assert_eq!(back.lease, None);
    // Normal without a lease, on a device at normal: nothing to send.
    let none = command(None, normal, device(MIN, &user, 60.0)).unwrap();
    assert_eq!(none.request, None);
}

#[test]
fn hold_follows_the_device_rules() {
    let n = limits(10, 90);
    // SoC above the threshold: the threshold rises with it (reserve ≤ threshold).
    assert_eq!(hold_limits(n, 97.2, Some(5)), limits(97, 97));
    // Below the discharge limit + 3: the limit's floor.
    assert_eq!(hold_limits(limits(0, 90), 4.0, Some(5)), limits(8, 90));
    // Never lower than the user's own reserve.
    assert_eq!(hold_limits(limits(30, 90), 12.0, None), limits(30, 90));
    assert_eq!(hold_limits(n, f64::NAN, None), limits(10, 90));
    assert_eq!(hold_limits(n, 250.0, Some(99)), limits(100, 100));
}

#[test]
fn renewals_change_nothing_and_send_nothing() {
    let user = settings(10, 90);
    let first = command(None, hold(15), device(0, &user, 50.0)).unwrap();
    let mut lease = first.lease.unwrap();
    let held = settings(50, 90);
    let mut frames = 1;
    // Every 10 s for 10 simulated minutes, with the SoC rising under solar meanwhile.
    for i in 1..=60u64 {
        let now = i * 10_000;
        let soc = 50.0 + i as f64 * 0.2;
        let step = command(Some(&lease), hold(15), device(now, &held, soc)).unwrap();
        frames += u64::from(step.request.is_some());
        lease = step.lease.unwrap();
        assert_eq!(lease.until_ms, now + 15 * MIN);
        assert_eq!(lease.normal, limits(10, 90));
    }
    assert_eq!(frames, 1, "only the first command reaches the device");
}

#[test]
fn a_lease_that_runs_out_restores_normal() {
    let user = settings(10, 90);
    let lease = command(None, hold(15), device(0, &user, 70.0))
        .unwrap()
        .lease
        .unwrap();
    let held = settings(70, 90);
    assert_eq!(expire(&lease, Some(&held), 15 * MIN - 1), None);
    let step = expire(&lease, Some(&held), 15 * MIN).unwrap();
    assert_eq!(step.request, Some(limits(10, 90).request()));
    assert_eq!(step.lease, None);
    // After a restart, before any read-back: the user's values are sent.
    let blind = expire(&lease, None, 20 * MIN).unwrap();
    assert_eq!(blind.request, Some(limits(10, 90).request()));
    // Already back at normal: nothing to send.
    assert_eq!(expire(&lease, Some(&user), 16 * MIN).unwrap().request, None);
}

#[test]
fn a_direct_change_during_a_lease_becomes_the_new_normal() {
    let user = settings(10, 90);
    let lease = command(None, hold(15), device(0, &user, 70.0))
        .unwrap()
        .lease
        .unwrap();
    // The user sets 40 % in the dashboard while the hold runs.
    let direct = settings(40, 90);
    assert_eq!(
        applied_mode(Some(&lease), Some(&direct)),
        BatteryMode::Normal
    );
    // The lease runs out: the user's 40 % stays.
    let gone = expire(&lease, Some(&direct), 15 * MIN).unwrap();
    assert_eq!((gone.request, gone.adopted), (None, true));
    // The optimiser's next hold: re-applied on top, and 40 % is the normal to restore.
    let again = command(Some(&lease), hold(15), device(MIN, &direct, 69.0)).unwrap();
    assert!(again.adopted);
    assert_eq!(again.request, Some(limits(69, 90).request()));
    assert_eq!(again.lease.unwrap().normal, limits(40, 90));
}

#[test]
fn refusals_send_nothing() {
    let user = settings(10, 90);
    let d = device(0, &user, 50.0);
    for mode in [BatteryMode::Charge, BatteryMode::HoldCharge] {
        let c = Command {
            mode,
            lease: Duration::from_secs(60),
        };
        assert!(matches!(
            command(None, c, d),
            Err(Refusal::NeedsGridCharge(_))
        ));
    }
    let blind = Device {
        settings: None,
        ..d
    };
    assert_eq!(command(None, hold(1), blind), Err(Refusal::NotReported));
    let no_soc = Device { soc: None, ..d };
    assert_eq!(command(None, hold(1), no_soc), Err(Refusal::NoSoc));
    let long = Command {
        mode: BatteryMode::Hold,
        lease: Duration::from_secs(2 * 24 * 3600),
    };
    assert!(matches!(
        command(None, long, d),
        Err(Refusal::LeaseOutOfRange(_))
    ));
}
