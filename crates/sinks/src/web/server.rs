//! The accept loop: hyper's HTTP/1 connections under the axum router, with the bounds
//! `axum::serve` does not offer (it runs hyper without a timer, so without timeouts):
//!
//! - a header-read timeout (`[web] header_timeout`): hyper closes a connection whose
//!   request head has not fully arrived in time, counted from when the connection opens or
//!   its previous answer ends — so it also ends idle keep-alive connections;
//! - a cap on open connections ([`Slots`]): `[web] max_connections`, and never more than
//!   half the process's open-file limit, so the sockets cannot use up the descriptors the
//!   history, capture and MQTT connections need;
//! - request heads of at most [`MAX_HEAD_BYTES`] (else 431).
//!
//! Each request carries its connection's [`ConnInfo`] (peer and local address).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use model::BridgeStats;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::slots::{Admission, BusyBody, BusyCounter, Slot, Slots};

/// The largest request head (request line and headers) accepted; a browser's is ~1 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long shutdown lets open connections finish their answer.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The pause after a failed accept (e.g. out of file descriptors) before the next try.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long the accept loop waits for a replaced connection to close its socket.
const REPLACE_WAIT: Duration = Duration::from_secs(1);

/// The connection a request came on (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// The bounds of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// `configured`, but at most half the soft open-file limit (the rest is for the history,
/// the capture, MQTT and the runtime itself).
pub fn connection_cap(configured: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match soft.and_then(|s| usize::try_from(s / 2).ok()) {
        Some(half) => configured.min(half.max(1)),
        None => configured,
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open answers finish (up to
/// [`SHUTDOWN_GRACE`]).
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: BridgeStats,
    shutdown: CancellationToken,
) {
    let slots = Slots::new(connection_cap(limits.max_connections));
    tracing::debug!(
        cap = slots.cap(),
        header_timeout = ?limits.header_timeout,
        "web connection limits"
    );
    let mut connections = JoinSet::new();
    let mut accept_warned = false;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or memory: the connection waits in the kernel's
                // backlog; try again shortly instead of spinning.
                stats.record_dropped("web_accept_failed");
                if !accept_warned {
                    accept_warned = true;
                    tracing::warn!(error = %e, "the dashboard cannot accept a connection (logged once)");
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let slot = match slots.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Replaced(slot, closed) => {
                stats.record_dropped("web_connection_replaced");
                // Its socket first: a burst must not hold more sockets than the cap.
                let _ = tokio::time::timeout(REPLACE_WAIT, closed.wait()).await;
                slot
            }
            Admission::Full => {
                stats.record_dropped("web_connection_refused");
                continue;
            }
        };
        connections.spawn(serve_connection(
            tcp,
            peer,
            app.clone(),
            slot,
            limits.header_timeout,
            shutdown.clone(),
        ));
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!("web connections still open after the shutdown grace: closed");
    }
}

/// Serves one connection; its slot is given back only after the socket is closed.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Slot,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let replaced = slot.replaced();
    let busy = slot.busy();
    tokio::select! {
        () = serve_http(tcp, peer, app, busy, header_timeout, shutdown) => {}
        // Dropping the connection closes its socket.
        () = replaced.cancelled() => tracing::debug!(%peer, "idle web connection closed for a newer one"),
    }
    drop(slot);
}

async fn serve_http(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    busy: BusyCounter,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    // No Nagle delay: SSE events and small JSON answers are latency-bound (with Nagle a
    // small write waits for the client's delayed ACK: p99 38 ms instead of ~3 ms).
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    let Ok(local) = tcp.local_addr() else {
        return;
    };
    let info = ConnInfo { peer, local };
    let service = service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(info);
        let working = busy.enter();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            Ok::<_, Infallible>(response.map(|body| BusyBody::wrap(body, working)))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                // Timeouts, resets and malformed requests are the clients' business.
                tracing::debug!(%peer, error = %e, timeout = e.is_timeout(), "web connection ended");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
