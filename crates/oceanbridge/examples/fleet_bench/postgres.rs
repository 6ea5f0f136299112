//! History ingest into PostgreSQL: the bridge with `[store] postgres_url` under fleet load,
//! and how fast its samples reach the table.

use std::time::{Duration, Instant};

use simulator::fleet::{FleetConfig, FleetPublisher};

use crate::bridge::{Bridge, Error, run_id};
use crate::{Args, Row};

const DEVICES: usize = 2000;

async fn count(client: &tokio_postgres::Client, table: &str) -> u64 {
    client
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await
        .map(|r| r.get::<_, i64>(0) as u64)
        .unwrap_or(0)
}

/// 2 000 devices × `rounds` (≤ 10) frames at 10 000 msg/s; each frame changes two states
/// (`loadPwr`, `pvPwr`), the first one also stores `gridPwr` and `bpSoc`.
pub async fn ingest(args: &Args) -> Result<Vec<Row>, Error> {
    let url = args.postgres.clone().ok_or("no --postgres URL")?;
    let id = run_id();
    let table = format!("obbench_{id}");
    let prefix = format!("obbench/{id}");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let bridge = Bridge::start_with(
        &args.bin,
        1883,
        &prefix,
        1024,
        args.qos,
        &format!("postgres_url = \"{url}\"\npostgres_table = \"{table}\"\n"),
    )?;
    bridge.web_addr().await?;
    bridge
        .wait_line("MQTT broker connected", Duration::from_secs(20))
        .await?;
    let rounds = args.rounds.min(10);
    let expected = DEVICES as u64 * (2 * u64::from(rounds) + 2);
    let fleet = FleetPublisher::connect(FleetConfig {
        serial_prefix: format!("H{id}D"),
        topic_prefix: prefix,
        connections: 2,
        ..FleetConfig::default()
    })
    .await?;
    let start = Instant::now();
    fleet
        .run_paced(DEVICES, args_rate_per_device(args), 1, rounds)
        .await?;
    fleet.flush(Duration::from_secs(30)).await;
    let published = start.elapsed();
    let mut rows = count(&client, &table).await;
    let mut last_change = Instant::now();
    while rows < expected && last_change.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count(&client, &table).await;
        if now != rows {
            rows = now;
            last_change = Instant::now();
        }
    }
    let done = if rows >= expected {
        start.elapsed()
    } else {
        last_change.duration_since(start)
    };
    fleet.shutdown().await;
    bridge.stop().await;
    let _ = client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await;
    let label = "(e) PostgreSQL history ingest";
    Ok(vec![
        Row::new(
            label,
            "frames / rows expected",
            format!("{} / {expected}", DEVICES as u64 * u64::from(rounds)),
        ),
        Row::new(
            label,
            "rows in the table / lag after the last publish",
            format!(
                "{rows} / {:.1} s",
                done.saturating_sub(published).as_secs_f64()
            ),
        )
        .target("all rows", rows == expected),
        Row::new(
            label,
            "ingest rate (rows / time to last row)",
            format!("{:.0} rows/s", rows as f64 / done.as_secs_f64()),
        ),
    ])
}

/// Frames per second per device: `BENCH_PG_RATE` (default 5, i.e. 10 000 msg/s).
fn args_rate_per_device(_args: &Args) -> f64 {
    std::env::var("BENCH_PG_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r: &f64| r.is_finite() && *r > 0.0)
        .unwrap_or(5.0)
}
