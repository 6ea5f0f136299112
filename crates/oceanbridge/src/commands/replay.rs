//! `oceanbridge replay FILE [--speed X]`: a record file through the pipeline (decode →
//! stats → store), then a summary. Truncated or corrupt lines are reported with their
//! line number and skipped. `--serve` keeps the dashboard up on the replayed data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use runtime::pipeline::{self, Outcome};
use runtime::{Bridge, BridgeOptions};

/// Arguments of `oceanbridge replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A file written by `oceanbridge record` (JSON lines: topic, time, hex).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Playback speed: 1 = the recorded pace, 10 = ten times faster, 0 = no waiting.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// After the replay, serve the dashboard on this address until Ctrl-C. An address
    /// other machines can reach needs a token, taken from OCEANBRIDGE_WEB_TOKEN.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<SocketAddr>,
    /// Keep the replayed history in this SQLite file (default: memory only).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub log: super::common::QuietLogArg,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init(&args.log.log_level);
    let token = web_token(args.serve)?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let (payloads, bad) = sources::record::read_lines(std::io::BufReader::new(file));
    for b in &bad {
        eprintln!("{}:{}: skipped: {}", args.file.display(), b.line, b.reason);
    }
    super::common::block_on(replay(args, token, payloads, bad.len()))?
}

/// The dashboard token for `--serve`: replay has no config file, so the environment is
/// where it comes from (never a flag: a flag shows in `ps`). A public address without one
/// is refused before anything is read, naming what replay does take — the `[web]` keys
/// the bridge's own check names do not exist here.
fn web_token(serve: Option<SocketAddr>) -> anyhow::Result<Option<connect::Secret>> {
    let token = std::env::var("OCEANBRIDGE_WEB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(connect::Secret::new);
    match serve {
        Some(addr) if is_public(addr) && token.is_none() => anyhow::bail!(
            "replay --serve {addr} is reachable from other machines: set OCEANBRIDGE_WEB_TOKEN \
             (the dashboard then asks for it), or serve on 127.0.0.1"
        ),
        _ => Ok(token),
    }
}

/// The web sink's own rule (IPv4-mapped loopback included).
fn is_public(bind: SocketAddr) -> bool {
    sinks::web::WebConfig {
        bind,
        ..sinks::web::WebConfig::default()
    }
    .is_public()
}

async fn replay(
    args: ReplayArgs,
    token: Option<connect::Secret>,
    payloads: Vec<sources::RawPayload>,
    bad_lines: usize,
) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    let mut options = BridgeOptions::replay(args.db.clone(), args.serve);
    if let Some(web) = options.web.as_mut() {
        web.token = token;
    }
    let bridge = Bridge::start(options, &shutdown).await?;
    let speed = if args.speed.is_finite() && args.speed > 0.0 {
        Some(args.speed)
    } else {
        None
    };
    let started = Instant::now();
    let first_time = payloads.first().map(|p| p.received_at);
    let mut states = 0usize;
    let mut applied = 0usize;
    let mut rejected: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut buf = protocol::UpdateBuf::new();
    for raw in &payloads {
        if shutdown.is_cancelled() {
            break;
        }
        if let (Some(speed), Some(first)) = (speed, first_time) {
            let offset = raw
                .received_at
                .duration_since(first)
                .unwrap_or(Duration::ZERO)
                .div_f64(speed);
            let due = started + offset;
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        // Replayed values are stamped with their recorded time, so history lines up.
        match pipeline::process(&mut buf, raw, &bridge.store, &bridge.stats) {
            Outcome::Applied(n) => {
                applied += 1;
                states += n;
            }
            Outcome::Rejected(reason) => *rejected.entry(reason).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();
    let snapshot = bridge.stats.snapshot();
    let devices = bridge.store.devices();
    println!(
        "replayed {} payloads in {:.3} s ({:.0} payloads/s)",
        payloads.len(),
        elapsed.as_secs_f64(),
        rate(payloads.len(), elapsed)
    );
    println!("  decoded payloads: {applied}, states applied: {states}");
    println!("  bad lines skipped: {bad_lines}");
    for (reason, n) in &rejected {
        println!("  rejected payloads ({reason}): {n}");
    }
    for (reason, n) in &snapshot.skipped {
        println!("  skipped frames ({reason}): {n}");
    }
    for d in &devices {
        println!(
            "  device {}: {} states, online {}",
            d.device_sn,
            d.state_count,
            d.online.map_or("unknown", |o| if o { "yes" } else { "no" })
        );
    }
    if let Some(addr) = bridge.web_addr {
        eprintln!("oceanbridge replay: dashboard http://{addr}/ (Ctrl-C to stop)");
        shutdown.cancelled().await;
    }
    shutdown.cancel();
    bridge.finish().await;
    Ok(ExitCode::SUCCESS)
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}
