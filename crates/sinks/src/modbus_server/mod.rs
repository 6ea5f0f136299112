//! The bridge's own Modbus TCP server (protocol §14): the device serves one Modbus client
//! at a time, so the bridge re-serves its register map from the store — to evcc, Home
//! Assistant, Node-RED and the like, several at once — with the device's conventions
//! (unit 1, 32-bit values low word first, battery + while charging, grid + while
//! importing). Read-only. `docs/modbus.md` has the user's side: config, snippets, the
//! exceptions.
//!
//! Bounded for a LAN with careless or hostile clients: a connection cap (a connection
//! beyond it is closed at once), an idle timeout, a frame that is not Modbus TCP closes
//! its connection; each counted in [`ServerStats`]. The bytes on the wire are
//! tokio-modbus's; the register layout and the way back from catalog states to registers
//! are `protocol::modbus`'s.
//!
//! # Layout
//! - this file: [`serve`] (bind, accept loop, shutdown), [`ModbusServer`].
//! - [`config`]: [`ModbusServerConfig`], the `[modbus_server]` section.
//! - [`registers`]: the store's latest values of the device as registers.
//! - `service`: one connection's tokio-modbus service: unit, function, exceptions.
//! - `socket`: a client's socket with the idle timeout and the frame header check.
//! - [`stats`]: [`ServerStats`], the counters.

pub mod config;
pub mod registers;
pub mod stats;

mod service;
mod socket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use store::StateStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::Server;
use tokio_util::sync::CancellationToken;

pub use config::ModbusServerConfig;
pub use service::THIS_SERVER_UNIT;
pub use stats::{ServerStats, ServerStatsSnapshot};

use crate::error::SinkError;
use service::{Connection, Shared};
use socket::Guarded;

/// How long the accept loop waits after the listener failed (e.g. out of file
/// descriptors) before it accepts again.
const ACCEPT_RETRY: Duration = Duration::from_millis(200);

/// The running server.
pub struct ModbusServer {
    /// Where it listens (the bound port when the config said 0).
    pub addr: SocketAddr,
    pub stats: Arc<ServerStats>,
    /// Ends after shutdown, every connection closed.
    pub task: JoinHandle<()>,
}

/// Binds `config.bind` and serves the register map of the device from `store` until
/// `shutdown`.
pub async fn serve(
    config: ModbusServerConfig,
    store: StateStore,
    shutdown: CancellationToken,
) -> Result<ModbusServer, SinkError> {
    config.check()?;
    let bind_error = |source| SinkError::Bind {
        addr: config.bind,
        source,
    };
    let listener = TcpListener::bind(config.bind).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let stats = Arc::new(ServerStats::default());
    let shared = Arc::new(Shared {
        store,
        stats: stats.clone(),
        unit: config.unit,
        serial: config.serial.clone(),
        rated_power_w: config.rated_power_w,
    });
    tracing::info!(
        "Modbus TCP server on {addr} (unit {}, read-only), re-serving {}",
        config.unit,
        config
            .serial
            .as_deref()
            .unwrap_or("the only device the bridge holds")
    );
    let task = tokio::spawn(accept_loop(
        Server::new(listener),
        shared,
        config.max_connections,
        config.idle_timeout,
        shutdown,
    ));
    Ok(ModbusServer { addr, stats, task })
}

async fn accept_loop(
    server: Server,
    shared: Arc<Shared>,
    max_connections: usize,
    idle_timeout: Duration,
    shutdown: CancellationToken,
) {
    let on_connected = |stream, _peer| {
        let shared = shared.clone();
        async move {
            if !shared.stats.open(max_connections) {
                // Dropping the stream closes it: the client sees the connection end.
                return Ok(None);
            }
            let _ = tokio::net::TcpStream::set_nodelay(&stream, true);
            Ok(Some((
                Connection { shared },
                Guarded::new(stream, idle_timeout),
            )))
        }
    };
    let on_error = {
        let stats = shared.stats.clone();
        move |e: std::io::Error| stats.connection_error(&e)
    };
    loop {
        tokio::select! {
            result = server.serve(&on_connected, on_error.clone()) => {
                // Only accept() fails here; tokio-modbus then drops every connection.
                if let Err(e) = result {
                    tracing::warn!("Modbus TCP server: accepting failed ({e}); retrying");
                }
            }
            () = shutdown.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(ACCEPT_RETRY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
