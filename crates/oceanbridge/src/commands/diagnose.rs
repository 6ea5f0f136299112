//! `oceanbridge diagnose [--config F] [--data-dir D] [-o bundle.tar.gz|zip]`: the file a
//! user attaches to a bug report — version, redacted config, per-channel ages and stages,
//! counters, last errors and the captured frames, serials and ids masked
//! (`runtime::diagnostics`).
//!
//! A running bridge knows most (its live ages, counters, last errors): when its dashboard
//! answers (`[web] bind` of the config, or `--url`), the bundle is the one it builds for
//! `GET /api/diagnostics`. Otherwise the bundle is built here from the files: the config
//! and the capture in the state directory, replayed for ages and counters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use runtime::DataDir;
use runtime::diagnostics::{self, Format, Inputs, archive};

/// Arguments of `oceanbridge diagnose`.
#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub config: super::common::ConfigArg,
    #[command(flatten)]
    pub data_dir: super::common::DataDirArg,
    /// Read the capture from this directory instead (e.g. `oceanbridge-demo-capture`).
    #[arg(long, value_name = "DIR")]
    pub capture_dir: Option<PathBuf>,
    /// The running bridge's dashboard, e.g. http://127.0.0.1:8080 (default: the config's
    /// [web] bind). Its token comes from the config or OCEANBRIDGE_WEB_TOKEN.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Do not ask a running bridge: build the bundle from the files only.
    #[arg(long)]
    pub offline: bool,
    /// Where to write the bundle: `.tar.gz` (default) or `.zip`. Default:
    /// ./oceanbridge-diagnostics-<UTC time>.tar.gz.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// How long the running bridge may take to answer (it reads up to `[capture] max_size`).
const BRIDGE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let mut notes = Vec::new();
    let (config, data_dir) = match runtime::service::load_config(
        args.config.config.as_deref(),
        args.data_dir.data_dir.clone(),
    ) {
        Ok((config, dir)) => (Some(config), Some(dir)),
        Err(e) => {
            eprintln!("oceanbridge diagnose: no config ({e:#}); going on without it");
            notes.push(format!("No config was loaded: {e:#}"));
            (
                None,
                args.data_dir
                    .data_dir
                    .clone()
                    .or_else(DataDir::default_path),
            )
        }
    };
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}.{}",
            archive::base_name(now),
            Format::TarGz.extension()
        ))
    });
    let format = Format::from_path(&output);

    // A port of 0 is chosen at start: only --url can say where that bridge listens.
    let url = args.url.clone().or_else(|| {
        config
            .as_ref()
            .map(|c| c.web.bind)
            .filter(|bind| bind.port() != 0)
            .map(dashboard_url)
    });
    match (args.offline, &url) {
        (true, _) => notes.push("Built from the files (--offline).".into()),
        (false, None) => notes.push(
            "No running bridge was asked (no config, or its [web] bind has port 0: pass --url): \
             built from the files."
                .into(),
        ),
        (false, Some(_)) => {}
    }
    if let (false, Some(url)) = (args.offline, &url) {
        let token = config
            .as_ref()
            .and_then(|c| c.web.token.as_ref())
            .map(|t| t.expose().to_string());
        match from_bridge(url, token.as_deref(), format) {
            Ok(bytes) => {
                write(&output, &bytes)?;
                eprintln!(
                    "oceanbridge diagnose: {} ({}) from the running bridge at {url}",
                    output.display(),
                    size(bytes.len())
                );
                hint();
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                eprintln!("oceanbridge diagnose: no bundle from {url} ({e}); using the files");
                notes.push(format!(
                    "No running bridge answered at {url} ({e}): built from the files."
                ));
            }
        }
    }

    let capture_dir = args
        .capture_dir
        .clone()
        .or_else(|| data_dir.map(|d| d.join(runtime::data_dir::CAPTURE_DIR)));
    let bundle = diagnostics::build(Inputs {
        config: config.as_ref(),
        config_text: None,
        live: None,
        capture_dir: capture_dir.as_deref(),
        notes,
    });
    let bytes = archive::write(&bundle, format, now).context("cannot write the bundle")?;
    write(&output, &bytes)?;
    let payloads: usize = bundle
        .files
        .iter()
        .filter(|(name, _)| name.starts_with("capture/"))
        .map(|(_, b)| b.iter().filter(|&&c| c == b'\n').count())
        .sum();
    eprintln!(
        "oceanbridge diagnose: {} ({}) from the files: {payloads} captured payloads from {}",
        output.display(),
        size(bytes.len()),
        capture_dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "nowhere (no state directory)".into())
    );
    hint();
    Ok(ExitCode::SUCCESS)
}

fn hint() {
    eprintln!(
        "Serial numbers, user/account ids and e-mail addresses are masked in every file; \
         look inside (README.txt) before attaching it to a public bug report."
    );
}

fn size(bytes: usize) -> String {
    bytesize::ByteSize::b(bytes as u64).to_string()
}

/// The bundle is owner-readable only, written whole or not at all.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    runtime::data_dir::write_atomic(path, bytes)?;
    Ok(())
}

/// Where a dashboard bound to `bind` is reached from this machine.
fn dashboard_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bind.port()))
}

/// The running bridge's own bundle (`GET /api/diagnostics`).
fn from_bridge(url: &str, token: Option<&str>, format: Format) -> Result<Vec<u8>, String> {
    super::common::block_on(async {
        // The workspace's one TLS setup (rustls with ring; reqwest has no default
        // provider): an https:// --url (a reverse proxy) works too.
        let tls = connect::tls::client_config(None).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(BRIDGE_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client
            .get(format!("{}/api/diagnostics", url.trim_end_matches('/')))
            .query(&[("format", format.extension())]);
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                "nothing listens there".to_string()
            } else {
                e.to_string()
            }
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(
                "it wants the dashboard token: set [web] token or OCEANBRIDGE_WEB_TOKEN".into(),
            );
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        Ok(bytes.to_vec())
    })
    .map_err(|e| format!("{e:#}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_url_reaches_a_wildcard_bind_locally() {
        assert_eq!(
            dashboard_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            dashboard_url("[::]:9000".parse().unwrap()),
            "http://[::1]:9000"
        );
        assert_eq!(
            dashboard_url("192.168.1.5:80".parse().unwrap()),
            "http://192.168.1.5:80"
        );
    }
}
