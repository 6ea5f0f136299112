//! Counters of what the simulator did (logins, connections, frames), readable as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulatorStats {
    /// App logins accepted / refused (wrong password, unknown user, bad body).
    pub logins_ok: u64,
    pub logins_failed: u64,
    /// Certification answers handed out (app route and open API).
    pub certifications: u64,
    /// HTTP requests refused for a missing/expired token or a bad open-API signature.
    pub auth_rejected: u64,
    /// MQTT connections accepted (CONNACK 0) since start.
    pub mqtt_connections: u64,
    /// MQTT connections refused (bad credentials, broker down).
    pub mqtt_refused: u64,
    /// MQTT clients connected right now.
    pub mqtt_clients: u64,
    /// MQTT payloads the devices published (reports, replies, offline, injected faults).
    pub payloads_published: u64,
    /// Report frames inside those payloads.
    pub frames_published: u64,
    /// Get-all requests answered on `get_reply`.
    pub get_all_answered: u64,
    /// Fault injections carried out.
    pub faults_injected: u64,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Live counters behind [`SimulatorStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters { $(pub(crate) $name: AtomicU64,)* }

        impl Counters {
            pub(crate) fn snapshot(&self) -> SimulatorStats {
                SimulatorStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    logins_ok,
    logins_failed,
    certifications,
    auth_rejected,
    mqtt_connections,
    mqtt_refused,
    mqtt_clients,
    payloads_published,
    frames_published,
    get_all_answered,
    faults_injected,
);

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts one (gauges such as `mqtt_clients`).
pub(crate) fn drop_one(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}
