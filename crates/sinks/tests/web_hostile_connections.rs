//! The web server against clients that hold connections, over real sockets
//! (`docs/security.md`, "HTTP clients on the LAN"): half-sent requests (slowloris) and idle
//! keep-alives are closed after the header timeout; an oversized head gets 431 and a
//! trickled body 408; at the connection cap an idle connection makes room while busy ones
//! (an event stream) stay, and with every one busy a new connection is refused. The real
//! binary under a 256-file limit: `crates/oceanbridge/tests/hostile_http.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, SN};
use sinks::web::WebConfig;
use testkit::EventStream;
use testkit::raw_http::{closed_after, half_open, request};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const TOKEN: &str = "h0stile-t0ken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alives_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let h = Harness::start_with(
        WebConfig {
            header_timeout: timeout,
            ..WebConfig::default()
        },
        1,
    )
    .await;
    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(half_open(h.addr).await);
    }
    // A keep-alive connection that got its answer and then says nothing more.
    let mut idle = TcpStream::connect(h.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    while !String::from_utf8_lossy(&answer).contains("\"status\"") {
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let idle_since = Instant::now();
    let limit = timeout + Duration::from_secs(10);
    let slow_closed =
        futures_util::future::join_all(slow.into_iter().map(|s| closed_after(s, start, limit)))
            .await;
    let idle_closed = closed_after(idle, idle_since, limit).await;
    let slow_closed: Vec<Duration> = slow_closed
        .into_iter()
        .map(|c| c.expect("a half-sent request is closed"))
        .collect();
    let latest = slow_closed.iter().max().copied().unwrap_or_default();
    let earliest = slow_closed.iter().min().copied().unwrap_or_default();
    let idle_closed = idle_closed.expect("an idle keep-alive connection is closed");
    eprintln!(
        "measured: 20 half-sent requests closed {earliest:.2?}…{latest:.2?} after opening, an idle \
         keep-alive {idle_closed:.2?} after its answer (header_timeout {timeout:?})"
    );
    // Closed by the timeout (not at once), and not much later than it.
    assert!(
        earliest >= timeout - Duration::from_millis(100),
        "{earliest:?}"
    );
    assert!(
        idle_closed >= timeout - Duration::from_millis(100),
        "{idle_closed:?}"
    );
    // The server still answers.
    let r = request(h.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(r.status, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_trickled_bodies_are_cut_short() {
    let timeout = Duration::from_secs(1);
    let web = WebConfig {
        token: Some(TOKEN.into()),
        header_timeout: timeout,
        ..WebConfig::default()
    };
    let (h, port) = Harness::start_control_with(web, 1).await;
    // A head over 64 KiB: 431, nothing buffered beyond it.
    let big = "x".repeat(100 * 1024);
    let r = request(h.addr, "GET", "/healthz", &[("X-Big", &big)], "").await;
    assert_eq!(r.status, 431);
    // A write whose body never comes: 408 after the header timeout, not a held connection.
    let mut s = TcpStream::connect(h.addr).await.expect("connect");
    let head = format!(
        "POST /api/devices/{SN}/settings HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"setting\""
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let start = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(start.elapsed() >= timeout - Duration::from_millis(100));
    assert!(port.calls().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_an_idle_connection_makes_room_and_busy_ones_stay() {
    let mut h = Harness::start_with(
        WebConfig {
            max_connections: 4,
            header_timeout: Duration::from_secs(60),
            ..WebConfig::default()
        },
        1,
    )
    .await;
    let mut stream = EventStream::open(h.addr, "/api/events", &[]).await;
    assert_eq!(
        stream
            .next(Duration::from_secs(20))
            .await
            .expect("hello")
            .event,
        "hello"
    );
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(half_open(h.addr).await);
    }
    // Four connections held; a health probe still gets through, in place of the oldest
    // half-sent request.
    let r = request(h.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(h.dropped("web_connection_replaced") >= 1);
    let first = slow.remove(0);
    assert!(
        closed_after(first, Instant::now(), Duration::from_secs(10))
            .await
            .is_some(),
        "the oldest idle connection was closed"
    );
    // The event stream was busy: it stays and keeps delivering.
    h.apply_stream(std::time::SystemTime::now());
    let event = stream
        .next(Duration::from_secs(20))
        .await
        .expect("still open");
    assert_eq!(event.event, "states");

    // Every slot busy (four event streams): a new connection is refused, not queued.
    let mut streams = vec![stream];
    for _ in 0..3 {
        streams.push(EventStream::open(h.addr, "/api/events", &[]).await);
    }
    let refused_before = h.dropped("web_connection_refused");
    let mut extra = TcpStream::connect(h.addr).await.expect("connect");
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), extra.read_to_end(&mut buf)).await;
    assert!(
        buf.is_empty(),
        "refused without an answer: {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(h.dropped("web_connection_refused"), refused_before + 1);
    for s in &mut streams {
        assert_eq!(s.status, 200);
    }
    h.stop().await;
}
