//! `oceanbridge demo`: the simulated EcoFlow cloud in-process and the bridge against it
//! through the same login → certification → MQTT/TLS path a real account uses (the
//! simulator's CA is trusted explicitly), with the dashboard on 127.0.0.1 and the rolling
//! raw-frame capture beside the history file. No setup. The simulated device has control
//! on, so the dashboard gets a random token (printed once, with the URL): the page asks for
//! it, and with it the Settings card can change settings. Both paths run (docs/modbus.md):
//! the simulated device's Modbus TCP side is on and the bridge reads it beside the cloud,
//! and re-serves the register map on its own Modbus server (both addresses printed).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use model::BridgeStats;
use simulator::{ModbusConfig as SimModbus, Simulator, SimulatorConfig};
use sinks::modbus_server::ModbusServerConfig;
use sinks::web::WebConfig;
use sources::modbus::ModbusConfig;
use sources::{CloudConfig, CloudSource, WayIn};
use store::StateStore;
use tokio_util::sync::CancellationToken;

use runtime::{Bridge, BridgeOptions, Source};

/// Arguments of `oceanbridge demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Dashboard port on 127.0.0.1 (a free one is taken if it is busy).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Dashboard address (keep it local unless you know why).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// SQLite history file (kept between runs; `*.db` is git-ignored).
    #[arg(long, value_name = "PATH", default_value = "oceanbridge-demo.db")]
    pub db: PathBuf,
    /// Simulated seconds per real second (e.g. 60: a day in 24 minutes).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Way in: `app` (email + password) or `open-api` (access + secret key, JSON quotas).
    #[arg(long, value_enum, default_value_t = DemoWayIn::App)]
    pub way_in: DemoWayIn,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub log: super::common::LogArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoWayIn {
    App,
    OpenApi,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let log = crate::logging::init(&args.log.log_level);
    super::common::block_on(demo(args, log))?
}

async fn demo(args: DemoArgs, log: runtime::LogRing) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    runtime::shutdown::cancel_after(shutdown.clone(), args.duration);

    let sim_config = SimulatorConfig {
        speed: args.speed,
        modbus: SimModbus {
            enabled: true,
            ..SimModbus::default()
        },
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(sim_config.clone())
        .await
        .context("cannot start the simulator")?;

    // A new token every run, printed once below; writes need one, and the page asks for it.
    let token = sinks::web::new_token();
    let web = WebConfig {
        bind: SocketAddr::new(args.bind, args.port),
        token: Some(token.as_str().into()),
        ..WebConfig::default()
    };
    let mut options = BridgeOptions::demo(args.db.clone(), capture_dir(&args.db), web, log);
    let device = sim_config.devices.first().cloned();
    let device_modbus = device.as_deref().and_then(|sn| sim.modbus_addr(sn));
    options.modbus = device_modbus.map(|addr| ModbusConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        serial: device.clone(),
        ..ModbusConfig::default()
    });
    options.modbus_server = Some(ModbusServerConfig {
        // A free port: the demo must start beside anything already on 5020.
        bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        serial: device,
        ..ModbusServerConfig::default()
    });
    let mut bridge = Bridge::start(options, &shutdown).await?;

    let source_config = source_config(&sim, &sim_config, args.way_in);
    let ca = sim.ca_cert_pem();
    let source = CloudSource::with_ca_pem(source_config, Some(&ca), bridge.sender())?;
    let source = runtime::service::attach(&mut bridge, Source::Cloud(source), &shutdown);
    let source_task = tokio::spawn(source.run(shutdown.clone()));

    if let Some(addr) = bridge.web_addr {
        banner(
            addr,
            &token,
            &args,
            device_modbus,
            bridge.modbus_server_addr,
        );
    }
    let first = tokio::select! {
        t = first_states(&bridge.store, &bridge.stats) => Some(t),
        _ = shutdown.cancelled() => None,
        _ = tokio::time::sleep(Duration::from_secs(30)) => None,
    };
    match first {
        Some(count) => eprintln!(
            "oceanbridge demo: {count} live states after {:.1} s (Ctrl-C to stop)",
            started.elapsed().as_secs_f64()
        ),
        None if !shutdown.is_cancelled() => {
            eprintln!("oceanbridge demo: no states after 30 s — see the log lines above")
        }
        None => {}
    }
    shutdown.cancelled().await;
    let source_result = source_task.await;
    bridge.finish().await;
    sim.shutdown().await;
    match source_result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(anyhow::anyhow!(e)),
        Err(e) => Err(anyhow::anyhow!("source task failed: {e}")),
    }
}

/// The demo's rolling raw-frame capture: `<db stem>-capture/` beside the history file
/// (`oceanbridge-demo-capture/` by default; `oceanbridge diagnose --capture-dir` reads it).
pub fn capture_dir(db: &std::path::Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oceanbridge-demo".into());
    db.with_file_name(format!("{stem}-capture"))
}

/// The bridge's source config for the simulator: the same fields a real user sets.
fn source_config(sim: &Simulator, sim_config: &SimulatorConfig, way_in: DemoWayIn) -> CloudConfig {
    let base = CloudConfig {
        api_url: sim.http_base_url(),
        devices: sim_config.devices.clone(),
        reconnect_min: Duration::from_millis(500),
        reconnect_max: Duration::from_secs(10),
        ..CloudConfig::default()
    };
    match way_in {
        DemoWayIn::App => CloudConfig {
            way_in: WayIn::App,
            email: sim_config.email.clone(),
            password: sim_config.password.as_str().into(),
            ..base
        },
        DemoWayIn::OpenApi => CloudConfig {
            way_in: WayIn::OpenApi,
            access_key: sim_config.access_key.clone(),
            secret_key: sim_config.secret_key.as_str().into(),
            get_all_interval: Duration::from_secs(60),
            ..base
        },
    }
}

/// Waits until states arrived in this run (not just restored from the history file);
/// returns how many states the store then holds.
async fn first_states(store: &StateStore, stats: &BridgeStats) -> usize {
    loop {
        if stats.snapshot().states_decoded > 0 {
            return store.devices().iter().map(|d| d.state_count).sum();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn banner(
    addr: SocketAddr,
    token: &str,
    args: &DemoArgs,
    device_modbus: Option<SocketAddr>,
    bridge_modbus: Option<SocketAddr>,
) {
    let url = format!("http://{addr}/");
    let line = "=".repeat(72);
    eprintln!();
    eprintln!("{line}");
    eprintln!("  oceanbridge demo");
    eprintln!("  Dashboard:  {url}");
    eprintln!("  Token:      {token}");
    eprintln!("              (the page asks for it once; with it the Settings card can write)");
    eprintln!("  Metrics:    {url}metrics  (header Authorization: Bearer <token>)");
    eprintln!("  History:    {}", args.db.display());
    eprintln!("  Capture:    {}", capture_dir(&args.db).display());
    if let Some(device) = device_modbus {
        eprintln!("  Modbus:     the device's Modbus TCP on {device}, read beside the cloud");
    }
    if let Some(served) = bridge_modbus {
        eprintln!(
            "              re-served by the bridge on {served} (e.g. mbpoll -m tcp -p {} -a 1 -0 -1 -t 4:float -r 40519 -c 4 {})",
            served.port(),
            served.ip()
        );
    }
    eprintln!("{line}");
    eprintln!();
}
