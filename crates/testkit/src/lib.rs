//! Test support shared by the workspace's tests (a dev-dependency only, never published).
//!
//! Tests here use real services over real sockets; this crate finds them, starts private
//! ones, waits for things to happen and talks to servers — so each test says only what it
//! checks. Its one rule: a test that needs something missing fails under `CI=true` and
//! may only skip (saying so) elsewhere.
//!
//! # Layout
//! - [`require`](mod@require): [`require!`], the CI-or-skip decision on a [`Missing`] service.
//! - [`services`]: probes for the shared broker, PostgreSQL, mosquitto, Chromium, `../shared`.
//! - [`wait`]: polling a condition until a deadline (async and blocking).
//! - [`temp`]: scratch folders (`tempfile`) and per-test unique names.
//! - [`process`]: [`Proc`], a child process with its output lines, signals and exit.
//! - [`mosquitto`]: [`Mosquitto`], a private broker on a port it really holds.
//! - [`http`]: requests to a local server over reqwest, blocking forms too.
//! - [`sse`]: [`EventStream`], a server-sent-events client.
//! - [`raw_http`]: requests written as-is (forged `Host`, foreign `Origin`, any body).
//! - [`net`]: [`closed_port`], a loopback port where connecting is refused.
//! - `feed` (feature `feed`): genuine payloads for all 216 states.
//! - `mqtt` (feature `mqtt`): a subscriber that waits for SUBACK, and a collecting wait.

pub mod http;
pub mod mosquitto;
pub mod net;
pub mod process;
pub mod raw_http;
pub mod require;
pub mod services;
pub mod sse;
pub mod temp;
pub mod wait;

#[cfg(feature = "feed")]
pub mod feed;
#[cfg(feature = "mqtt")]
pub mod mqtt;

pub use mosquitto::Mosquitto;
pub use net::closed_port;
pub use process::Proc;
pub use require::{Missing, in_ci, require};
pub use sse::EventStream;
pub use temp::{TempDir, temp_dir, unique};
pub use wait::{wait_for, wait_for_async, wait_for_blocking, wait_until, wait_until_blocking};
