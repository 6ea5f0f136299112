//! The fleet-mode tests' shared parts: names unique to a run, marker frames published in
//! rounds, probe frames (their own serial) that tell when a subscriber has seen
//! everything published before them, and the marker rows in PostgreSQL.
//!
//! Why probes settle a count: the broker keeps each subscriber's messages in publish
//! order, so once a subscriber has a probe published after the broker acknowledged a
//! round, it has every frame of that round meant for it — no "wait a bit longer" for
//! stragglers or duplicates.

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use simulator::fleet::{FleetConfig, FleetPublisher, MARKER_KEY};
use testkit::services::MqttBroker;

/// How long probing may take before the test gives up.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// Letters and digits unique to this run (serial prefixes must be alphanumeric).
pub fn run_id() -> String {
    testkit::unique("").replace('_', "x")
}

/// A fleet on `broker` under `prefix`: `connections` MQTT connections, serials
/// `<serial_prefix><index>`.
pub fn fleet_on(
    broker: &MqttBroker,
    prefix: &str,
    serial_prefix: String,
    connections: usize,
) -> FleetConfig {
    FleetConfig {
        host: broker.host.clone(),
        port: broker.port,
        serial_prefix,
        topic_prefix: prefix.to_string(),
        connections,
        ..FleetConfig::default()
    }
}

/// (serial, marker) of every frame of `markers` rounds over `devices` devices.
pub fn frames(fleet: &FleetConfig, devices: usize, markers: Range<u32>) -> Vec<(String, u32)> {
    markers
        .flat_map(|m| (0..devices).map(move |d| (fleet.serial(d), m)))
        .collect()
}

/// Publishes one frame per device and marker, then waits until the broker has
/// acknowledged every one.
pub async fn publish_rounds(fleet: &FleetPublisher, devices: usize, markers: Range<u32>) {
    for marker in markers {
        for device in 0..devices {
            fleet.publish(device, marker).await.expect("published");
        }
    }
    assert!(
        fleet.flush(Duration::from_secs(60)).await,
        "broker acknowledged every frame"
    );
}

/// Probe frames from one device of their own, markers counting up across calls.
pub struct Probes {
    publisher: FleetPublisher,
    pub serial: String,
    pub serial_prefix: String,
    next: u32,
}

impl Probes {
    pub async fn connect(config: FleetConfig) -> Probes {
        let serial = config.serial(0);
        let serial_prefix = config.serial_prefix.clone();
        let publisher = FleetPublisher::connect(config)
            .await
            .expect("probe publisher connects");
        Probes {
            publisher,
            serial,
            serial_prefix,
            next: 1,
        }
    }

    /// Publishes probes (a new marker each, paced 25 ms apart) until `ok(marker)` holds
    /// for the last one published; returns that marker. A probe that reaches no one is
    /// simply lost, so this also waits out (un)subscription latency.
    pub async fn until(&mut self, what: &str, mut ok: impl AsyncFnMut(u32) -> bool) -> u32 {
        let start = Instant::now();
        while start.elapsed() < PROBE_LIMIT {
            let marker = self.next;
            self.next += 1;
            self.publisher
                .publish(0, marker)
                .await
                .expect("probe published");
            tokio::time::sleep(Duration::from_millis(25)).await;
            if ok(marker).await {
                return marker;
            }
        }
        panic!("{what}: not reached after {PROBE_LIMIT:?} of probes");
    }

    /// The marker the next probe will carry (every later probe carries a larger one).
    pub fn next_marker(&self) -> u32 {
        self.next
    }

    pub async fn shutdown(self) {
        self.publisher.shutdown().await;
    }
}

/// Marker rows per (device, marker) in `table` for serials starting with `serial_prefix`;
/// empty while the table does not exist yet (it appears with the first batch).
pub async fn marker_rows(
    pg_url: &str,
    table: &str,
    serial_prefix: &str,
) -> HashMap<(String, u32), i64> {
    let (client, connection) = tokio_postgres::connect(pg_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {pg_url}: {e}"));
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
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            HashMap::new()
        }
        Err(e) => panic!("query {table}: {e}"),
    }
}

/// Removes the run's table.
pub async fn drop_table(pg_url: &str, table: &str) {
    let (client, connection) = tokio_postgres::connect(pg_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {pg_url}: {e}"));
    tokio::spawn(connection);
    let _ = client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await;
}
