//! The fleet-mode broker source against a private mosquitto on a free loopback port that is
//! down at start, comes up, is killed and comes back: the source backs off while it cannot
//! connect, connects when it can, subscribes again after every reconnect (clean sessions),
//! keeps exactly one connection loop, and stops cleanly on shutdown.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};
use sources::{BrokerConfig, BrokerSource, RawPayload, decode_raw};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn mosquitto() -> PathBuf {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("mosquitto"))
            .find(|p| p.is_file())
    });
    in_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/mosquitto")).filter(|p| p.is_file()))
        .expect("the mosquitto binary is needed (apt install mosquitto)")
}

/// A mosquitto listening on 127.0.0.1:`port`; killed (SIGKILL) when dropped.
struct Broker(Child);

impl Broker {
    async fn start(port: u16) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("oceanbridge-reconnect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let broker = Broker(child);
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto listens on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Publishes frames until the source delivered one of them (bounded).
async fn delivered_after_publishing(port: u16, seen: &Arc<Mutex<Vec<u32>>>, first: u32) {
    let fleet = FleetPublisher::connect(FleetConfig {
        port,
        serial_prefix: "RECONNECT".into(),
        connections: 1,
        ..FleetConfig::default()
    })
    .await
    .expect("publisher connects");
    let mut ok = false;
    for marker in first..first + 200 {
        fleet.publish(0, marker).await.expect("published");
        tokio::time::sleep(Duration::from_millis(25)).await;
        if seen.lock().expect("seen").iter().any(|m| *m >= first) {
            ok = true;
            break;
        }
    }
    fleet.shutdown().await;
    assert!(ok, "no frame from marker {first} on was delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_off_connects_resubscribes_after_broker_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (tx, mut rx) = mpsc::channel::<RawPayload>(64);
    let source = BrokerSource::new(
        BrokerConfig {
            url: format!("mqtt://127.0.0.1:{port}"),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_millis(200),
            ..BrokerConfig::default()
        },
        tx,
    )
    .expect("valid config");
    let stats = source.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(shutdown.clone()));
    let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
    let sink = seen.clone();
    let consumer = tokio::spawn(async move {
        while let Some(raw) = rx.recv().await {
            let decoded = decode_raw(&raw.topic, &raw.payload).expect("fleet frame decodes");
            let marker = decoded
                .updates
                .iter()
                .find(|u| u.state.key == MARKER_KEY)
                .and_then(|u| u.value.as_number());
            if let Some(m) = marker {
                sink.lock().expect("seen").push(m as u32);
            }
        }
    });

    // Nothing listens yet: failed attempts, spaced by the backoff, one loop.
    wait_until("three failed attempts", || stats.snapshot().failures >= 3).await;
    let s = stats.snapshot();
    assert_eq!((s.connects, s.live_loops, s.connected), (0, 1, false));
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("connect"),
        "{s:?}"
    );

    // The broker comes up: the source connects and subscribes.
    let broker = Broker::start(port).await;
    wait_until("connected", || stats.snapshot().connects >= 1).await;
    delivered_after_publishing(port, &seen, 1).await;

    // The broker dies and comes back: a failure, a new connection, a new subscription.
    let failures = stats.snapshot().failures;
    drop(broker);
    wait_until("the loss is noticed", || {
        stats.snapshot().failures > failures
    })
    .await;
    let _broker = Broker::start(port).await;
    wait_until("reconnected", || stats.snapshot().connects >= 2).await;
    delivered_after_publishing(port, &seen, 1000).await;
    assert_eq!(stats.snapshot().live_loops, 1);

    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("source stops on shutdown")
        .expect("task joins");
    assert!(result.is_ok(), "{result:?}");
    let s = stats.snapshot();
    assert_eq!((s.live_loops, s.connected), (0, false));
    assert_eq!(s.dropped_queue_full, 0);
    let _ = tokio::time::timeout(Duration::from_secs(5), consumer).await;
}
