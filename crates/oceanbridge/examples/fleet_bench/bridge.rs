//! The bridge under test: the real `oceanbridge run` binary in fleet mode (`[source] kind =
//! "mqtt"`) on the local mosquitto, its stderr lines, its RSS and CPU time from `/proc`,
//! and a tiny HTTP/1.0 client for `/metrics` and `/api/events` (SSE).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A running `oceanbridge run`.
pub struct Bridge {
    child: Child,
    pub pid: u32,
    pub spawned: Instant,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    pub dir: PathBuf,
}

/// A unique name for topics, files and groups of this run.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}x{nanos}", std::process::id())
}

impl Bridge {
    /// Writes a fleet-mode config (web on a free port, history in an SQLite file) and starts
    /// the binary.
    pub fn start(
        bin: &Path,
        port: u16,
        topic_prefix: &str,
        queue: usize,
        qos: u8,
    ) -> Result<Bridge, Error> {
        Self::start_with(bin, port, topic_prefix, queue, qos, "")
    }

    /// [`Bridge::start`] with extra `[store]` lines (e.g. PostgreSQL).
    pub fn start_with(
        bin: &Path,
        port: u16,
        topic_prefix: &str,
        queue: usize,
        qos: u8,
        store_extra: &str,
    ) -> Result<Bridge, Error> {
        let dir = std::env::temp_dir().join(format!("oceanbridge-bench-{}", run_id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("oceanbridge.toml");
        std::fs::write(
            &config,
            format!(
                "[source]\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\n\
                 topic_prefix = \"{topic_prefix}\"\nqos = {qos}\n\n[pipeline]\nqueue = {queue}\n\n\
                 [store]\nsqlite_path = \"{}\"\n{store_extra}\n[web]\nbind = \"127.0.0.1:0\"\n",
                dir.join("history.db").display()
            ),
        )?;
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("state"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("no pid")?;
        let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut v) = sink.lock() {
                    v.push((Instant::now(), line));
                }
            }
        });
        Ok(Bridge {
            child,
            pid,
            spawned,
            lines,
            dir,
        })
    }

    /// Waits for a stderr line containing `needle`; returns when it was read and the line.
    pub async fn wait_line(
        &self,
        needle: &str,
        timeout: Duration,
    ) -> Result<(Instant, String), Error> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .lines
                .lock()
                .ok()
                .and_then(|v| v.iter().find(|(_, l)| l.contains(needle)).cloned())
            {
                return Ok(found);
            }
            if Instant::now() > until {
                let all = self.lines.lock().map(|v| {
                    v.iter()
                        .map(|(_, l)| l.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                return Err(format!(
                    "no {needle:?} from the bridge; stderr:\n{}",
                    all.unwrap_or_default()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The dashboard address printed at start.
    pub async fn web_addr(&self) -> Result<SocketAddr, Error> {
        let (_, line) = self
            .wait_line("http://127.0.0.1:", Duration::from_secs(20))
            .await?;
        let start = line.find("http://").map(|i| i + 7).unwrap_or(0);
        let rest = &line[start..];
        let end = rest.find('/').unwrap_or(rest.len());
        Ok(rest[..end].parse()?)
    }

    /// (VmRSS, VmHWM) in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// User + system CPU time so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the `(comm)`: state is 3rd; utime 14th, stime 15th (1-based overall).
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks = f.iter().sum::<u64>();
        Duration::from_secs_f64(ticks as f64 / 100.0)
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET path` over HTTP/1.0 (no chunking); returns the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")).into());
    }
    Ok(body.to_string())
}

/// A counter from `/metrics` whose name ends with `suffix` (e.g. `payloads_total`).
pub fn metric(text: &str, suffix: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        name.ends_with(suffix).then(|| value.parse().ok())?
    })
}

/// Opens `/api/events` (HTTP/1.0: plain body until close) and returns the line reader.
pub async fn sse(addr: SocketAddr) -> Result<tokio::io::Lines<BufReader<TcpStream>>, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(
            format!(
                "GET /api/events HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await?.ok_or("SSE: no status line")?;
    if !status.contains(" 200 ") {
        return Err(format!("SSE: {status}").into());
    }
    while let Some(l) = lines.next_line().await? {
        if l.trim().is_empty() {
            break;
        }
    }
    Ok(lines)
}
