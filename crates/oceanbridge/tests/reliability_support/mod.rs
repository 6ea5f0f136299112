//! Shared helpers of the reliability and security tests: the simulator with fast
//! cadences, the real `oceanbridge` binary started against it with a config file (stderr
//! captured), a tiny HTTP/1.1 client for the dashboard API and `/metrics`, an MQTT/TLS
//! publisher for crafted payloads, and bounded waiting.

#![allow(dead_code)]

#[path = "../bridge_support/mod.rs"]
mod bridge_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use simulator::{Simulator, SimulatorConfig};

/// A scratch directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("oceanbridge-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

/// The real binary, running `oceanbridge run --config <file>`, stderr captured.
pub struct Bridge {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub web: Option<SocketAddr>,
}

impl Bridge {
    /// Writes `config` to `dir/oceanbridge.toml` and starts the binary (with `env`);
    /// waits (≤ 20 s) for the dashboard line unless `expect_web` is false.
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)], expect_web: bool) -> Bridge {
        Self::start_with(
            Command::new(env!("CARGO_BIN_EXE_oceanbridge")),
            dir,
            config,
            env,
            expect_web,
        )
    }

    /// Like [`Bridge::start`] with a prepared command (e.g. a wrapper that sets limits);
    /// the `run --config` arguments are appended.
    pub fn start_with(
        mut command: Command,
        dir: &Path,
        config: &str,
        env: &[(&str, &str)],
        expect_web: bool,
    ) -> Bridge {
        let path = dir.join("oceanbridge.toml");
        std::fs::write(&path, config).expect("write config");
        command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start oceanbridge");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                }
                line.clear();
            }
        });
        let mut bridge = Bridge {
            child,
            stderr,
            web: None,
        };
        if expect_web {
            let deadline = Instant::now() + Duration::from_secs(20);
            while bridge.web.is_none() {
                assert!(
                    Instant::now() < deadline,
                    "no dashboard line within 20 s; stderr:\n{}",
                    bridge.stderr()
                );
                if let Ok(Some(status)) = bridge.child.try_wait() {
                    panic!(
                        "oceanbridge exited ({status}); stderr:\n{}",
                        bridge.stderr()
                    );
                }
                bridge.web = dashboard_addr(&bridge.stderr());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bridge
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET `path` on the dashboard with the optional bearer token.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http_get(self.web.expect("web server"), path, token)
    }

    /// SIGTERM, then wait (≤ 10 s) for a clean exit; returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `oceanbridge: dashboard http://ADDR/ ...` → ADDR.
pub fn dashboard_addr(stderr: &str) -> Option<SocketAddr> {
    stderr.lines().find_map(|l| {
        let rest = l.split("dashboard http://").nth(1)?;
        rest.split('/').next()?.parse().ok()
    })
}

/// A minimal HTTP/1.1 GET (Connection: close); returns status and body (de-chunked).
pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    bridge_support::http_get_with_token(addr, path, token)
}

/// GET a JSON API path; panics with the body on a non-200 status.
pub fn get_json(bridge: &Bridge, path: &str, token: Option<&str>) -> serde_json::Value {
    let (status, body) = bridge.get(path, token);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The value of one metric sample line (`name{labels} value`) whose text starts with `prefix`.
pub fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `check` every 100 ms until it returns `Some`, at most `limit`.
pub async fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Blocking variant for code outside the runtime.
pub fn wait_for_blocking<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The states table row of `key` from `/api/states`.
pub fn state_row(states: &serde_json::Value, key: &str) -> Option<serde_json::Value> {
    states["states"]
        .as_array()?
        .iter()
        .find(|r| r["key"] == key)
        .cloned()
}

/// An MQTT/TLS client on the simulator's broker (app credentials, the simulator's CA) that
/// publishes crafted payloads; its event loop runs on a task until the client is dropped.
pub struct Publisher {
    client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
    acked: Arc<std::sync::atomic::AtomicU64>,
}

impl Publisher {
    pub async fn connect(sim: &Simulator, client_id: &str) -> Publisher {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(sim.ca_cert_pem().as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let creds = sim.app_credentials();
        let addr = sim.mqtt_addr();
        let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options
            .set_credentials(creds.username, creds.password)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(4 << 20, 4 << 20)
            .set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let count = acked.clone();
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            for _ in 0..100_000 {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("test publisher: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("publisher connected within 10 s")
            .expect("publisher connected");
        Publisher {
            client,
            task,
            acked,
        }
    }

    /// Publishes at QoS 1 and waits (≤ 10 s) for the broker's PUBACK.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        let before = self.acked.load(std::sync::atomic::Ordering::SeqCst);
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
        let acked = self.acked.clone();
        wait_for(Duration::from_secs(10), || {
            (acked.load(std::sync::atomic::Ordering::SeqCst) > before).then_some(())
        })
        .await
        .expect("PUBACK within 10 s");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
