//! Probes for the services and tools tests need, each answering "here it is" or
//! [`Missing`] with what to do. Pass a probe to [`require!`](crate::require!).
//!
//! Every location can be overridden by an environment variable, so a different setup
//! works — and so a test can be pointed at a missing service on purpose:
//! `OCEANBRIDGE_TEST_MQTT` (host:port), `OCEANBRIDGE_TEST_POSTGRES` (URL),
//! `MOSQUITTO_BIN`, `CHROMIUM_BIN`, `CHROMEDRIVER_BIN`, `OCEANBRIDGE_SHARED_DIR`.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Missing;

/// The MQTT broker the shared tests use (mosquitto on 127.0.0.1:1883 by default).
#[derive(Debug, Clone)]
pub struct MqttBroker {
    pub host: String,
    pub port: u16,
}

impl MqttBroker {
    /// `mqtt://host:port`.
    pub fn url(&self) -> String {
        format!("mqtt://{}:{}", self.host, self.port)
    }
}

/// The running MQTT broker on `OCEANBRIDGE_TEST_MQTT` (default `127.0.0.1:1883`).
pub fn mqtt_broker() -> Result<MqttBroker, Missing> {
    let spec = env_or("OCEANBRIDGE_TEST_MQTT", "127.0.0.1:1883");
    let address = spec.trim_start_matches("mqtt://").trim_end_matches('/');
    let (host, port) = address
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            Missing::new(
                format!("an MQTT broker at {spec:?}"),
                "set OCEANBRIDGE_TEST_MQTT to host:port",
            )
        })?;
    reachable(&host, port).map_err(|e| {
        Missing::new(
            format!("an MQTT broker on {host}:{port} ({e})"),
            "install and start mosquitto (`apt-get install mosquitto`; `.ci/run` does both) \
             or set OCEANBRIDGE_TEST_MQTT",
        )
    })?;
    Ok(MqttBroker { host, port })
}

/// The connection URL of a running PostgreSQL: `OCEANBRIDGE_TEST_POSTGRES`, default
/// `postgres://postgres@127.0.0.1:5432/test` (trust auth, database `test`).
pub fn postgres() -> Result<String, Missing> {
    let url = env_or(
        "OCEANBRIDGE_TEST_POSTGRES",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        Missing::new(
            format!("PostgreSQL at {url:?} ({e})"),
            "set OCEANBRIDGE_TEST_POSTGRES to a postgres:// URL",
        )
    })?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port().unwrap_or(5432);
    reachable(&host, port).map_err(|e| {
        Missing::new(
            format!("PostgreSQL on {host}:{port} ({e})"),
            "install and start PostgreSQL with trust auth for 127.0.0.1 and a database `test` \
             (`.ci/run` does) or set OCEANBRIDGE_TEST_POSTGRES",
        )
    })?;
    Ok(url)
}

/// The `mosquitto` binary (`MOSQUITTO_BIN`, else `PATH`, `/usr/sbin`, `/usr/local/sbin`).
pub fn mosquitto() -> Result<PathBuf, Missing> {
    locate(Some("MOSQUITTO_BIN"), &["mosquitto"]).ok_or_else(|| {
        Missing::new(
            "the mosquitto binary",
            "`apt-get install mosquitto` (`.ci/run` does) or set MOSQUITTO_BIN",
        )
    })
}

/// Headless Chromium and its WebDriver.
#[derive(Debug, Clone)]
pub struct Chromium {
    pub browser: PathBuf,
    pub driver: PathBuf,
}

/// Chromium (`CHROMIUM_BIN`, else `chromium`/`chromium-browser` on `PATH`) and
/// chromedriver (`CHROMEDRIVER_BIN`, else `chromedriver` on `PATH`).
pub fn chromium() -> Result<Chromium, Missing> {
    let fix = "`apt-get install chromium chromium-driver` (`.ci/run` does) or set \
               CHROMIUM_BIN and CHROMEDRIVER_BIN";
    let browser = locate(Some("CHROMIUM_BIN"), &["chromium", "chromium-browser"])
        .ok_or_else(|| Missing::new("the chromium browser", fix))?;
    let driver = locate(Some("CHROMEDRIVER_BIN"), &["chromedriver"])
        .ok_or_else(|| Missing::new("chromedriver", fix))?;
    Ok(Chromium { browser, driver })
}

/// Any other program on `PATH` (e.g. `prlimit` from the Debian package `util-linux`).
pub fn program(name: &str, debian_package: &str) -> Result<PathBuf, Missing> {
    locate(None, &[name]).ok_or_else(|| {
        Missing::new(
            format!("the {name} program"),
            format!("`apt-get install {debian_package}` (`.ci/run` does)"),
        )
    })
}

/// The shared contract folder (spec, protocol, test vectors) beside the checkout:
/// `OCEANBRIDGE_SHARED_DIR`, else `../shared` — or `../../shared`, for a git worktree
/// kept in a folder beside the main checkout. It must hold a `spec/` folder.
pub fn shared_dir() -> Result<PathBuf, Missing> {
    let fix = "put the shared contract folder beside the checkout (`../shared`) or set \
               OCEANBRIDGE_SHARED_DIR";
    if let Some(dir) = std::env::var_os("OCEANBRIDGE_SHARED_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join("spec").is_dir() {
            Ok(dir)
        } else {
            Err(Missing::new(
                format!("the shared folder {} (no spec/ in it)", dir.display()),
                fix,
            ))
        };
    }
    let root = workspace_root();
    [root.join("../shared"), root.join("../../shared")]
        .into_iter()
        .find(|d| d.join("spec").is_dir())
        .ok_or_else(|| {
            Missing::new(
                format!("the shared folder (../shared beside {})", root.display()),
                fix,
            )
        })
}

/// The workspace's root folder (where `Cargo.toml` with `[workspace]` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// `$env_var` if set (it must then exist), else the first of `names` found on `PATH`
/// or in the sbin folders (Debian installs daemons such as mosquitto there).
fn locate(env_var: Option<&str>, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = env_var.and_then(std::env::var_os).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Connects once (2 s timeout per address); the error says why not.
fn reachable(host: &str, port: u16) -> Result<(), String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
