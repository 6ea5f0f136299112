//! Connect: what every connection from oceanbridge to another service needs, in one copy.
//!
//! # Layout
//! - [`secret`]: [`Secret`], a password/key/token that never prints itself ([`REDACTED`]).
//! - [`endpoint`]: [`MqttEndpoint`], an `mqtt://` / `mqtts://` broker URL parsed with `url`.
//! - [`tls`]: the rustls client config (public web roots + an optional extra CA, ring).
//! - [`backoff`]: [`Backoff`], reconnect delays that double, cap and carry jitter, and start
//!   again at the shortest only after a stable connection.
//!
//! Used by the cloud and fleet sources, the Home Assistant sink, the PostgreSQL history
//! sink and the config loader. Nothing here opens a socket.

pub mod backoff;
pub mod endpoint;
pub mod secret;
pub mod tls;

pub use backoff::Backoff;
pub use endpoint::{EndpointError, MqttEndpoint};
pub use secret::{REDACTED, Secret};
pub use tls::TlsError;
