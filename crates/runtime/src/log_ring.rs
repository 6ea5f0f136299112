//! [`LogRing`]: the last warnings and errors the process logged, kept in memory for the
//! "last errors" of a diagnostics bundle (`oceanbridge diagnose`, `GET /api/diagnostics`).
//! A user reporting a bug rarely still has the log lines of the moment it went wrong;
//! the running bridge does.
//!
//! It is a `tracing` layer ([`LogRing::layer`]) with its own level filter (warnings and
//! errors, whatever `--log-level` or `RUST_LOG` print), bounded to the newest
//! [`LogRing::capacity`] entries: an error storm costs a fixed amount of memory.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

/// How many entries a ring keeps unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 200;

/// One warning or error, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// When it was logged (ms since the Unix epoch).
    pub time_ms: i64,
    /// `WARN` or `ERROR`.
    pub level: &'static str,
    /// The module that logged it (e.g. `sources::cloud`).
    pub target: String,
    /// The message and its fields (`key=value`), as the log line shows them.
    pub message: String,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<LogEntry>,
    /// Warnings and errors seen since start, kept or not.
    total: u64,
}

/// The newest warnings and errors; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct LogRing {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl Default for LogRing {
    fn default() -> Self {
        LogRing::new(DEFAULT_CAPACITY)
    }
}

/// What a bundle shows: the kept entries, oldest first, and how many there were in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSnapshot {
    pub total: u64,
    pub kept: usize,
    pub entries: Vec<LogEntry>,
}

impl LogRing {
    pub fn new(capacity: usize) -> LogRing {
        LogRing {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a consistent deque: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an entry, dropping the oldest beyond the capacity.
    pub fn push(&self, entry: LogEntry) {
        let mut inner = self.lock();
        inner.total += 1;
        if inner.entries.len() == self.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
    }

    pub fn snapshot(&self) -> LogSnapshot {
        let inner = self.lock();
        LogSnapshot {
            total: inner.total,
            kept: inner.entries.len(),
            entries: inner.entries.iter().cloned().collect(),
        }
    }

    /// The `tracing` layer that fills this ring with every warning and error.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        RingLayer { ring: self.clone() }.with_filter(LevelFilter::WARN)
    }
}

struct RingLayer {
    ring: LogRing,
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            // The filter passes nothing else; a misconfigured use keeps nothing either.
            _ => return,
        };
        let mut text = MessageText::default();
        event.record(&mut text);
        self.ring.push(LogEntry {
            time_ms: model::unix_ms(SystemTime::now()),
            level,
            target: meta.target().to_string(),
            message: text.finish(),
        });
    }
}

/// The message first, then the other fields as `key=value`, like the fmt layer prints.
#[derive(Default)]
struct MessageText {
    message: String,
    fields: String,
}

impl MessageText {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn keeps_the_newest_warnings_and_errors_only() {
        let ring = LogRing::new(3);
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::debug!("not kept either");
            for i in 0..5 {
                tracing::warn!(attempt = i, "reconnecting");
            }
            tracing::error!(error = %"refused", "login failed");
        });
        let s = ring.snapshot();
        assert_eq!(s.total, 6);
        assert_eq!(s.kept, 3);
        let lines: Vec<String> = s
            .entries
            .iter()
            .map(|e| format!("{} {}", e.level, e.message))
            .collect();
        assert_eq!(
            lines,
            [
                "WARN reconnecting attempt=3",
                "WARN reconnecting attempt=4",
                "ERROR login failed error=refused",
            ]
        );
        assert!(s.entries[0].target.contains("log_ring"), "{s:?}");
        assert!(s.entries[0].time_ms > 0);
    }
}
