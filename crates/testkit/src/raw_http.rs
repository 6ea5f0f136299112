//! A raw HTTP/1.1 client for hostile-input tests: any method, path and headers — a forged
//! `Host`, a foreign `Origin`, a `text/plain` body — written as-is over a TCP socket and
//! read to the end (`Connection: close`), where a regular client would fix them up; and
//! the slowloris client: a request head that never ends ([`half_open`], [`closed_after`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Generous: a loaded machine answers slowly, a hung server still fails the test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A whole answer.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `method path` on `addr` with exactly `headers` (plus `Content-Length` for a body and
/// `Connection: close`); a `Host: <addr>` is added unless `headers` has one.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.push_str(body);
    let answer = tokio::time::timeout(TIMEOUT, exchange(addr, head.as_bytes()))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no whole answer within {TIMEOUT:?}"));
    parse(&answer).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer)
        )
    })
}

async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    let mut answer = Vec::new();
    // A reset after the answer (the server closing with unread input) still leaves it read.
    let _ = stream.read_to_end(&mut answer).await;
    answer
}

fn parse(answer: &[u8]) -> Option<RawResponse> {
    let text = String::from_utf8_lossy(answer);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_string()
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// A connection whose request head never ends (a slowloris client).
pub async fn half_open(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    s
}

/// How long after `since` the server closed `s` (end of stream or reset), or `None` if it
/// was still open after `limit`. Whatever the server sends first is read and ignored.
pub async fn closed_after(mut s: TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    closed.ok().map(|()| since.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_plain_and_chunked() {
        let plain = parse(b"HTTP/1.1 421 Misdirected Request\r\nX-A: 1\r\n\r\nno").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (421, "no"));
        assert_eq!(plain.header("x-a"), Some("1"));
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.body, "abcde");
    }
}
