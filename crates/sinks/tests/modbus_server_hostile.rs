//! The bridge's Modbus TCP server against careless and hostile clients, over raw
//! sockets: bytes that are not Modbus TCP close their connection (counted) while others
//! are served on; an unknown function is an exception; the connection cap closes the
//! connection beyond it at once; a silent connection is closed after the idle timeout.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Harness;
use sinks::modbus_server::{self, ModbusServer, ModbusServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_modbus::prelude::*;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the server to act (generous: a loaded machine).
const LIMIT: Duration = Duration::from_secs(10);

async fn start(config: ModbusServerConfig) -> (Harness, ModbusServer, CancellationToken) {
    let h = Harness::start(None, 1).await;
    let shutdown = CancellationToken::new();
    let server = modbus_server::serve(
        ModbusServerConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            ..config
        },
        h.store.clone(),
        shutdown.clone(),
    )
    .await
    .expect("serves");
    (h, server, shutdown)
}

/// Sends `bytes` on a new connection and reads until the server closes it (or `LIMIT`
/// passes: then `None`); what it answered before closing.
async fn send_until_closed(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    s.write_all(bytes).await.expect("sent");
    let mut answer = Vec::new();
    match tokio::time::timeout(LIMIT, s.read_to_end(&mut answer)).await {
        Ok(_) => Some(answer),
        Err(_) => None,
    }
}

/// One read of 40519 (2 registers) as a raw Modbus TCP frame with `unit` and function `fc`.
fn frame(unit: u8, fc: u8) -> Vec<u8> {
    vec![0, 1, 0, 0, 0, 6, unit, fc, 0x9E, 0x47, 0, 2]
}

async fn still_serves(addr: SocketAddr) {
    let mut ctx = tcp::connect(addr).await.expect("connects");
    let words = tokio::time::timeout(LIMIT, ctx.read_holding_registers(40527, 1))
        .await
        .expect("answered")
        .expect("transport")
        .expect("no exception");
    assert_eq!(words.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_modbus_close_their_connection_and_are_counted() {
    let (_h, server, shutdown) = start(ModbusServerConfig::default()).await;
    let addr = server.addr;
    let hostile: [&[u8]; 4] = [
        // HTTP: its "T " is a protocol id that is not Modbus's 0.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        // A Modbus header with length 0.
        &[0, 1, 0, 0, 0, 0, 1, 3],
        // Read holding registers whose PDU is cut short (length says 2: unit + fc).
        &[0, 1, 0, 0, 0, 2, 1, 3],
        // Write multiple registers claiming 100 registers but carrying 2 bytes.
        &[0, 1, 0, 0, 0, 9, 1, 0x10, 0x9E, 0x47, 0, 100, 2, 0, 1],
    ];
    for bytes in hostile {
        let answer = send_until_closed(addr, bytes).await;
        assert_eq!(
            answer,
            Some(Vec::new()),
            "closed without an answer: {bytes:?}"
        );
    }
    let counted = testkit::wait_for(LIMIT, || {
        let s = server.stats.snapshot();
        (s.bad_frames == 4).then_some(s)
    })
    .await;
    assert!(counted.is_some(), "{:?}", server.stats.snapshot());

    // A well-formed frame of a function nobody serves is an exception, not a close.
    let mut s = TcpStream::connect(addr).await.expect("connects");
    s.write_all(&frame(1, 0x41)).await.expect("sent");
    let mut answer = [0u8; 9];
    tokio::time::timeout(LIMIT, s.read_exact(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&answer[7..], [0xC1, 0x01], "illegal function");
    // A frame split over several writes is served whole.
    let whole = frame(1, 3);
    for chunk in whole.chunks(3) {
        s.write_all(chunk).await.expect("sent");
        s.flush().await.expect("flushed");
    }
    let mut answer = [0u8; 13];
    tokio::time::timeout(LIMIT, s.read_exact(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    assert_eq!(&answer[7..9], [0x03, 4], "two registers");
    // Random bytes on a fresh connection each: never a crash; the server serves on.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for len in [1usize, 7, 8, 13, 64, 300, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut s = TcpStream::connect(addr).await.expect("connects");
        s.write_all(&bytes).await.expect("sent");
        drop(s);
    }
    still_serves(addr).await;
    shutdown.cancel();
    server
        .task
        .await
        .expect("the server ends on shutdown, not by a panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_beyond_the_cap_is_closed_at_once() {
    let config = ModbusServerConfig {
        max_connections: 2,
        ..ModbusServerConfig::default()
    };
    let (_h, server, shutdown) = start(config).await;
    let addr = server.addr;
    let mut a = tcp::connect(addr).await.expect("connects");
    let b = tcp::connect(addr).await.expect("connects");
    testkit::wait_until("two clients held", LIMIT, || {
        server.stats.snapshot().clients_now == 2
    })
    .await;
    // The third: closed before any answer.
    assert_eq!(
        send_until_closed(addr, &frame(1, 3)).await,
        Some(Vec::new())
    );
    assert_eq!(server.stats.snapshot().connections_refused, 1);
    // The two held ones are served on; when one leaves, a new client gets its slot.
    let words = a.read_holding_registers(40527, 1).await.expect("transport");
    assert!(words.is_ok());
    drop(b);
    testkit::wait_until("a slot freed", LIMIT, || {
        server.stats.snapshot().clients_now == 1
    })
    .await;
    still_serves(addr).await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let config = ModbusServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ModbusServerConfig::default()
    };
    let (_h, server, shutdown) = start(config).await;
    // Silent from the start, and silent after a half-sent header.
    assert_eq!(send_until_closed(server.addr, &[]).await, Some(Vec::new()));
    assert_eq!(
        send_until_closed(server.addr, &[0, 1, 0]).await,
        Some(Vec::new())
    );
    testkit::wait_until("two idle closes counted", LIMIT, || {
        let s = server.stats.snapshot();
        s.idle_closed == 2 && s.clients_now == 0
    })
    .await;
    // A client that keeps asking is never idle: 1.5 s of requests 0.1 s apart.
    let mut ctx = tcp::connect(server.addr).await.expect("connects");
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let words = ctx
            .read_holding_registers(40527, 1)
            .await
            .expect("transport");
        assert!(words.is_ok());
    }
    assert_eq!(server.stats.snapshot().idle_closed, 2);
    shutdown.cancel();
}
