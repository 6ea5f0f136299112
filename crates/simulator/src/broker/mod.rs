//! The embedded MQTT 3.1.1 broker behind TLS: checks the certification credentials (and
//! their expiry) and the client-id rules of protocol §9, routes
//! publishes to subscribers, hands client publishes (get-all requests) to the devices, and
//! obeys the fault switches. Packets are parsed with rumqttc's MQTT v4 codec.
//!
//! Why not rumqttd: it runs on its own threads with no in-process shutdown, so it could not
//! be stopped, restarted or made to drop clients on command, which the fault switches and
//! the tests need. The subset the EcoFlow app route uses (CONNECT with login, SUBSCRIBE with
//! wildcards, PUBLISH QoS 0/1/2 in, QoS 0 out, PING, client-id takeover) is small.

mod control;
mod router;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

pub(crate) use control::BrokerControl;
pub(crate) use router::{Message, Router};

use crate::SimulatorError;
use crate::credentials::CredentialBook;
use crate::field::stats::FieldLog;
use crate::stats::Counters;

/// The field rules the broker applies at CONNECT (protocol §9).
#[derive(Debug, Clone)]
pub(crate) struct ConnectRules {
    /// The account's user id (the last part of an app-route client id).
    pub(crate) user_id: String,
    /// App route: only `ANDROID_<UUID v4 upper case>_<userId>`.
    pub(crate) app_client_id_form: bool,
    /// A second connection with a live client id drops the first.
    pub(crate) takeover: bool,
}

/// What every session needs.
pub(crate) struct BrokerCtx {
    acceptor: tokio_rustls::TlsAcceptor,
    book: Arc<CredentialBook>,
    rules: ConnectRules,
    field: Arc<FieldLog>,
    router: Arc<Router>,
    control: BrokerControl,
    counters: Arc<Counters>,
}

/// A running embedded broker.
pub(crate) struct Broker {
    addr: SocketAddr,
    router: Arc<Router>,
    control: BrokerControl,
    task: JoinHandle<()>,
}

impl Broker {
    /// Binds `bind` and serves MQTT over TLS until `shutdown`, accepting the logins in
    /// `book` under `rules`.
    pub(crate) async fn start(
        bind: SocketAddr,
        acceptor: tokio_rustls::TlsAcceptor,
        book: Arc<CredentialBook>,
        rules: ConnectRules,
        shared: &crate::SharedHandles,
        shutdown: CancellationToken,
    ) -> Result<Broker, SimulatorError> {
        let field = shared.field_log.clone();
        let counters = shared.counters.clone();
        let listener = listen(bind).map_err(|source| SimulatorError::Bind {
            what: "MQTT broker",
            addr: bind,
            source,
        })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind {
                what: "MQTT broker",
                addr: bind,
                source,
            })?;
        let router = Arc::new(Router::new(shared.inbound.clone()));
        let control = BrokerControl::new();
        let ctx = Arc::new(BrokerCtx {
            acceptor,
            book,
            rules,
            field,
            router: router.clone(),
            control: control.clone(),
            counters,
        });
        let task = tokio::spawn(accept_loop(listener, addr, ctx, shutdown));
        Ok(Broker {
            addr,
            router,
            control,
            task,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn control(&self) -> BrokerControl {
        self.control.clone()
    }

    /// The routing table, for publishing into the broker.
    pub(crate) fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// Waits until the accept loop and every session have ended (after shutdown; sessions
    /// first deliver what is queued for them).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// A listening socket with SO_REUSEADDR, so "broker up" can take the same port again.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    ctx: Arc<BrokerCtx>,
    shutdown: CancellationToken,
) {
    let sessions = TaskTracker::new();
    let mut down = ctx.control.down();
    let mut listener = Some(listener);
    loop {
        let is_down = *down.borrow_and_update();
        if is_down {
            listener = None;
        } else if listener.is_none() {
            match listen(addr) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    warn!("broker up: cannot listen on {addr} again: {e}; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    }
                }
            }
        }
        match &listener {
            Some(l) => tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = down.changed() => if changed.is_err() { break },
                accepted = l.accept() => match accepted {
                    Ok((tcp, _peer)) => {
                        sessions.spawn(session::run(tcp, ctx.clone(), shutdown.child_token()));
                    }
                    Err(e) => {
                        // E.g. too many open files: back off instead of spinning.
                        warn!("broker accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            },
            None => tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = down.changed() => if changed.is_err() { break },
            },
        }
    }
    drop(listener);
    sessions.close();
    sessions.wait().await;
}
