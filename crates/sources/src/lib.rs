//! Sources: where payloads come from — the EcoFlow cloud (app account or developer open
//! API, MQTT over TLS), the user's own broker in fleet mode, and record files — delivered
//! as [`RawPayload`]s into a bounded channel, plus [`decode_raw`], which picks the decoder
//! for a payload by its topic (protobuf frames, or open-API JSON mapped by
//! `protocol::open_api`). The value rules live in `protocol`; this crate is the I/O.
//!
//! # Layout
//! - [`config`]: [`CloudConfig`] (with [`WayIn`]) and fleet mode's [`BrokerConfig`]
//!   (serde, documented defaults, humantime durations).
//! - [`api`]: the HTTPS client and the `{code, message, data}` envelope.
//! - [`signing`]: open-API HMAC-SHA256 request signing.
//! - [`login`]: app login + certification, open-API certification, device list, quotas.
//! - [`credentials`]: MQTT credentials and the topics of each route.
//! - [`cloud`]: [`CloudSource`], the one connection loop with backoff, re-login and
//!   credential renewal; `cloud::connection`: one MQTT connection (driver, keep-alive
//!   ticker, handle requests).
//! - [`handle`]: [`SourceHandle`], nudge a stale device / reconnect, from the runtime.
//! - [`client_id`]: one MQTT client id per installation and account, kept in a
//!   [`ClientIdStore`] (protocol §9).
//! - [`refusal`]: the cloud's refusal codes and wrong-region answer as one-line advice (§9).
//! - [`broker`]: [`BrokerSource`], fleet mode: the user's own MQTT broker, shared subscriptions.
//! - [`modbus`]: [`modbus::ModbusSource`], the device's local Modbus TCP interface (§14).
//! - `mqtt`: what both MQTT sources share: client options, SUBACK warning, error lines.
//! - `schedule`: per-device energy stream switch and get-all timers (protocol §8), owned
//!   by the cloud source's loop.
//! - [`observer`]: [`SourceObserver`], the events a source reports (logins, connects,
//!   reconnects with their error, get-alls, drops) and its live loop/timer gauges.
//! - [`payload`]: [`RawPayload`] and [`decode_raw`] (protobuf or open-API JSON by topic).
//! - [`record`]: the JSON-lines record file (`{topic, time, hex}`).
//! - [`error`]: [`SourceError`] and what the loop does about each kind.
//!
//! Secrets, TLS trust, broker URLs and reconnect backoff come from the `connect` crate.

pub mod api;
pub mod broker;
pub mod client_id;
pub mod cloud;
pub mod config;
pub mod credentials;
pub mod error;
pub mod handle;
pub mod login;
pub mod modbus;
mod mqtt;
pub mod observer;
pub mod payload;
pub mod record;
pub mod refusal;
mod schedule;
pub mod signing;

pub use broker::BrokerSource;
pub use client_id::{ClientIdStore, MemoryClientIds, SaveError};
pub use cloud::{CloudSource, seq_now};
pub use config::{BrokerConfig, CloudConfig, DEFAULT_API_URL, WayIn, WhenFull};
pub use error::SourceError;
pub use handle::SourceHandle;
pub use observer::{LiveTask, SourceObserver};
pub use payload::{Origin, PayloadError, RawPayload, decode_raw};
pub use record::{BadLine, LineError, RecordLine};
