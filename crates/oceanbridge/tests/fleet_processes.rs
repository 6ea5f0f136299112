//! Fleet mode with two processes of the real binary (`oceanbridge run`, `[source] kind =
//! "mqtt"`, one shared-subscription group) on the local mosquitto (127.0.0.1:1883), both
//! writing history into one PostgreSQL table (127.0.0.1:5432, user postgres, db test):
//! every frame lands exactly once; after `kill -9` of one process the other stores every
//! later frame. Topic prefix, group, serials and table are unique per run.

mod bridge_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bridge_support::{Proc, bin, http_get, temp_path};
use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEVICES: usize = 10;

fn config_file(name: &str, prefix: &str, group: &str, table: &str) -> PathBuf {
    let path = temp_path(&format!("fleet-{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[source]\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\n\
             shared_group = \"{group}\"\ntopic_prefix = \"{prefix}\"\n\
             client_id = \"{group}-{name}\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n\n\
             [store]\npostgres_url = \"{PG_URL}\"\npostgres_table = \"{table}\"\n\n\
             [web]\nbind = \"127.0.0.1:0\"\n"
        ),
    )
    .expect("write config");
    path
}

fn start(name: &str, prefix: &str, group: &str, table: &str) -> (Proc, SocketAddr) {
    let mut cmd = bin();
    cmd.args(["run", "--config"])
        .arg(config_file(name, prefix, group, table));
    let proc = Proc::spawn(cmd);
    let addr = proc.dashboard_addr(Duration::from_secs(30));
    proc.wait_stderr("MQTT broker connected", Duration::from_secs(30));
    (proc, addr)
}

/// The marker (`loadPwr`) the bridge at `addr` holds for device `sn`, if any.
async fn marker_on(addr: SocketAddr, sn: String) -> Option<u32> {
    tokio::task::spawn_blocking(move || {
        let (status, body) = http_get(addr, &format!("/api/states?device={sn}"));
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["states"]
            .as_array()?
            .iter()
            .find(|s| s["key"] == MARKER_KEY)
            .and_then(|s| s["value"].as_f64())
            .map(|v| v as u32)
    })
    .await
    .ok()
    .flatten()
}

/// Publishes probe frames until `ok(marker)` holds (bounded).
async fn probe_until(
    probes: &FleetPublisher,
    what: &str,
    mut ok: impl AsyncFnMut(u32) -> bool,
) -> u32 {
    for marker in 1..=300u32 {
        probes.publish(0, marker).await.expect("probe published");
        tokio::time::sleep(Duration::from_millis(30)).await;
        if ok(marker).await {
            return marker;
        }
    }
    panic!("{what}: not reached after 300 probes");
}

/// Marker rows per (device, marker) in the shared table.
async fn rows(table: &str, serial_prefix: &str) -> HashMap<(String, u32), i64> {
    let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, db test) is needed");
    tokio::spawn(connection);
    let result = client
        .query(
            &format!(
                "SELECT device, num, count(*) FROM \"{table}\" WHERE key = $1 AND device LIKE $2 \
                 GROUP BY device, num"
            ),
            &[&MARKER_KEY, &format!("{serial_prefix}%")],
        )
        .await;
    match result {
        Ok(rows) => rows
            .iter()
            .map(|r| {
                let (device, num, n): (String, f64, i64) = (r.get(0), r.get(1), r.get(2));
                ((device, num as u32), n)
            })
            .collect(),
        // The table appears with the first batch.
        Err(_) => HashMap::new(),
    }
}

/// Waits until the table holds every expected frame, then checks each is there once.
async fn assert_rows_exactly_once(
    table: &str,
    fleet: &FleetConfig,
    markers: std::ops::Range<u32>,
    what: &str,
) {
    let expected: Vec<(String, u32)> = markers
        .clone()
        .flat_map(|m| (0..DEVICES).map(move |d| (fleet.serial(d), m)))
        .collect();
    let start = Instant::now();
    let mut counts = rows(table, &fleet.serial_prefix).await;
    while expected.iter().any(|m| !counts.contains_key(m)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {} of {} frames in PostgreSQL after 30 s",
            expected.iter().filter(|m| counts.contains_key(m)).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        counts = rows(table, &fleet.serial_prefix).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // room for a duplicate to land
    let counts = rows(table, &fleet.serial_prefix).await;
    for m in &expected {
        assert_eq!(counts.get(m), Some(&1), "{what}: rows of {m:?}");
    }
    let in_range = counts.keys().filter(|(_, m)| markers.contains(m)).count();
    assert_eq!(in_range, expected.len(), "{what}: unexpected rows");
}

async fn publish_rounds(fleet: &FleetPublisher, markers: std::ops::Range<u32>) {
    for marker in markers {
        for device in 0..DEVICES {
            fleet.publish(device, marker).await.expect("published");
        }
    }
    assert!(
        fleet.flush(Duration::from_secs(20)).await,
        "broker acked all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_stream_and_one_survives_kill_9() {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let run = format!("{}y{}", std::process::id(), nanos % 1_000_000_000);
    let prefix = format!("obtest/{run}");
    let group = format!("obp{run}");
    let table = format!("fleetp_{run}");
    let fleet_config = FleetConfig {
        serial_prefix: format!("G{run}D"),
        topic_prefix: prefix.clone(),
        connections: 1,
        ..FleetConfig::default()
    };
    let probe_config = FleetConfig {
        serial_prefix: format!("Q{run}D"),
        topic_prefix: prefix.clone(),
        connections: 1,
        ..FleetConfig::default()
    };
    let probe_sn = probe_config.serial(0);

    let (a, a_addr) = start("a", &prefix, &group, &table);
    let (b, b_addr) = start("b", &prefix, &group, &table);
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("mosquitto on 127.0.0.1:1883 is needed (apt install mosquitto)");
    let probes = FleetPublisher::connect(probe_config)
        .await
        .expect("probe publisher");

    // Both processes subscribed: each has received some probe.
    probe_until(&probes, "probes reach both processes", async |_| {
        marker_on(a_addr, probe_sn.clone()).await.is_some()
            && marker_on(b_addr, probe_sn.clone()).await.is_some()
    })
    .await;

    // Both alive: every frame exactly once in the one table, written by both.
    publish_rounds(&fleet, 1..21).await;
    assert_rows_exactly_once(&table, &fleet_config, 1..21, "both alive").await;
    let held = |addr| {
        let sns: Vec<String> = (0..DEVICES).map(|d| fleet_config.serial(d)).collect();
        async move {
            let mut n = 0;
            for sn in sns {
                n += usize::from(marker_on(addr, sn).await.is_some());
            }
            n
        }
    };
    assert!(
        held(a_addr).await > 0 && held(b_addr).await > 0,
        "both processes decoded part of the stream"
    );

    // kill -9 a (dropping a Proc kills it), then b takes over: three probes in a row on b.
    drop(a); // Proc's drop sends SIGKILL and reaps the process
    let mut streak = 0;
    probe_until(&probes, "b receives every probe", async |marker| {
        streak = if marker_on(b_addr, probe_sn.clone()).await == Some(marker) {
            streak + 1
        } else {
            0
        };
        streak >= 3
    })
    .await;

    publish_rounds(&fleet, 21..41).await;
    assert_rows_exactly_once(&table, &fleet_config, 21..41, "after kill -9 of a").await;

    b.sigterm();
    drop(b);
    fleet.shutdown().await;
    probes.shutdown().await;
    let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let _ = client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await;
}
