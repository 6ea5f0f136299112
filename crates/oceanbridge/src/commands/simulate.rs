//! `oceanbridge simulate`: run the simulated EcoFlow cloud standalone (HTTPS login and
//! certification, the signed open API, an MQTT/TLS broker, living PowerOcean Fit devices)
//! and print how to connect to it. Ctrl-C (or SIGTERM) stops it cleanly. It behaves like
//! the real cloud by default (the `[field]` section, docs/simulator.md); `--lenient`
//! turns every field rule off.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use simulator::{ExternalBroker, FieldConfig, Simulator, SimulatorConfig};

/// Arguments of `oceanbridge simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Simulator config file (TOML, the `SimulatorConfig` fields); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Device serial numbers, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub devices: Option<Vec<String>>,
    /// Battery packs per device (1–3, 5 kWh each).
    #[arg(long)]
    pub packs: Option<u8>,
    /// Simulated seconds per real second (60 = an hour a minute).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Address to listen on (keep it local unless you know why).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// HTTP API port (0 = any free port; the chosen one is printed).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// MQTT/TLS port of the embedded broker (0 = any free port).
    #[arg(long)]
    pub mqtt_port: Option<u16>,
    /// Serve the HTTP API without TLS.
    #[arg(long)]
    pub plain_http: bool,
    /// Publish into this MQTT broker (host:port or mqtt://host:port, plain TCP) instead of
    /// the embedded one.
    #[arg(long)]
    pub external_broker: Option<String>,
    /// Login for the external broker.
    #[arg(long, requires = "external_broker")]
    pub external_user: Option<String>,
    #[arg(long, requires = "external_user")]
    pub external_password: Option<String>,
    /// App account e-mail.
    #[arg(long)]
    pub email: Option<String>,
    /// App account password.
    #[arg(long)]
    pub password: Option<String>,
    /// Open-API access key / secret key.
    #[arg(long)]
    pub access_key: Option<String>,
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Lifetime of app login tokens, seconds.
    #[arg(long)]
    pub token_ttl: Option<f64>,
    /// Where to write the CA certificate clients must trust (replaced atomically, never
    /// written through a symlink). Default: `ca.pem` in --state-dir, else in a private
    /// directory made for this run (0700, random name under $TMPDIR, removed at exit);
    /// the banner prints the path.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Keep the CA and server key here, so a restarted simulator presents the same
    /// certificates (a running bridge keeps trusting it).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The kind cloud of old: every field rule of the `[field]` section off (stream
    /// without the switch, any client id, logins forever, lax signing, one region).
    #[arg(long)]
    pub lenient: bool,
    /// Lifetime of the MQTT logins certification hands out (e.g. "30s", "24h"; "0s" = forever).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub credential_ttl: Option<Duration>,
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    super::common::block_on_with_workers(2, simulate(config, args))?
}

fn build_config(args: &SimulateArgs) -> anyhow::Result<SimulatorConfig> {
    let mut c: SimulatorConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("bad config {}", path.display()))?
        }
        None => SimulatorConfig::default(),
    };
    if let Some(d) = &args.devices {
        c.devices = d.iter().map(|s| s.trim().to_string()).collect();
    }
    if let Some(p) = args.packs {
        c.packs = p;
    }
    if let Some(s) = args.speed {
        c.speed = s;
    }
    c.http_bind = SocketAddr::new(args.bind, args.http_port.unwrap_or(c.http_bind.port()));
    c.mqtt_bind = SocketAddr::new(args.bind, args.mqtt_port.unwrap_or(c.mqtt_bind.port()));
    if args.plain_http {
        c.http_tls = false;
    }
    if let Some(addr) = &args.external_broker {
        c.external_broker = Some(ExternalBroker {
            username: args.external_user.clone(),
            password: args.external_password.clone(),
            ..ExternalBroker::from_url(addr).context("--external-broker")?
        });
    }
    let set = |target: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            *target = v.clone();
        }
    };
    set(&mut c.email, &args.email);
    set(&mut c.password, &args.password);
    set(&mut c.access_key, &args.access_key);
    set(&mut c.secret_key, &args.secret_key);
    if args.lenient {
        c.field = FieldConfig::lenient();
    }
    if let Some(ttl) = args.credential_ttl {
        c.field.credential_ttl = ttl;
    }
    if let Some(dir) = &args.state_dir {
        c.state_dir = Some(dir.clone());
    }
    if let Some(ttl) = args.token_ttl {
        c.token_ttl = Duration::try_from_secs_f64(ttl).context("--token-ttl: seconds, > 0")?;
    }
    Ok(c)
}

async fn simulate(config: SimulatorConfig, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let sim = Simulator::start(config.clone())
        .await
        .context("cannot start the simulator")?;
    // Held to the end: a per-run directory is deleted when this is dropped.
    let (ca_file, _run_dir) = ca_path(&args)?;
    runtime::data_dir::write_atomic(&ca_file, sim.ca_cert_pem().as_bytes())?;
    print_banner(&sim, &config, &ca_file);

    let duration = args
        .duration
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
    let reason = tokio::select! {
        r = runtime::shutdown::wait_for_signal() => r,
        _ = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        } => "time is up",
    };
    eprintln!("oceanbridge simulate: {reason}; stopping (devices send their offline message)");
    let stats = sim.stats();
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .context("shutdown took longer than 10 s")?;
    eprintln!(
        "oceanbridge simulate: stopped. logins {} ok / {} refused, MQTT connections {}, \
         payloads {}, frames {}, get-all answered {}",
        stats.logins_ok,
        stats.logins_failed,
        stats.mqtt_connections,
        stats.payloads_published,
        stats.frames_published,
        stats.get_all_answered
    );
    Ok(ExitCode::SUCCESS)
}

/// One line saying which field rules are on (protocol §8–9).
fn field_summary(f: &FieldConfig) -> String {
    let on = |b: bool| if b { "on" } else { "off" };
    let ttl = f.credential_ttl().map_or("never".to_string(), |t| {
        humantime::format_duration(t).to_string()
    });
    format!(
        "stream switch {}, app client-id form {}, open client ids/day {}, regions {}, \
         strict signing {}, intermittent 8521 {:.0} %, logins expire after {ttl}",
        on(f.energy_stream_switch),
        on(f.app_client_id_form),
        f.open_client_ids_per_day,
        on(f.regions),
        on(f.strict_signing),
        f.intermittent_8521 * 100.0,
    )
}

/// Where the CA goes: `--ca-file`, else `ca.pem` in `--state-dir` (with the keys the
/// simulator keeps there), else in a new private directory for this run — never a fixed
/// name in a shared /tmp, where another user could plant a symlink or swap the file.
fn ca_path(args: &SimulateArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(path) = &args.ca_file {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        return Ok((path.clone(), None));
    }
    if let Some(dir) = &args.state_dir {
        return Ok((dir.join("ca.pem"), None));
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix("oceanbridge-simulator-");
    // tempfile leaves a new directory's mode to the umask: owner-only, explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    let dir = builder
        .tempdir()
        .context("cannot create a private directory for the simulator's CA")?;
    Ok((dir.path().join("ca.pem"), Some(dir)))
}

fn print_banner(sim: &Simulator, c: &SimulatorConfig, ca_file: &Path) {
    let base = sim.http_base_url();
    let mqtt = sim.mqtt_addr();
    let app = sim.app_credentials();
    let open = sim.open_credentials();
    let ca = ca_file.display();
    let plural = if c.devices.len() == 1 { "" } else { "s" };
    println!("oceanbridge simulator — a stand-in for the EcoFlow cloud (Ctrl-C to stop)");
    println!();
    println!("  HTTP API        {base}");
    if let Some(other) = sim.other_region_url() {
        println!("    other region  {other}   (this account does not exist there)");
    }
    println!("    what it saw   GET  {base}/sim/stats");
    println!(
        "    app login     POST {base}/auth/login   email {}  password {}",
        c.email, c.password
    );
    println!(
        "    certification GET  {base}/iot-auth/app/certification?userId={}",
        sim.user_id()
    );
    println!(
        "    open API      GET  {base}/iot-open/sign/{{certification,device/list,device/quota/all?sn=..}}"
    );
    println!(
        "                  accessKey {}  secretKey {}",
        c.access_key, c.secret_key
    );
    println!("  CA certificate  {ca}   (trust it for HTTPS and MQTT/TLS)");
    match &c.external_broker {
        None => {
            println!("  MQTT over TLS   {mqtt}");
            println!(
                "    app login     user {}  password {}",
                app.username, app.password
            );
            println!(
                "    open-API login user {}  password {}",
                open.username, open.password
            );
        }
        Some(ext) => println!(
            "  MQTT            publishing into the external broker {}:{}",
            ext.host, ext.port
        ),
    }
    println!(
        "  Devices         {} ({} pack{} of 5 kWh each), speed x{}",
        c.devices.join(", "),
        c.packs,
        if c.packs == 1 { "" } else { "s" },
        c.speed
    );
    println!(
        "  Topics          /app/device/property/<SN>   get-all: /app/{}/<SN>/thing/property/get",
        sim.user_id()
    );
    println!("  Field rules     {}", field_summary(&c.field));
    for sn in &c.devices {
        if let Some(addr) = sim.modbus_addr(sn) {
            println!("  Modbus TCP      {addr}   device {sn} (protocol §14, holding registers)");
        }
    }
    println!();
    println!(
        "  Point the bridge at it:  api_url = \"{base}\", ca_file = \"{ca}\", the e-mail/password above,"
    );
    println!("  and device{plural} {}.", c.devices.join(", "));
    if c.external_broker.is_none() {
        println!(
            "  Watch raw frames:  mosquitto_sub --cafile {ca} -h {} -p {} -u {} -P {} -t '/app/device/property/#' -F '%t %x'",
            mqtt.ip(),
            mqtt.port(),
            app.username,
            app.password
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped example is valid and says what the defaults are.
    #[test]
    fn the_example_config_is_the_defaults() {
        let text = include_str!("../../../../simulator.example.toml");
        let c: SimulatorConfig = toml::from_str(text).expect("simulator.example.toml parses");
        let d = SimulatorConfig::default();
        assert_eq!(c.field, d.field);
        assert_eq!(c.cadence.energy_stream, d.cadence.energy_stream);
        assert_eq!((c.devices, c.packs, c.speed), (d.devices, d.packs, d.speed));
    }
}
