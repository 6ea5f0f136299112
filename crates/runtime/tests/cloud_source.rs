//! The cloud source against the simulator over real sockets (HTTPS, MQTT/TLS on
//! 127.0.0.1, ephemeral ports): logins, signatures, TLS trust, states, get-all timing,
//! broker outages, token expiry and the one-loop/one-timer-per-device guarantee.
//!
//! What the source reports is read where users see it: [`BridgeStats`] (behind `/metrics`
//! and the dashboard), fed by the runtime's [`StatsObserver`] as `oceanbridge run` wires it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use model::BridgeStats;
use runtime::StatsObserver;
use simulator::{Simulator, SimulatorConfig};
use sources::{CloudConfig, CloudSource, WayIn};
use support::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_login_connects_over_tls_and_states_arrive() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut run = start(app_config(&sim), Some(&ca));
    let states = within(run.next_states()).await;
    assert!(
        states > 10,
        "a get-all answer carries many states, got {states}"
    );
    let s = run.stats.snapshot();
    assert_eq!(s.source.logins, 1);
    assert_eq!(s.source.connects, 1);
    assert!(s.source.connected);
    assert_eq!(sim.stats().logins_ok, 1);
    assert_eq!((s.source.live_loops, s.source.live_get_all_timers), (1, 1));
    // The same, as `/metrics` shows it.
    for (name, value) in [
        ("oceanbridge_source_logins_total", 1.0),
        ("oceanbridge_source_connects_total", 1.0),
        ("oceanbridge_source_connected", 1.0),
        ("oceanbridge_source_loops", 1.0),
        ("oceanbridge_get_all_timers", 1.0),
    ] {
        assert_eq!(metric(&run.stats, name), Some(value), "{name}");
    }
    let s = run.stop().await.snapshot();
    assert_eq!(
        (s.source.live_loops, s.source.live_get_all_timers),
        (0, 0),
        "all gone after shutdown"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_backs_off_without_crashing_or_hot_looping() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.password = "not-the-password".into();
    let started = tokio::time::Instant::now();
    let run = start(config, Some(&ca));
    // A refused password waits the longest delay (0.5 s here) before the next try, so n
    // failures take at least (n − 1) × 0.5 s: checked at every look while waiting for
    // three (a lower bound a loaded machine cannot break; a hot loop breaks it at once).
    until("three refused attempts", || {
        let failures = run.stats.snapshot().reconnects;
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            (failures as f64 - 1.0) * 0.5 <= elapsed,
            "hot loop: {failures} attempts in {elapsed:.2} s"
        );
        failures >= 3
    })
    .await;
    let s = run.stats.snapshot();
    assert_eq!(s.source.logins, 0);
    assert_eq!(s.source.connects, 0);
    let last = s.source.last_error.unwrap_or_default();
    assert!(last.contains("Incorrect password"), "{last}");
    assert!(
        !last.contains("not-the-password"),
        "the secret leaked: {last}"
    );
    assert_eq!(sim.stats().logins_failed, s.reconnects);
    assert!(!run.task.is_finished(), "keeps retrying, never exits");
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_a_tls_failure_not_a_crash() {
    let sim = simulator(None).await;
    // Only the public web roots: the simulator's self-signed CA is not trusted.
    let run = start(app_config(&sim), None);
    until("a failed attempt", || run.stats.snapshot().reconnects >= 2).await;
    let s = run.stats.snapshot();
    assert_eq!(s.source.connects, 0);
    let last = s.source.last_error.unwrap_or_default();
    assert!(last.contains("TLS failed"), "{last}");
    assert_eq!(sim.stats().logins_ok, 0, "nothing got through");
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_signature_accepted_and_quotas_decode() {
    // A correct signature must never be refused here, so no intermittent 8521 (protocol
    // §9; the retry through them is field_proof's and field_source's business).
    let mut config = SimulatorConfig::default();
    config.field.intermittent_8521 = 0.0;
    let sim = Simulator::start(config).await.expect("simulator starts");
    let ca = sim.ca_cert_pem();
    let mut run = start(
        open_config(&sim, &SimulatorConfig::default().secret_key),
        Some(&ca),
    );
    let states = within(run.next_states()).await;
    assert!(states > 10, "quota/all carries many states, got {states}");
    let s = run.stats.snapshot();
    assert_eq!(s.source.connects, 1);
    assert_eq!(
        s.source.live_get_all_timers, 1,
        "device list gave the simulator's one device"
    );
    assert!(s.source.get_all_sent >= 1);
    assert_eq!(sim.stats().auth_rejected, 0);
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_api_wrong_secret_is_rejected_signature() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let run = start(open_config(&sim, "wrong-secret"), Some(&ca));
    until("a rejected attempt", || {
        run.stats.snapshot().reconnects >= 1
    })
    .await;
    let s = run.stats.snapshot();
    assert_eq!(s.source.connects, 0);
    let last = s.source.last_error.unwrap_or_default();
    assert!(last.contains("signature"), "{last}");
    // §9: 8521 is retried twice with a fresh nonce, then the line says what to check.
    assert!(last.contains("code 8521"), "{last}");
    assert!(last.contains("source.secret_key"), "{last}");
    assert!(
        sim.stats().auth_rejected >= 3,
        "retried twice: {:?}",
        sim.stats()
    );
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_on_connect_and_on_schedule() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut config = app_config(&sim);
    config.get_all_interval = Duration::from_millis(300);
    let run = start(config, Some(&ca));
    until("get-all answered on connect", || {
        sim.stats().get_all_answered >= 1
    })
    .await;
    until("get-all repeated on schedule", || {
        sim.stats().get_all_answered >= 4
    })
    .await;
    let s = run.stats.snapshot();
    assert_eq!(s.source.connects, 1, "one connection served every get-all");
    assert!(s.source.get_all_sent >= 4);
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_and_up_reconnects_and_states_resume() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    let mut run = start(app_config(&sim), Some(&ca));
    within(run.next_states()).await;
    sim.faults().broker_down().expect("embedded broker");
    until("connection lost", || !run.stats.snapshot().source.connected).await;
    until("a few refused reconnects", || {
        run.stats.snapshot().reconnects >= 2
    })
    .await;
    while run.rx.try_recv().is_ok() {}
    sim.faults().broker_up().expect("embedded broker");
    until("reconnected", || run.stats.snapshot().source.connects >= 2).await;
    let states = within(run.next_states()).await;
    assert!(states > 0);
    let s = run.stats.snapshot();
    assert_eq!((s.source.live_loops, s.source.live_get_all_timers), (1, 1));
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_means_login_again() {
    let sim = simulator(Some(Duration::from_millis(500))).await;
    let ca = sim.ca_cert_pem();
    let mut run = start(app_config(&sim), Some(&ca));
    within(run.next_states()).await;
    assert_eq!(run.stats.snapshot().source.logins, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    sim.faults().drop_connections().expect("embedded broker");
    until("reconnected", || run.stats.snapshot().source.connects >= 2).await;
    let s = run.stats.snapshot();
    assert_eq!(
        s.source.logins, 2,
        "the expired token was replaced by a new login"
    );
    assert_eq!(sim.stats().logins_ok, 2);
    assert!(
        sim.stats().auth_rejected >= 1,
        "the old token was refused first"
    );
    run.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_reconnects_keep_one_loop_and_one_timer_per_device() {
    let config = SimulatorConfig {
        devices: vec!["HJ31ZDH5ZF220001".into(), "HJ31ZDH5ZF220002".into()],
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config).await.expect("simulator starts");
    let ca = sim.ca_cert_pem();
    let run = start(app_config(&sim), Some(&ca));
    const RECONNECTS: u64 = 6;
    until("connected", || run.stats.snapshot().source.connects >= 1).await;
    for n in 1..=RECONNECTS {
        // Let this connection's get-alls (one per device) reach the devices first.
        until("get-alls of this connection answered", || {
            sim.stats().get_all_answered >= n * 2
        })
        .await;
        sim.faults().drop_connections().expect("embedded broker");
        until("reconnected", || run.stats.snapshot().source.connects > n).await;
    }
    let s = run.stats.snapshot();
    assert_eq!(s.source.connects, RECONNECTS + 1);
    assert_eq!(s.source.live_loops, 1, "exactly one connection loop");
    assert_eq!(
        s.source.live_get_all_timers, 2,
        "exactly one get-all timer per device"
    );
    // One get-all per device per connection (the 300 s period never came round): a
    // duplicated loop or timer would send more.
    let expected = (RECONNECTS + 1) * 2;
    until("every get-all answered", || {
        sim.stats().get_all_answered >= expected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run.stats.snapshot().source.get_all_sent, expected);
    assert_eq!(sim.stats().get_all_answered, expected);
    assert_eq!(sim.stats().mqtt_clients, 1, "one live MQTT client");
    let s = run.stop().await.snapshot();
    assert_eq!((s.source.live_loops, s.source.live_get_all_timers), (0, 0));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_api_is_a_network_failure_with_backoff() {
    // A port held bound but never listening: connecting there is refused.
    let closed = testkit::closed_port();
    let config = CloudConfig {
        way_in: WayIn::App,
        api_url: format!("https://{}", closed.addr),
        email: "me@example.com".into(),
        password: "pw".into(),
        devices: vec!["SN1".into()],
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_millis(400),
        ..CloudConfig::default()
    };
    let run = start(config, None);
    until("two failed attempts", || {
        run.stats.snapshot().reconnects >= 2
    })
    .await;
    let s = run.stats.snapshot();
    let last = s.source.last_error.unwrap_or_default();
    assert!(last.contains("cannot connect"), "{last}");
    assert!(last.contains("/auth/login"), "names the endpoint: {last}");
    assert_eq!((s.source.connects, s.source.live_loops), (0, 1));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_do_not_add_tokio_tasks() {
    let sim = simulator(None).await;
    let ca = sim.ca_cert_pem();
    // The source gets a runtime of its own, so its live tasks can be counted alone.
    let source_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, mut rx) = mpsc::channel(4096);
    let stats = BridgeStats::default();
    let source = CloudSource::with_ca_pem(app_config(&sim), Some(&ca), tx)
        .expect("config")
        .with_observer(Arc::new(StatsObserver(stats.clone())));
    let shutdown = CancellationToken::new();
    let task = source_rt.spawn(source.run(shutdown.clone()));
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });

    let settle = async |n: u64| {
        until("connected", || stats.snapshot().source.connects >= n).await;
        until("get-all answered", || sim.stats().get_all_answered >= n).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    settle(1).await;
    let after_first = source_rt.metrics().num_alive_tasks();
    for n in 2..=6u64 {
        sim.faults().drop_connections().expect("embedded broker");
        settle(n).await;
    }
    let after_many = source_rt.metrics().num_alive_tasks();
    eprintln!(
        "live tasks on the source runtime: {after_first} after 1 connection, {after_many} after 6"
    );
    assert!(after_first >= 1, "the source task itself");
    assert!(
        after_many <= after_first,
        "reconnects added tasks: {after_first} → {after_many}"
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    source_rt.shutdown_background();
    drain.abort();
    sim.shutdown().await;
}
