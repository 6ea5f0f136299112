//! [`ServerStats`]: the Modbus server's counters — connections (served, refused at the
//! cap, closed idle, closed on a frame that is not Modbus TCP), requests and reads, and
//! the exceptions answered by code — cheap atomics, read as a [`ServerStatsSnapshot`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The exception codes the server answers (Modbus Application Protocol §7).
pub const EXCEPTIONS: [(u8, &str); 4] = [
    (0x01, "illegal_function"),
    (0x02, "illegal_data_address"),
    (0x03, "illegal_data_value"),
    (0x0B, "gateway_target_device_failed_to_respond"),
];
/// 0x0A is counted apart: it is about the request's unit id, not the map.
const PATH_UNAVAILABLE: (u8, &str) = (0x0A, "gateway_path_unavailable");

/// The server's counters; shared by the accept loop and every connection.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections: AtomicU64,
    refused: AtomicU64,
    open: AtomicU64,
    idle_closed: AtomicU64,
    bad_frames: AtomicU64,
    io_errors: AtomicU64,
    requests: AtomicU64,
    reads: AtomicU64,
    exceptions: [AtomicU64; 5],
}

/// What [`ServerStats::snapshot`] shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerStatsSnapshot {
    /// Connections accepted and served.
    pub connections: u64,
    /// Connections closed at once: `max_connections` were open.
    pub connections_refused: u64,
    /// Connections open now.
    pub clients_now: u64,
    /// Connections closed after `idle_timeout` without traffic.
    pub idle_closed: u64,
    /// Connections closed on bytes that are not a Modbus TCP frame.
    pub bad_frames: u64,
    /// Connections that ended on another socket error (reset, broken pipe).
    pub io_errors: u64,
    /// Requests decoded.
    pub requests: u64,
    /// Reads answered with values.
    pub reads: u64,
    /// Exceptions answered, by name.
    pub exceptions: BTreeMap<&'static str, u64>,
}

impl ServerStats {
    pub fn snapshot(&self) -> ServerStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let names = EXCEPTIONS.iter().chain(std::iter::once(&PATH_UNAVAILABLE));
        ServerStatsSnapshot {
            connections: get(&self.connections),
            connections_refused: get(&self.refused),
            clients_now: get(&self.open),
            idle_closed: get(&self.idle_closed),
            bad_frames: get(&self.bad_frames),
            io_errors: get(&self.io_errors),
            requests: get(&self.requests),
            reads: get(&self.reads),
            exceptions: names
                .zip(&self.exceptions)
                .map(|((_, name), n)| (*name, get(n)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    /// Takes a connection slot, or counts a refusal when `max` are open.
    pub(crate) fn open(&self, max: usize) -> bool {
        let max = max as u64;
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        let counter = if taken {
            &self.connections
        } else {
            &self.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        taken
    }

    pub(crate) fn close(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn exception(&self, code: u8) {
        let i = EXCEPTIONS
            .iter()
            .position(|(c, _)| *c == code)
            .unwrap_or(EXCEPTIONS.len());
        self.exceptions[i].fetch_add(1, Ordering::Relaxed);
    }

    /// How a connection ended with an error: idle, not Modbus, or the socket.
    pub(crate) fn connection_error(&self, e: &std::io::Error) {
        let counter = match e.kind() {
            std::io::ErrorKind::TimedOut => &self.idle_closed,
            // tokio-modbus's decoder: a bad header or PDU, or a PDU cut short.
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => &self.bad_frames,
            _ => &self.io_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
