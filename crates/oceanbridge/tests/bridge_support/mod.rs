//! Helpers for the tests that drive the real binary: a child process whose output lines
//! are collected, a tiny HTTP/1.1 GET over 127.0.0.1, temp paths and a config writer.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oceanbridge"))
}

/// A fresh path under the temp dir, unique per process and name.
pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oceanbridge-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// A running binary; its stdout and stderr lines are collected as they come.
pub struct Proc {
    child: Child,
    pub out: Arc<Mutex<Vec<String>>>,
    pub err: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

fn collect(stream: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut v) = sink.lock() {
                v.push(line);
            }
        }
    });
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        cmd.env_remove("RUST_LOG");
        let mut child = cmd.spawn().expect("binary starts");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().expect("stdout"), out.clone());
        collect(child.stderr.take().expect("stderr"), err.clone());
        Proc {
            child,
            out,
            err,
            started: Instant::now(),
        }
    }

    pub fn stderr_text(&self) -> String {
        self.err.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        self.out.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    /// Waits for a stderr line containing `needle`; panics with the output after `timeout`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .err
                .lock()
                .ok()
                .and_then(|v| v.iter().find(|l| l.contains(needle)).cloned())
            {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line with {needle:?} after {timeout:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The dashboard address from the `http://127.0.0.1:PORT/` line.
    pub fn dashboard_addr(&self, timeout: Duration) -> SocketAddr {
        let line = self.wait_stderr("http://127.0.0.1:", timeout);
        let start = line.find("http://").map(|i| i + 7).unwrap_or(0);
        let rest = &line[start..];
        let end = rest.find('/').unwrap_or(rest.len());
        rest[..end].parse().expect("address in the dashboard line")
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn sigint(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the exit (bounded); panics if it does not come.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {timeout:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `GET path` on 127.0.0.1; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_with_token(addr, path, None)
}

/// `GET path` on 127.0.0.1 with an optional bearer token; returns (status, body),
/// de-chunked.
pub fn http_get_with_token(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The numeric values of `/api/states` keyed by catalog key.
pub fn numbers(addr: SocketAddr) -> Vec<(String, f64)> {
    let (status, body) = http_get(addr, "/api/states");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON states");
    json["states"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["key"].as_str()?.to_string(), r["value"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}
