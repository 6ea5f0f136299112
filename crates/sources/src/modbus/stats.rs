//! [`ModbusStats`]: the Modbus source's counters — polls by outcome, requests, bytes on
//! the wire both ways, time per poll, failures by kind — cheap atomics shared with
//! whoever watches ([`ModbusStats::snapshot`]). What a poll of one device costs is read
//! off these (docs/modbus.md).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one Modbus source.
#[derive(Debug, Default)]
pub struct ModbusStats {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    polls: AtomicU64,
    published: AtomicU64,
    skipped: AtomicU64,
    not_enabled_polls: AtomicU64,
    requests: AtomicU64,
    registers: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    exceptions: AtomicU64,
    timeouts: AtomicU64,
    held_off: AtomicU64,
    bad_answers: AtomicU64,
    dropped: AtomicU64,
    poll_micros_total: AtomicU64,
    poll_micros_last: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModbusStatsSnapshot {
    /// TCP connections opened.
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Polls that got every block answered (whatever the values).
    pub polls: u64,
    /// Polls whose values were sent on.
    pub published: u64,
    /// Polls skipped: a zero-rated-power spike, a poll without the rated power (its block
    /// refused), no serial to name the device by.
    pub skipped: u64,
    /// Polls that read "Modbus not enabled" (every value 0, rated power 0).
    pub not_enabled_polls: u64,
    /// Read requests sent.
    pub requests: u64,
    /// Registers asked for.
    pub registers: u64,
    /// Bytes written to and read from the socket (Modbus TCP frames, headers included).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Answers that were Modbus exceptions.
    pub exceptions: u64,
    /// Requests not answered within the timeout.
    pub timeouts: u64,
    /// Connections whose first request went unanswered: another client holds the slot.
    pub held_off: u64,
    /// Broken or foreign answers (garbage, wrong length, mismatched header).
    pub bad_answers: u64,
    /// Readings dropped because the receiver did not keep up.
    pub dropped: u64,
    /// Wall time of the complete polls, summed, and of the last one, in µs.
    pub poll_micros_total: u64,
    pub poll_micros_last: u64,
}

impl ModbusStatsSnapshot {
    /// Mean time of a complete poll, in µs (0 before the first).
    pub fn mean_poll_micros(&self) -> u64 {
        self.poll_micros_total.checked_div(self.polls).unwrap_or(0)
    }
}

macro_rules! bump {
    ($($name:ident),*) => {$(
        pub(crate) fn $name(&self) {
            self.$name.fetch_add(1, Relaxed);
        }
    )*};
}

impl ModbusStats {
    bump!(
        connects,
        connect_failures,
        published,
        skipped,
        not_enabled_polls,
        exceptions,
        timeouts,
        held_off,
        bad_answers,
        dropped
    );

    pub(crate) fn request(&self, registers: u16) {
        self.requests.fetch_add(1, Relaxed);
        self.registers.fetch_add(u64::from(registers), Relaxed);
    }

    pub(crate) fn sent(&self, n: usize) {
        self.bytes_sent.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn received(&self, n: usize) {
        self.bytes_received.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn poll_done(&self, micros: u64) {
        self.polls.fetch_add(1, Relaxed);
        self.poll_micros_total.fetch_add(micros, Relaxed);
        self.poll_micros_last.store(micros, Relaxed);
    }

    pub fn snapshot(&self) -> ModbusStatsSnapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        ModbusStatsSnapshot {
            connects: g(&self.connects),
            connect_failures: g(&self.connect_failures),
            polls: g(&self.polls),
            published: g(&self.published),
            skipped: g(&self.skipped),
            not_enabled_polls: g(&self.not_enabled_polls),
            requests: g(&self.requests),
            registers: g(&self.registers),
            bytes_sent: g(&self.bytes_sent),
            bytes_received: g(&self.bytes_received),
            exceptions: g(&self.exceptions),
            timeouts: g(&self.timeouts),
            held_off: g(&self.held_off),
            bad_answers: g(&self.bad_answers),
            dropped: g(&self.dropped),
            poll_micros_total: g(&self.poll_micros_total),
            poll_micros_last: g(&self.poll_micros_last),
        }
    }
}
