//! Settings writes (protocol §10) through the runtime's controller, against the
//! simulator over real sockets (login, MQTT/TLS): each setting applied and read back
//! (96/8), what is refused before anything is sent (control off, validation, rate limit,
//! the open-API route), dry runs, coalescing, a device that ignores the write ("not
//! applied"), and the audit row of every attempt. The simulator's own counters
//! (`sets_received`) prove what reached the device.

mod support;

use std::sync::Arc;
use std::time::Duration;

use model::{ControlPort, Origin, SetOutcome};
use prost::Message;
use protocol::{DeviceSettings, FeedMode, SetRequest, WorkMode};
use runtime::{Bridge, BridgeOptions, ControlConfig};
use simulator::Simulator;
use sources::{CloudConfig, CloudSource};
use store::StoreConfig;
use tokio_util::sync::CancellationToken;

use support::{WAIT, app_config, open_config, until};

struct Setup {
    sim: Simulator,
    bridge: Bridge,
    shutdown: CancellationToken,
    sn: String,
    _dir: testkit::TempDir,
}

/// The simulator, a bridge with `control` on a history file, and the source attached;
/// returns once the first device has reported.
async fn setup(control: ControlConfig, open_api: bool) -> Setup {
    let sim = support::simulator(None).await;
    let dir = testkit::temp_dir("runtime-control");
    let shutdown = CancellationToken::new();
    let mut bridge = Bridge::start(
        BridgeOptions {
            store: StoreConfig {
                sqlite_path: Some(dir.path().join("history.db")),
                ..StoreConfig::default()
            },
            control,
            ..BridgeOptions::default()
        },
        &shutdown,
    )
    .await
    .expect("bridge starts");
    let config: CloudConfig = if open_api {
        open_config(&sim, &simulator::SimulatorConfig::default().secret_key)
    } else {
        app_config(&sim)
    };
    let source = CloudSource::with_ca_pem(config, Some(&sim.ca_cert_pem()), bridge.sender())
        .expect("valid config");
    bridge.attach_source(source.handle(), &shutdown);
    tokio::spawn(source.run(shutdown.clone()));
    let sn = sim.devices()[0].clone();
    let store = bridge.store.clone();
    until("the device reports", || {
        store.device(&sn).is_some_and(|d| d.state_count > 0)
    })
    .await;
    if !open_api {
        // The get-all answer ends with the settings report (96/8).
        until("the device reports its settings", || {
            store.settings(&sn).is_some()
        })
        .await;
    }
    Setup {
        sim,
        bridge,
        shutdown,
        sn,
        _dir: dir,
    }
}

impl Setup {
    async fn set(&self, request: SetRequest, origin: Origin) -> SetOutcome {
        let port: &dyn ControlPort = &*self.bridge.controller;
        tokio::time::timeout(WAIT, port.set(&self.sn, request, origin))
            .await
            .expect("an outcome within the wait")
    }

    /// The audit rows of the device, oldest first, as `(setting, outcome, origin)`.
    fn audit(&self) -> Vec<(String, String, String)> {
        let mut rows = self.bridge.store.audit(Some(&self.sn), 100).expect("audit");
        rows.reverse();
        rows.into_iter()
            .map(|r| {
                (
                    r.setting.to_string(),
                    r.outcome.to_string(),
                    r.origin.to_string(),
                )
            })
            .collect()
    }

    /// Set frames the simulated device received (whatever became of them).
    fn sets_received(&self) -> u64 {
        self.sim.field_stats().devices[&self.sn].sets_received
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.bridge.finish().await;
        self.sim.shutdown().await;
    }
}

fn on(config: ControlConfig) -> ControlConfig {
    ControlConfig {
        enabled: true,
        ..config
    }
}

const BACKUP: SetRequest = SetRequest::WorkMode {
    mode: WorkMode::Backup,
};

fn row(setting: &str, outcome: &str, origin: &str) -> (String, String, String) {
    (setting.into(), outcome.into(), origin.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_off_refuses_sends_nothing_and_audits() {
    let s = setup(ControlConfig::default(), false).await;
    assert!(s.bridge.control_port().is_none(), "no port for the sinks");
    let outcome = s.set(BACKUP, Origin::Web).await;
    assert_eq!(
        outcome,
        SetOutcome::Refused {
            reason: "control is off ([control] enabled = false)".into()
        }
    );
    assert_eq!(s.bridge.controller.frames_sent(), 0);
    assert_eq!(s.sets_received(), 0);
    assert_eq!(s.audit(), [row("work_mode", "refused", "web")]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_setting_is_applied_and_read_back() {
    let s = setup(on(ControlConfig::default()), false).await;
    let before = s.bridge.store.settings(&s.sn).expect("settings known");
    assert_eq!(
        before.work_mode,
        Some(0),
        "self-use to start with: {before:?}"
    );
    let requests = [
        BACKUP,
        SetRequest::BatteryLimits {
            backup_reserve: 20,
            surplus_threshold: 80,
        },
        SetRequest::FeedIn {
            mode: FeedMode::Limited,
            cap_w: Some(800),
        },
    ];
    for request in requests {
        let started = tokio::time::Instant::now();
        let outcome = s.set(request, Origin::Web).await;
        assert_eq!(outcome, SetOutcome::Applied, "{request:?}");
        eprintln!(
            "{}: applied and read back in {} ms",
            request.name(),
            started.elapsed().as_millis()
        );
    }
    let after = s.bridge.store.settings(&s.sn).expect("settings");
    assert_eq!(
        after,
        DeviceSettings {
            work_mode: Some(2),
            backup_reserve: Some(20),
            surplus_threshold: Some(80),
            feed_mode: Some(3),
            feed_power_cap_w: Some(800),
            ..after
        }
    );
    assert_eq!(s.sets_received(), 3);
    assert_eq!(s.sim.field_stats().devices[&s.sn].sets_applied, 3);
    let rows = s.bridge.store.audit(Some(&s.sn), 10).expect("audit");
    let first = rows.last().expect("rows");
    assert_eq!(first.previous.as_deref(), Some("self_use"));
    assert_eq!(first.requested, "backup");
    assert_eq!(
        s.audit(),
        [
            row("work_mode", "applied", "web"),
            row("battery_limits", "applied", "web"),
            row("feed_in", "applied", "web")
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_device_ignores_is_not_applied() {
    let s = setup(
        on(ControlConfig {
            confirm_timeout: Duration::from_secs(3),
            ..ControlConfig::default()
        }),
        false,
    )
    .await;
    s.sim.faults().ignore_sets(&s.sn, true).expect("switch");
    let started = tokio::time::Instant::now();
    let outcome = s.set(BACKUP, Origin::Ha).await;
    let waited = started.elapsed();
    assert_eq!(
        outcome,
        SetOutcome::NotApplied {
            reason: "the device still reports self_use after 3s".into()
        }
    );
    eprintln!("ignored write: not applied after {} ms", waited.as_millis());
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    let d = &s.sim.field_stats().devices[&s.sn];
    assert_eq!((d.sets_received, d.sets_applied), (1, 0), "{d:?}");
    assert_eq!(s.audit(), [row("work_mode", "not_applied", "ha")]);
    let rows = s.bridge.store.audit(Some(&s.sn), 1).expect("audit");
    assert_eq!(
        rows[0].detail.as_deref(),
        Some("the device still reports self_use after 3s")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_are_refused_before_sending() {
    let s = setup(on(ControlConfig::default()), false).await;
    assert!(s.bridge.control_port().is_some());
    let above = SetRequest::BatteryLimits {
        backup_reserve: 95,
        surplus_threshold: 90,
    };
    let SetOutcome::Refused { reason } = s.set(above, Origin::Ha).await else {
        panic!("reserve above threshold must be refused");
    };
    assert!(reason.contains("must not exceed"), "{reason}");
    let no_cap = SetRequest::FeedIn {
        mode: protocol::FeedMode::Limited,
        cap_w: None,
    };
    assert!(matches!(
        s.set(no_cap, Origin::Cli).await,
        SetOutcome::Refused { .. }
    ));
    assert_eq!(s.bridge.controller.frames_sent(), 0);
    assert_eq!(
        s.audit(),
        [
            row("battery_limits", "refused", "ha"),
            row("feed_in", "refused", "cli")
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_gives_the_frame_and_sends_nothing() {
    let s = setup(
        ControlConfig {
            dry_run: true,
            ..ControlConfig::default()
        },
        false,
    )
    .await;
    let SetOutcome::DryRun { frame_hex } = s.set(BACKUP, Origin::Cli).await else {
        panic!("a dry run");
    };
    let bytes = hex::decode(&frame_hex).expect("hex");
    let frames = protocol::pb::Frames::decode(bytes.as_slice()).expect("a Frames message");
    let h = &frames.header[0];
    assert_eq!((h.cmd_func, h.cmd_id), (Some(96), Some(98)));
    assert_eq!(h.device_sn.as_deref(), Some(s.sn.as_str()));
    assert_eq!(h.pdata.as_deref(), Some(BACKUP.pdata().as_slice()));
    assert_eq!(s.bridge.controller.frames_sent(), 0);
    assert_eq!(s.sets_received(), 0);
    assert_eq!(s.audit(), [row("work_mode", "dry_run", "cli")]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_route_refuses_with_one_line() {
    let s = setup(on(ControlConfig::default()), true).await;
    let SetOutcome::Refused { reason } = s.set(BACKUP, Origin::Web).await else {
        panic!("the open API cannot send settings");
    };
    assert!(reason.contains("control needs the app route"), "{reason}");
    assert!(!reason.contains('\n'));
    assert_eq!(s.bridge.controller.frames_sent(), 0);
    assert_eq!(s.audit(), [row("work_mode", "refused", "web")]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_writes_coalesce_and_the_rate_limit_holds() {
    let s = setup(
        on(ControlConfig {
            coalesce: Duration::from_millis(500),
            confirm_timeout: Duration::from_secs(1),
            max_writes_per_minute: 1,
            ..ControlConfig::default()
        }),
        false,
    )
    .await;
    let s = Arc::new(s);
    // A dragged slider: three values in quick succession, one frame (the last value).
    let mut writes = Vec::new();
    for reserve in [20, 21, 22] {
        let s = s.clone();
        let request = SetRequest::BatteryLimits {
            backup_reserve: reserve,
            surplus_threshold: 90,
        };
        writes.push(tokio::spawn(
            async move { s.set(request, Origin::Web).await },
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut outcomes = Vec::new();
    for w in writes {
        outcomes.push(w.await.expect("no panic"));
    }
    // Which one is last depends on when each task ran; exactly one is sent.
    let superseded = outcomes
        .iter()
        .filter(|o| matches!(o, SetOutcome::NotApplied { reason } if reason.contains("superseded")))
        .count();
    assert_eq!(superseded, 2, "{outcomes:?}");
    assert_eq!(s.sets_received(), 1, "one frame reached the device");
    assert_eq!(s.bridge.controller.frames_sent(), 1);
    // The rate limit (1 a minute) refuses the next frame to the device.
    let SetOutcome::Refused { reason } = s.set(BACKUP, Origin::Web).await else {
        panic!("rate limited");
    };
    assert!(reason.contains("rate limit"), "{reason}");
    assert_eq!(s.bridge.controller.frames_sent(), 1);
    assert_eq!(s.sets_received(), 1);
    let Ok(s) = Arc::try_unwrap(s) else {
        panic!("setup still shared");
    };
    s.stop().await;
}
