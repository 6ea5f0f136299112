//! Fleet mode with two processes of the real binary (`oceanbridge run`, `[source] kind =
//! "mqtt"`, one shared-subscription group) on the shared MQTT broker (mosquitto on
//! 127.0.0.1:1883), both writing history into one PostgreSQL table (127.0.0.1:5432, user
//! postgres, db test): every frame lands exactly once; after `kill -9` of one process the
//! other stores every later frame. `oceanbridge record` in fleet mode writes the broker's
//! frames, prefix removed, to its record file. Topic prefix, group, serials and table are
//! unique per run. Without the broker or PostgreSQL the test fails under `CI=true` and
//! skips elsewhere.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};
use support::fleet::{Probes, fleet_on, frames, marker_rows, publish_rounds, run_id};
use support::{Bridge, STARTUP, bin};
use testkit::Proc;
use testkit::services::MqttBroker;

const DEVICES: usize = 10;

/// What one bridge process needs to know about the run.
struct Run<'a> {
    broker: &'a MqttBroker,
    pg_url: &'a str,
    prefix: String,
    group: String,
    table: String,
}

fn start(run: &Run, dir: &Path, name: &str) -> Bridge {
    let config = format!(
        "[source]\nkind = \"mqtt\"\nurl = \"{}\"\nshared_group = \"{}\"\ntopic_prefix = \"{}\"\n\
         client_id = \"{}-{name}\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n\n\
         [store]\npostgres_url = \"{}\"\npostgres_table = \"{}\"\n\n\
         [web]\nbind = \"127.0.0.1:0\"\n",
        run.broker.url(),
        run.group,
        run.prefix,
        run.group,
        run.pg_url,
        run.table
    );
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).expect("process dir");
    let bridge = Bridge::start(&dir, &config, &[]);
    bridge.proc.wait_stderr("MQTT broker connected", STARTUP);
    bridge
}

/// The marker (`loadPwr`) the bridge at `addr` holds for device `sn`, if any.
async fn marker_on(addr: SocketAddr, sn: &str) -> Option<u32> {
    let r = testkit::http::get(addr, &format!("/api/states?device={sn}"), &[]).await;
    if r.status != 200 {
        return None;
    }
    r.json()["states"]
        .as_array()?
        .iter()
        .find(|s| s["key"] == MARKER_KEY)
        .and_then(|s| s["value"].as_f64())
        .map(|v| v as u32)
}

/// Waits until every bridge in `alive` has decoded a probe published after this call
/// (so each has every frame published before it), then until PostgreSQL holds each of
/// those probes' rows (each process writes its history in order, so its earlier rows are
/// in too). Returns the fleet's marker rows then.
async fn settled_rows(
    run: &Run<'_>,
    probes: &mut Probes,
    alive: &[SocketAddr],
    fleet: &FleetConfig,
) -> HashMap<(String, u32), i64> {
    let first = probes.next_marker();
    let sn = probes.serial.clone();
    let mut latest: Vec<Option<u32>> = vec![None; alive.len()];
    probes
        .until(
            "every process has a probe sent after the rounds",
            async |_| {
                for (slot, addr) in latest.iter_mut().zip(alive) {
                    *slot = marker_on(*addr, &sn).await;
                }
                latest.iter().all(|m| m.is_some_and(|m| m >= first))
            },
        )
        .await;
    let written = testkit::wait_for_async(Duration::from_secs(60), async || {
        let rows = marker_rows(run.pg_url, &run.table, &probes.serial_prefix).await;
        latest
            .iter()
            .flatten()
            .all(|m| rows.contains_key(&(sn.clone(), *m)))
            .then_some(())
    })
    .await;
    assert!(
        written.is_some(),
        "probe rows {latest:?} never reached PostgreSQL"
    );
    marker_rows(run.pg_url, &run.table, &fleet.serial_prefix).await
}

/// Every frame of `markers` exactly once in `rows`, and no other frame of those rounds.
fn assert_exactly_once(
    rows: &HashMap<(String, u32), i64>,
    fleet: &FleetConfig,
    markers: std::ops::Range<u32>,
    what: &str,
) {
    let expected = frames(fleet, DEVICES, markers.clone());
    for m in &expected {
        assert_eq!(rows.get(m), Some(&1), "{what}: rows of {m:?}");
    }
    let in_range = rows.keys().filter(|(_, m)| markers.contains(m)).count();
    assert_eq!(in_range, expected.len(), "{what}: unexpected rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_stream_and_one_survives_kill_9() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let pg_url = testkit::require!(testkit::services::postgres());
    let id = run_id();
    let run = Run {
        broker: &broker,
        pg_url: &pg_url,
        prefix: format!("obtest/{id}"),
        group: format!("obp{id}"),
        table: format!("fleetp_{id}"),
    };
    let fleet_config = fleet_on(&broker, &run.prefix, format!("G{id}D"), 1);
    let mut probes = Probes::connect(fleet_on(&broker, &run.prefix, format!("Q{id}D"), 1)).await;
    let probe_sn = probes.serial.clone();

    let dir = testkit::temp_dir("fleet-processes");
    let (a, b) = tokio::task::block_in_place(|| {
        (start(&run, dir.path(), "a"), start(&run, dir.path(), "b"))
    });
    let (a_addr, b_addr) = (a.web, b.web);
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("fleet publisher connects");

    // Both processes subscribed: each has received some probe.
    probes
        .until("probes reach both processes", async |_| {
            marker_on(a_addr, &probe_sn).await.is_some()
                && marker_on(b_addr, &probe_sn).await.is_some()
        })
        .await;

    // Both alive: every frame exactly once in the one table, written by both.
    publish_rounds(&fleet, DEVICES, 1..21).await;
    let rows = settled_rows(&run, &mut probes, &[a_addr, b_addr], &fleet_config).await;
    assert_exactly_once(&rows, &fleet_config, 1..21, "both alive");
    let mut held = [0, 0];
    for (n, addr) in held.iter_mut().zip([a_addr, b_addr]) {
        for d in 0..DEVICES {
            *n += usize::from(marker_on(addr, &fleet_config.serial(d)).await.is_some());
        }
    }
    assert!(
        held[0] > 0 && held[1] > 0,
        "both processes decoded part of the stream: {held:?}"
    );

    // kill -9 a (dropping the bridge SIGKILLs and reaps it), then b takes over: three
    // probes in a row on b.
    drop(a);
    let mut streak = 0;
    probes
        .until("b receives every probe", async |marker| {
            streak = if marker_on(b_addr, &probe_sn).await == Some(marker) {
                streak + 1
            } else {
                0
            };
            streak >= 3
        })
        .await;

    publish_rounds(&fleet, DEVICES, 21..41).await;
    let rows = settled_rows(&run, &mut probes, &[b_addr], &fleet_config).await;
    assert_exactly_once(&rows, &fleet_config, 21..41, "after kill -9 of a");

    let mut b = b;
    assert!(b.stop(), "b exits cleanly on SIGTERM");
    fleet.shutdown().await;
    probes.shutdown().await;
    support::fleet::drop_table(&pg_url, &run.table).await;
}

/// (serial, marker) of every line of a record file, read back with the replay reader.
fn recorded_markers(path: &Path) -> Vec<(String, u32)> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let (good, bad) = sources::record::read_lines(std::io::BufReader::new(file));
    // A line being written at this moment may be cut short; a bad line elsewhere is not.
    assert!(bad.len() <= 1, "bad lines in the record file: {bad:?}");
    good.iter()
        .filter_map(|raw| {
            assert!(
                raw.topic.starts_with("/app/device/property/"),
                "topic prefix not removed: {}",
                raw.topic
            );
            let decoded = sources::decode_raw(&raw.topic, &raw.payload).expect("frame decodes");
            let marker = decoded.updates.iter().find(|u| u.state.key == MARKER_KEY)?;
            Some((
                marker.device_sn.to_string(),
                marker.value.as_number()? as u32,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_in_fleet_mode_writes_the_brokers_frames() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    let id = run_id();
    let prefix = format!("obrec/{id}");
    let dir = testkit::temp_dir("fleet-record");
    let config = dir.path().join("oceanbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nkind = \"mqtt\"\nurl = \"{}\"\ntopic_prefix = \"{prefix}\"\n",
            broker.url()
        ),
    )
    .expect("write config");
    let out = dir.path().join("record.jsonl");
    let mut cmd = bin();
    cmd.arg("record")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out);
    let mut record = Proc::spawn(cmd);
    tokio::task::block_in_place(|| record.wait_stderr("MQTT broker connected", STARTUP));

    // Subscribed once a probe lands in the file; then rounds, settled by a later probe.
    let mut probes = Probes::connect(fleet_on(&broker, &prefix, format!("Q{id}D"), 1)).await;
    let probe_sn = probes.serial.clone();
    let has_probe = |from: u32| {
        recorded_markers(&out)
            .iter()
            .any(|(sn, m)| *sn == probe_sn && *m >= from)
    };
    probes
        .until("a probe is recorded", async |_| has_probe(0))
        .await;
    let fleet_config = fleet_on(&broker, &prefix, format!("R{id}D"), 1);
    let fleet = FleetPublisher::connect(fleet_config.clone())
        .await
        .expect("fleet publisher connects");
    publish_rounds(&fleet, DEVICES, 1..6).await;
    let after = probes.next_marker();
    probes
        .until("a probe sent after the rounds is recorded", async |_| {
            has_probe(after)
        })
        .await;

    record.sigterm();
    let status = tokio::task::block_in_place(|| record.wait_exit(STARTUP));
    assert!(status.success(), "{status:?}\n{}", record.stderr());
    assert!(
        record.stderr().contains("payloads written"),
        "{}",
        record.stderr()
    );
    let mut got: Vec<(String, u32)> = recorded_markers(&out)
        .into_iter()
        .filter(|(sn, _)| sn.starts_with(&fleet_config.serial_prefix))
        .collect();
    got.sort();
    let mut expected = frames(&fleet_config, DEVICES, 1..6);
    expected.sort();
    assert_eq!(got, expected, "every frame recorded exactly once");
    fleet.shutdown().await;
    probes.shutdown().await;
}
