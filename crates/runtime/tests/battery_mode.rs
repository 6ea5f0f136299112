//! Battery modes with a lease (docs/optimisers.md) over the real control path: the
//! simulator at 60× (a night, so the house drains the battery), the bridge's controller
//! over login and MQTT/TLS, the 96/8 read-back. Hold keeps the SoC at the reserve it sets,
//! renewals send nothing, normal restores the user's exact settings, a lease that runs out
//! restores them by itself — also after a bridge restart in the middle — and every frame
//! has its audit row with the origin.

mod support;

use std::path::Path;
use std::time::Duration;

use model::{ControlPort, Origin, SetOutcome};
use protocol::SetRequest;
use runtime::battery_mode::lease::BatteryMode;
use runtime::{Bridge, BridgeOptions, ControlConfig};
use simulator::{Simulator, SimulatorConfig};
use sources::CloudSource;
use store::StoreConfig;
use tokio_util::sync::CancellationToken;

use support::{app_config, until};

const SOC: &str = "EnergyStreamItem.bpSoc";
/// The user's own settings before any battery-mode command.
const USER: SetRequest = SetRequest::BatteryLimits {
    backup_reserve: 20,
    surplus_threshold: 85,
};

fn control() -> ControlConfig {
    ControlConfig {
        enabled: true,
        optimiser: true,
        max_writes_per_minute: 30,
        ..ControlConfig::default()
    }
}

/// 02:00 local on a June night, 60 simulated seconds per real second.
async fn night() -> Simulator {
    let config = SimulatorConfig {
        speed: 60.0,
        start_time: Some(1_780_275_600),
        ..SimulatorConfig::default()
    };
    Simulator::start(config).await.expect("simulator starts")
}

/// A bridge keeping its leases in `dir`, attached to `sim`; returns once the device has
/// reported its settings.
async fn bridge(
    sim: &Simulator,
    dir: &Path,
    control: ControlConfig,
) -> (Bridge, CancellationToken) {
    let shutdown = CancellationToken::new();
    let mut bridge = Bridge::start(
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(dir.join("history.db")),
                ..StoreConfig::default()
            },
            control,
            battery_mode_file: Some(dir.join(runtime::battery_mode::FILE_NAME)),
            ..BridgeOptions::default()
        },
        &shutdown,
    )
    .await
    .expect("bridge starts");
    let source =
        CloudSource::with_ca_pem(app_config(sim), Some(&sim.ca_cert_pem()), bridge.sender())
            .expect("valid config");
    bridge.attach_source(source.handle(), &shutdown);
    tokio::spawn(source.run(shutdown.clone()));
    let sn = sim.devices()[0].clone();
    let store = bridge.store.clone();
    until("the device reports its settings and SoC", || {
        store.settings(&sn).is_some() && store.get(&sn, SOC).is_some()
    })
    .await;
    (bridge, shutdown)
}

fn soc(bridge: &Bridge, sn: &str) -> f64 {
    bridge
        .store
        .get(sn, SOC)
        .and_then(|s| s.value.as_number())
        .expect("SoC reported")
}

fn limits(bridge: &Bridge, sn: &str) -> (Option<u32>, Option<u32>) {
    let s = bridge.store.settings(sn).unwrap_or_default();
    (s.backup_reserve, s.surplus_threshold)
}

/// The audit rows, oldest first, as `(requested, outcome, origin)`.
fn audit(bridge: &Bridge, sn: &str) -> Vec<(String, String, String)> {
    let mut rows = bridge.store.audit(Some(sn), 100).expect("audit");
    rows.reverse();
    rows.into_iter()
        .map(|r| {
            (
                r.requested.to_string(),
                r.outcome.to_string(),
                r.origin.to_string(),
            )
        })
        .collect()
}

fn row(requested: &str, origin: &str) -> (String, String, String) {
    (requested.into(), "applied".into(), origin.into())
}

async fn stop(bridge: Bridge, shutdown: CancellationToken) {
    shutdown.cancel();
    bridge.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_the_soc_renewals_send_nothing_and_normal_restores() {
    let sim = night().await;
    let dir = testkit::temp_dir("battery-mode-hold");
    let (b, shutdown) = bridge(&sim, dir.path(), control()).await;
    let sn = sim.devices()[0].clone();
    let port: &dyn ControlPort = &*b.controller;
    assert_eq!(port.set(&sn, USER, Origin::Cli).await, SetOutcome::Applied);

    // The night load drains the battery (about a point per simulated 10 minutes).
    let start = soc(&b, &sn);
    until("the SoC falls under load", || soc(&b, &sn) <= start - 1.0).await;

    let modes = &b.battery_modes;
    let t0 = std::time::Instant::now();
    let held = modes
        .command(&sn, BatteryMode::Hold, None, Origin::Web)
        .await;
    let hold_ms = t0.elapsed().as_millis();
    assert_eq!(held.outcome, SetOutcome::Applied, "{held:?}");
    assert!(held.sent);
    let (Some(reserve), Some(threshold)) = limits(&b, &sn) else {
        panic!("settings read back")
    };
    assert_eq!(threshold, 85);
    let at_hold = soc(&b, &sn);
    assert!(
        (f64::from(reserve) - at_hold.floor()).abs() <= 1.0,
        "reserve {reserve} % at SoC {at_hold}"
    );
    assert_eq!(modes.status(&sn).applied, BatteryMode::Hold);

    // A controller repeating hold every 10 simulated seconds for 10 simulated minutes
    // (60×: 1/6 s real): renewals that change nothing send nothing. Meanwhile the load
    // stays and the SoC stays at the reserve.
    let frames = sim.field_stats().devices[&sn].sets_received;
    for _ in 0..60 {
        let again = modes
            .command(&sn, BatteryMode::Hold, None, Origin::Mqtt)
            .await;
        assert_eq!((again.outcome, again.sent), (SetOutcome::Applied, false));
        tokio::time::sleep(Duration::from_millis(167)).await;
        let now = soc(&b, &sn);
        assert!(
            now >= f64::from(reserve) - 0.5,
            "SoC {now} fell under the reserve {reserve}"
        );
    }
    assert_eq!(
        sim.field_stats().devices[&sn].sets_received,
        frames,
        "no frame for renewals"
    );
    let lowest = soc(&b, &sn);

    let t0 = std::time::Instant::now();
    let normal = modes
        .command(&sn, BatteryMode::Normal, None, Origin::Mqtt)
        .await;
    let normal_ms = t0.elapsed().as_millis();
    assert_eq!(normal.outcome, SetOutcome::Applied, "{normal:?}");
    assert_eq!(
        limits(&b, &sn),
        (Some(20), Some(85)),
        "exactly the user's settings"
    );
    assert_eq!(modes.status(&sn).lease_until_ms, None);
    eprintln!(
        "figures: hold applied in {hold_ms} ms, normal in {normal_ms} ms; SoC {start:.1} → {at_hold:.1} at hold (reserve {reserve} %), {lowest:.1} after 10 simulated min held; 60 renewals, 0 frames"
    );

    let hold_row = format!("reserve {reserve} %, threshold 85 %");
    assert_eq!(
        audit(&b, &sn),
        [
            row("reserve 20 %, threshold 85 %", "cli"),
            row(&hold_row, "web"),
            row("reserve 20 %, threshold 85 %", "mqtt"),
        ]
    );
    stop(b, shutdown).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_runs_out_restores_also_across_a_restart() {
    let sim = night().await;
    let dir = testkit::temp_dir("battery-mode-lease");
    let file = dir.path().join(runtime::battery_mode::FILE_NAME);
    let sn = sim.devices()[0].clone();
    let (b, shutdown) = bridge(&sim, dir.path(), control()).await;
    let port: &dyn ControlPort = &*b.controller;
    assert_eq!(port.set(&sn, USER, Origin::Cli).await, SetOutcome::Applied);

    // Runs out while the bridge runs.
    let lease = Some(Duration::from_secs(3));
    let held = b
        .battery_modes
        .command(&sn, BatteryMode::Hold, lease, Origin::Web)
        .await;
    assert_eq!(held.outcome, SetOutcome::Applied, "{held:?}");
    assert_ne!(limits(&b, &sn), (Some(20), Some(85)));
    until("the lease runs out and normal is back", || {
        limits(&b, &sn) == (Some(20), Some(85))
            && b.battery_modes.status(&sn).lease_until_ms.is_none()
    })
    .await;

    // Held again, and the bridge stops in the middle of the lease.
    let lease = Some(Duration::from_secs(4));
    let held = b
        .battery_modes
        .command(&sn, BatteryMode::Hold, lease, Origin::Web)
        .await;
    assert_eq!(held.outcome, SetOutcome::Applied, "{held:?}");
    let kept = std::fs::read_to_string(&file).expect("the lease is kept");
    assert!(kept.contains(&sn) && kept.contains("\"hold\""), "{kept}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    stop(b, shutdown).await;

    // A new bridge on the same state directory restores when the lease's time is up.
    let (b, shutdown) = bridge(&sim, dir.path(), control()).await;
    assert_eq!(b.battery_modes.status(&sn).requested, BatteryMode::Hold);
    until("the restarted bridge restores normal", || {
        limits(&b, &sn) == (Some(20), Some(85))
            && b.battery_modes.status(&sn).lease_until_ms.is_none()
    })
    .await;
    let origins: Vec<String> = audit(&b, &sn).into_iter().map(|r| r.2).collect();
    assert_eq!(
        origins,
        ["cli", "web", "lease-expiry", "web", "lease-expiry"]
    );
    let kept = std::fs::read_to_string(&file).expect("file");
    assert!(!kept.contains(&sn), "{kept}");
    stop(b, shutdown).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_unless_the_optimiser_is_on_and_refusals_send_nothing() {
    let sim = night().await;
    let dir = testkit::temp_dir("battery-mode-off");
    let sn = sim.devices()[0].clone();
    let off = ControlConfig {
        optimiser: false,
        ..control()
    };
    let (b, shutdown) = bridge(&sim, dir.path(), off).await;
    let before = sim.field_stats().devices[&sn].sets_received;
    let r = b
        .battery_modes
        .command(&sn, BatteryMode::Hold, None, Origin::Mqtt)
        .await;
    let SetOutcome::Refused { reason } = &r.outcome else {
        panic!("{r:?}")
    };
    assert!(reason.contains("optimiser"), "{reason}");
    assert_eq!(
        b.battery_modes.status(&sn).last_refusal.as_deref(),
        Some(reason.as_str())
    );
    stop(b, shutdown).await;

    let (b, shutdown) = bridge(&sim, dir.path(), control()).await;
    let r = b
        .battery_modes
        .command(&sn, BatteryMode::Charge, None, Origin::Web)
        .await;
    assert!(matches!(r.outcome, SetOutcome::Refused { .. }), "{r:?}");
    let r = b
        .battery_modes
        .command(
            &sn,
            BatteryMode::Hold,
            Some(Duration::from_secs(3 * 86_400)),
            Origin::Web,
        )
        .await;
    assert!(matches!(r.outcome, SetOutcome::Refused { .. }), "{r:?}");
    assert_eq!(sim.field_stats().devices[&sn].sets_received, before);
    assert!(audit(&b, &sn).is_empty());
    stop(b, shutdown).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_change_during_a_lease_becomes_the_new_normal() {
    let sim = night().await;
    let dir = testkit::temp_dir("battery-mode-conflict");
    let sn = sim.devices()[0].clone();
    let (b, shutdown) = bridge(&sim, dir.path(), control()).await;
    let port: &dyn ControlPort = &*b.controller;
    assert_eq!(port.set(&sn, USER, Origin::Cli).await, SetOutcome::Applied);
    let modes = &b.battery_modes;
    let lease = Some(Duration::from_secs(4));
    let held = modes
        .command(&sn, BatteryMode::Hold, lease, Origin::Mqtt)
        .await;
    assert_eq!(held.outcome, SetOutcome::Applied, "{held:?}");
    let (Some(reserve), _) = limits(&b, &sn) else {
        panic!("read back")
    };

    // The user sets 30 % in the dashboard while the hold runs.
    let direct = SetRequest::BatteryLimits {
        backup_reserve: 30,
        surplus_threshold: 85,
    };
    assert_eq!(
        port.set(&sn, direct, Origin::Web).await,
        SetOutcome::Applied
    );
    assert_eq!(modes.status(&sn).applied, BatteryMode::Normal, "visible");

    // The optimiser's next command re-applies hold; 30 % is the normal to restore.
    let again = modes
        .command(&sn, BatteryMode::Hold, lease, Origin::Mqtt)
        .await;
    assert!(again.adopted_direct_change && again.sent, "{again:?}");
    assert_eq!(limits(&b, &sn).0, Some(reserve.max(30)));
    until("the lease runs out", || {
        modes.status(&sn).lease_until_ms.is_none() && limits(&b, &sn) == (Some(30), Some(85))
    })
    .await;
    let origins: Vec<String> = audit(&b, &sn).into_iter().map(|r| r.2).collect();
    assert_eq!(origins, ["cli", "mqtt", "web", "mqtt", "lease-expiry"]);
    stop(b, shutdown).await;
    sim.shutdown().await;
}
