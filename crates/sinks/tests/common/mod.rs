//! Shared test support: a live harness (store fed with genuine frames + web server) and
//! a minimal HTTP/1.1 client over a real socket (with chunked decoding, for SSE).

#![allow(dead_code)]

#[path = "../../../store/tests/support/feed.rs"]
pub mod feed;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use sinks::web::{WebConfig, serve};
use store::{BridgeStats, StateStore, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SN: &str = "HJ31ZDH5ZF220123";

pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{tag}-{}-{nanos}", std::process::id())
}

pub struct Harness {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub feed: feed::Feed,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<()>,
    pub step: u32,
}

impl Harness {
    /// A memory store with `steps` full payloads applied, and the web server on port 0.
    pub async fn start(token: Option<&str>, steps: u32) -> Harness {
        let store = StateStore::open(&StoreConfig::default()).expect("memory store");
        let stats = BridgeStats::default();
        let shutdown = CancellationToken::new();
        let (addr, server) = serve(
            WebConfig {
                bind: "127.0.0.1:0".parse().expect("addr"),
                token: token.map(str::to_string),
            },
            store.clone(),
            stats.clone(),
            shutdown.clone(),
        )
        .await
        .expect("serve");
        let mut h = Harness {
            store,
            stats,
            feed: feed::Feed::new(SN, 2),
            addr,
            shutdown,
            server,
            step: 0,
        };
        let t0 = SystemTime::now() - Duration::from_secs(u64::from(steps) * 5);
        for _ in 0..steps {
            let at = t0 + Duration::from_secs(u64::from(h.step) * 5);
            h.apply_full(at);
        }
        h.flush().await;
        h
    }

    /// Waits until the history has committed everything applied so far.
    pub async fn flush(&self) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .expect("join")
            .expect("history flush");
    }

    pub fn apply_full(&mut self, at: SystemTime) {
        let decoded = self.feed.full(self.step);
        self.stats.record_payload(&decoded);
        self.store.apply(&decoded, at);
        self.step += 1;
    }

    pub fn apply_stream(&mut self, at: SystemTime) {
        let decoded = self.feed.stream(self.step);
        self.stats.record_payload(&decoded);
        self.store.apply(&decoded, at);
        self.step += 1;
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

type Headers = Vec<(String, String)>;

/// Status, headers and where the body starts.
fn split_head(raw: &[u8]) -> Option<(u16, Headers, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some((status, headers, end + 4))
}

/// Decodes as much chunked data as is complete; returns (data, bytes consumed, finished).
fn dechunk(buf: &[u8]) -> (Vec<u8>, usize, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            return (out, pos, false);
        };
        let size_text = std::str::from_utf8(&buf[pos..pos + line_end]).unwrap_or("0");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        let data_start = pos + line_end + 2;
        if size == 0 {
            return (out, data_start, true);
        }
        if buf.len() < data_start + size + 2 {
            return (out, pos, false);
        }
        out.extend_from_slice(&buf[data_start..data_start + size]);
        pos = data_start + size + 2;
    }
}

async fn send_request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    close: bool,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if close {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    stream
}

/// GET over a fresh connection, whole response.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let stream = send_request(addr, path, headers, true).await;
    read_response(stream).await
}

/// Any method with an optional JSON body, over a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = json.map(|j| j.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if json.is_some() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).await.expect("write");
    read_response(stream).await
}

/// Reads one response: by Content-Length, chunked framing, or to EOF.
async fn read_response(mut stream: TcpStream) -> HttpResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        if let Some((status, headers, start)) = split_head(&raw) {
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let body = &raw[start..];
            let done =
                if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                    (body.len() >= len).then(|| body[..len].to_vec())
                } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                    let (data, _, finished) = dechunk(body);
                    finished.then_some(data)
                } else {
                    eof.then(|| body.to_vec())
                };
            if let Some(body) = done {
                return HttpResponse {
                    status,
                    headers,
                    body: String::from_utf8(body).expect("utf-8 body"),
                };
            }
        }
        assert!(!eof, "connection closed mid-response");
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        if n == 0 {
            eof = true;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// A server-sent event stream.
pub struct EventStream {
    stream: TcpStream,
    raw: Vec<u8>,
    text: String,
    pub status: u16,
    pub content_type: String,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl EventStream {
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut stream = send_request(addr, path, headers, false).await;
        let mut raw = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((status, headers, start)) = split_head(&raw) {
                let content_type = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                raw.drain(..start);
                return EventStream {
                    stream,
                    raw,
                    text: String::new(),
                    status,
                    content_type,
                };
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("SSE head in time")
                .expect("read");
            assert!(n > 0, "connection closed before the head");
            raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next event, within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (data, used, _) = dechunk(&self.raw);
            self.raw.drain(..used);
            self.text.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = SseEvent {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
            }
            let mut buf = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }
}
