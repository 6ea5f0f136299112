//! What the binary's tests share beyond `testkit`: the real `oceanbridge` binary started
//! with a config file ([`Bridge`]), its dashboard address, the simulator with fast
//! cadences (also on a runtime of its own for blocking tests, [`BlockingSim`]) and a
//! `[source]` section for it, an MQTT/TLS publisher of crafted payloads on
//! the simulator's broker, and readers for `/api/states` and `/metrics`. [`fleet`]: the
//! fleet-mode tests' publishers, probes and PostgreSQL rows. [`wire`]: what a simulated
//! device sent, heard next to the bridge; [`counters`]: energy counters as Home Assistant
//! reads them off the state topics; [`night`]: what the field-night proofs sample and
//! compare.

#![allow(dead_code)]

pub mod counters;
pub mod fleet;
pub mod night;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value as Json;
use simulator::{Simulator, SimulatorConfig};
use testkit::Proc;
use testkit::http::{self, Response};

/// How long the binary may take to print its dashboard line on a loaded machine.
pub const STARTUP: Duration = Duration::from_secs(60);

/// The binary, with `RUST_LOG` cleared so its log level is the tests' choice, and a
/// state directory of its own (`OCEANBRIDGE_DATA_DIR` under the target's scratch folder):
/// `run` locks its state directory, so tests running side by side must not share the
/// user's default one (and must not write into it).
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oceanbridge"));
    command
        .env_remove("RUST_LOG")
        .env("OCEANBRIDGE_DATA_DIR", scratch_data_dir())
        .env_remove("OCEANBRIDGE_CONFIG");
    command
}

/// A fresh state directory path (not created) in the target's scratch folder.
pub fn scratch_data_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("oceanbridge-state")
        .join(testkit::unique("run"))
}

/// The dashboard address from the first `http://127.0.0.1:PORT/` line on stderr.
pub fn web_addr(proc: &Proc, limit: Duration) -> SocketAddr {
    let line = proc.wait_stderr("http://127.0.0.1:", limit);
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in the dashboard line {line:?}"))
}

/// The real binary running `oceanbridge run --config <dir>/oceanbridge.toml`.
pub struct Bridge {
    pub proc: Proc,
    pub web: SocketAddr,
}

impl Bridge {
    /// Writes `config` to `dir/oceanbridge.toml`, starts the binary with `env` and waits
    /// for its dashboard line (the config must have a `[web]` bind).
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Bridge {
        Bridge::start_with(bin(), dir, config, env)
    }

    /// Like [`Bridge::start`] with a prepared command (e.g. a wrapper that sets limits);
    /// the `run --config` arguments are appended. The state directory is `dir/state`
    /// unless `env` names `OCEANBRIDGE_DATA_DIR`.
    pub fn start_with(
        mut command: Command,
        dir: &Path,
        config: &str,
        env: &[(&str, &str)],
    ) -> Bridge {
        let path = dir.join("oceanbridge.toml");
        std::fs::write(&path, config).expect("write config");
        command.arg("run").arg("--config").arg(&path);
        command.env("OCEANBRIDGE_DATA_DIR", dir.join("state"));
        for (k, v) in env {
            command.env(k, v);
        }
        let proc = Proc::spawn(command);
        let web = web_addr(&proc, STARTUP);
        Bridge { proc, web }
    }

    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// `GET path` on the dashboard, with the bearer `token` if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        match token {
            Some(t) => {
                let (name, value) = http::bearer(t);
                http::get(self.web, path, &[(name, &value)]).await
            }
            None => http::get(self.web, path, &[]).await,
        }
    }

    /// `GET path` that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Json {
        let r = self.get(path, token).await;
        assert_eq!(r.status, 200, "GET {path}: {:.500}", r.body);
        r.json()
    }

    /// The value of the `/metrics` sample starting with `prefix` (0 when absent).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let r = self.get("/metrics", None).await;
        assert_eq!(r.status, 200, "GET /metrics: {:.500}", r.body);
        metric(&r.body, prefix).unwrap_or(0.0)
    }

    /// SIGTERM, then waits (≤ 20 s); true when it exited by itself.
    pub fn stop(&mut self) -> bool {
        self.proc.stop(Duration::from_secs(20))
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.exited()
    }
}

/// The value of one metric sample line (`name{labels} value`) whose text starts with `prefix`.
pub fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The row of `key` in an `/api/states` answer.
pub fn state_row(states: &Json, key: &str) -> Option<Json> {
    states["states"]
        .as_array()?
        .iter()
        .find(|r| r["key"] == key)
        .cloned()
}

/// The numeric values of an `/api/states` answer, keyed by catalog key.
pub fn numbers(states: &Json) -> Vec<(String, f64)> {
    states["states"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["key"].as_str()?.to_string(), r["value"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Simulator config: ephemeral ports, fast real-time cadences, no open-API JSON pushes.
pub fn sim_config(devices: &[&str], speed: f64) -> SimulatorConfig {
    SimulatorConfig {
        devices: devices.iter().map(|s| s.to_string()).collect(),
        speed,
        open_quota: false,
        ..SimulatorConfig::default()
    }
}

pub async fn start_sim(devices: &[&str], speed: f64) -> Simulator {
    Simulator::start(sim_config(devices, speed))
        .await
        .expect("simulator starts")
}

/// A simulator on a runtime of its own, for tests that drive the binary with blocking
/// calls (`Command::output`, `Proc`); shut down when dropped.
pub struct BlockingSim {
    /// The simulator's runtime, also for a test's own async steps.
    pub runtime: tokio::runtime::Runtime,
    sim: Option<Simulator>,
}

impl BlockingSim {
    pub fn start(config: SimulatorConfig) -> BlockingSim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = runtime
            .block_on(Simulator::start(config))
            .expect("simulator starts");
        BlockingSim {
            runtime,
            sim: Some(sim),
        }
    }

    pub fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("running")
    }
}

impl Drop for BlockingSim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// The `[source]` section for the simulator (app route), with a fast reconnect backoff.
/// `ca_file` = None leaves the simulator's CA untrusted (TLS must then fail).
pub fn source_section(sim: &Simulator, devices: &[&str], ca_file: Option<&Path>) -> String {
    let devices: Vec<String> = devices.iter().map(|d| format!("{d:?}")).collect();
    let ca = ca_file.map_or(String::new(), |p| {
        format!("ca_file = {:?}\n", p.display().to_string())
    });
    format!(
        "[source]\nway_in = \"app\"\napi_url = {:?}\n{ca}devices = [{}]\nemail = \"demo@oceanbridge.local\"\n\
         password = \"demo\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\nhttp_timeout = \"3s\"\n",
        sim.http_base_url(),
        devices.join(", ")
    )
}

/// Writes the simulator's CA to `dir/ca.pem`.
pub fn write_ca(sim: &Simulator, dir: &Path) -> PathBuf {
    let path = dir.join("ca.pem");
    std::fs::write(&path, sim.ca_cert_pem()).expect("write CA");
    path
}

/// An MQTT/TLS client on the simulator's broker (app credentials, the simulator's CA) that
/// publishes crafted payloads; its event loop runs on a task until the client is dropped.
pub struct Publisher {
    client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
    acked: Arc<AtomicU64>,
}

/// A client id of the form the app route accepts (protocol §9), one per `tag`.
pub fn app_client_id(sim: &Simulator, tag: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tag.hash(&mut h);
    let n = h.finish();
    format!(
        "ANDROID_{:08X}-0000-4000-8000-{:012X}_{}",
        n >> 32,
        n & 0xFFFF_FFFF_FFFF,
        sim.user_id()
    )
}

impl Publisher {
    /// Connects with the app route's login and a client id of the accepted form made
    /// from `tag`.
    pub async fn connect(sim: &Simulator, tag: &str) -> Publisher {
        let tls = connect::tls::client_config(Some(&sim.ca_cert_pem())).expect("TLS config");
        let creds = sim.app_credentials();
        let addr = sim.mqtt_addr();
        let client_id = app_client_id(sim, tag);
        let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options
            .set_credentials(creds.username, creds.password)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(4 << 20, 4 << 20)
            .set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
        let acked = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let count = acked.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // rumqttc reconnects on the next poll; pace it.
                        eprintln!("test publisher: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("publisher connected within 30 s")
            .expect("publisher connected");
        Publisher {
            client,
            task,
            acked,
        }
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        let before = self.acked.load(Ordering::SeqCst);
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
        testkit::wait_until("the broker's PUBACK", Duration::from_secs(30), || {
            self.acked.load(Ordering::SeqCst) > before
        })
        .await;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
