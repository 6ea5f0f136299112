//! The pipeline: source → bounded channel → decode (protocol / open-API JSON) → stats →
//! store, with a copy of each payload to the rolling capture; the sinks read from the
//! store. Also [`StatsObserver`], the glue that lets a source count its events (logins,
//! connects, reconnects, drops, live gauges) in [`BridgeStats`].
//!
//! The trust rule (protocol §2): a payload belongs to the device its topic names. A
//! frame whose header names another device is dropped (`serial_mismatch`); a payload on
//! a topic that names no device is dropped whole (`no_device_topic`): every topic the
//! sources subscribe to names its device — the app route's property, `get_reply` and
//! `set_reply` topics, the open API's `quota` and `status`, fleet mode's topics once its
//! `topic_prefix` is removed — and so does every line of a record file written from
//! them. The store then admits at most `[store] max_devices` devices (`device_limit`),
//! and holds back placeholders and backward counter steps (`placeholder`,
//! `counter_backwards`). Each is counted as `dropped{reason}`; the first two and the
//! device limit also log one line a minute at most.

use model::BridgeStats;
use protocol::route::{PayloadError, Routed};
use protocol::topics::{PayloadKind, payload_kind};
use protocol::{FieldRules, PayloadView, UpdateBuf};
use sources::{LiveTask, Origin, RawPayload, SourceError, SourceObserver};
use store::StateStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::capture::CaptureTap;

/// What one payload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded; this many states went to the store.
    Applied(usize),
    /// Unusable as a whole; counted by reason.
    Rejected(&'static str),
}

/// Decodes one payload, counts it and applies it to the store, with the default field
/// rules (protocol §11: zero-fill on). See [`process_with`].
pub fn process(
    buf: &mut UpdateBuf,
    raw: &RawPayload,
    store: &StateStore,
    stats: &BridgeStats,
) -> Outcome {
    process_with(FieldRules::default(), buf, raw, store, stats)
}

/// At most this much of a serial goes into a log line (topics come from the network).
const LOGGED_SERIAL: usize = 40;

/// Decodes one payload as coming from the device its topic names, counts it and applies
/// it to the store. Protobuf frames decode into `buf`, which the caller keeps between
/// payloads: in steady state that allocates nothing per state. Open-API JSON decodes
/// into owned states, as before.
pub fn process_with(
    rules: FieldRules,
    buf: &mut UpdateBuf,
    raw: &RawPayload,
    store: &StateStore,
    stats: &BridgeStats,
) -> Outcome {
    let kind = payload_kind(&raw.topic);
    // A command on a `set` topic (ours echoed, or the app's) is never a reading.
    if kind == PayloadKind::Command {
        return Outcome::Applied(0);
    }
    let Some(sn) = protocol::topics::device_sn_from_topic(&raw.topic) else {
        let reason = "no_device_topic";
        stats.warn_dropped(reason, 1, || {
            let topic: String = raw.topic.chars().take(80).collect();
            format!("a payload on {topic:?}, a topic that names no device, was dropped")
        });
        return Outcome::Rejected(reason);
    };
    // The topic picks the decoder in one place (`protocol::route`).
    let result = protocol::route::decode_into(buf, &raw.topic, &raw.payload, sn, rules).map(
        |routed| match routed {
            Routed::Frames(buf) => {
                let foreign = buf.foreign_frames() as u64;
                stats.warn_dropped("serial_mismatch", foreign, || {
                    let sn: String = sn.chars().take(LOGGED_SERIAL).collect();
                    format!(
                        "{foreign} frame(s) on the topic of device {sn} named another device in their header and were dropped (protocol §2: the topic says whose frame it is)"
                    )
                });
                apply_to(buf, raw, store, stats)
            }
            Routed::Json(decoded) => apply_to(&decoded, raw, store, stats),
            Routed::Command => 0,
        },
    );
    match result {
        Ok(states) => Outcome::Applied(states),
        Err(PayloadError::Frames(e)) => {
            tracing::debug!(topic = %raw.topic, "payload not decoded: {e}");
            stats.record_error(&e);
            Outcome::Rejected(e.reason())
        }
        Err(e) => {
            tracing::debug!(topic = %raw.topic, "payload not decoded: {e}");
            stats.record_dropped(e.reason());
            Outcome::Rejected(e.reason())
        }
    }
}

/// Counts a decoded payload and applies it; returns how many states it carried. What
/// the store held back is counted by reason.
fn apply_to(
    decoded: &impl PayloadView,
    raw: &RawPayload,
    store: &StateStore,
    stats: &BridgeStats,
) -> usize {
    stats.record_payload(decoded);
    // Protocol §8: a quota poll's values prove nothing about the device; they update the
    // latest values, never a channel's freshness.
    let held = match raw.origin {
        Origin::Push => store.apply(decoded, raw.received_at),
        Origin::Poll => store.apply_polled(decoded, raw.received_at),
    };
    if !held.is_empty() {
        stats.add_dropped("placeholder", held.placeholder);
        stats.add_dropped("counter_backwards", held.counter_backwards);
        stats.warn_dropped("device_limit", held.device_limit, || {
            format!(
                "the store holds its limit of {} devices ([store] max_devices); reports of further devices were dropped",
                store.config().max_devices
            )
        });
    }
    decoded.len()
}

/// [`run_with`] with the default field rules (protocol §11: zero-fill on).
pub async fn run(
    rx: mpsc::Receiver<RawPayload>,
    store: StateStore,
    stats: BridgeStats,
    capture: Option<CaptureTap>,
    shutdown: CancellationToken,
) {
    run_with(rx, store, stats, capture, FieldRules::default(), shutdown).await
}

/// Drains the channel into the store until the senders are gone or `shutdown` fires;
/// `capture` (if any) gets a copy of every payload first, as it arrived.
pub async fn run_with(
    mut rx: mpsc::Receiver<RawPayload>,
    store: StateStore,
    stats: BridgeStats,
    capture: Option<CaptureTap>,
    rules: FieldRules,
    shutdown: CancellationToken,
) {
    let mut buf = UpdateBuf::new();
    loop {
        let raw = tokio::select! {
            raw = rx.recv() => match raw {
                Some(raw) => raw,
                None => break,
            },
            _ = shutdown.cancelled() => break,
        };
        if let Some(tap) = &capture {
            tap.offer(&raw);
        }
        process_with(rules, &mut buf, &raw, &store, &stats);
    }
    // Whatever is already queued still goes in (bounded: the channel's capacity).
    while let Ok(raw) = rx.try_recv() {
        if let Some(tap) = &capture {
            tap.offer(&raw);
        }
        process_with(rules, &mut buf, &raw, &store, &stats);
    }
}

/// Lets a source report into [`BridgeStats`]: what `/metrics` and the dashboard show.
#[derive(Debug, Clone)]
pub struct StatsObserver(pub BridgeStats);

impl SourceObserver for StatsObserver {
    fn logged_in(&self) {
        self.0.record_login();
    }

    fn connected(&self) {
        self.0.record_connect();
    }

    fn reconnecting(&self, error: &SourceError) {
        self.0.record_source_error(&error.to_string());
        self.0.record_reconnect();
    }

    fn stopped(&self) {
        self.0.record_disconnect();
    }

    fn get_all_sent(&self) {
        self.0.record_get_all();
    }

    fn dropped(&self, reason: &'static str) {
        self.0.record_dropped(reason);
    }

    fn live(&self, task: LiveTask, change: i64) {
        match task {
            LiveTask::ConnectionLoop => self.0.add_live_loops(change),
            LiveTask::GetAllTimer => self.0.add_live_get_all_timers(change),
        }
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
