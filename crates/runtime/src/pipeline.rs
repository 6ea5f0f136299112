//! The pipeline: source → bounded channel → decode (protocol / open-API JSON) → stats →
//! store, with a copy of each payload to the rolling capture; the sinks read from the
//! store. Also [`StatsObserver`], the glue that lets a source count its events (logins,
//! connects, reconnects, drops, live gauges) in [`BridgeStats`].

use protocol::{PayloadView, UpdateBuf};
use sources::payload::{PayloadKind, payload_kind};
use sources::{
    LiveTask, Origin, PayloadError, RawPayload, SourceError, SourceObserver, decode_raw,
};
use store::{BridgeStats, StateStore};
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

/// Decodes one payload, counts it and applies it to the store. Protobuf frames decode
/// into `buf`, which the caller keeps between payloads: in steady state that allocates
/// nothing per state. Open-API JSON decodes into owned states, as before.
pub fn process(
    buf: &mut UpdateBuf,
    raw: &RawPayload,
    store: &StateStore,
    stats: &BridgeStats,
) -> Outcome {
    let result = match payload_kind(&raw.topic) {
        PayloadKind::Frames => {
            let sn = protocol::topics::device_sn_from_topic(&raw.topic).unwrap_or("");
            buf.decode(&raw.payload, sn)
                .map(|()| apply_to(&*buf, raw, store, stats))
                .map_err(PayloadError::Frames)
        }
        // A command on a `set` topic (ours echoed, or the app's) is never a reading.
        PayloadKind::Command => Ok(0),
        _ => decode_raw(&raw.topic, &raw.payload).map(|d| apply_to(&d, raw, store, stats)),
    };
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

/// Counts a decoded payload and applies it; returns how many states went to the store.
fn apply_to(
    decoded: &impl PayloadView,
    raw: &RawPayload,
    store: &StateStore,
    stats: &BridgeStats,
) -> usize {
    stats.record_payload(decoded);
    // Protocol §8: a quota poll's values prove nothing about the device; they update the
    // latest values, never a channel's freshness.
    match raw.origin {
        Origin::Push => store.apply(decoded, raw.received_at),
        Origin::Poll => store.apply_polled(decoded, raw.received_at),
    }
    decoded.len()
}

/// Drains the channel into the store until the senders are gone or `shutdown` fires;
/// `capture` (if any) gets a copy of every payload first, as it arrived.
pub async fn run(
    mut rx: mpsc::Receiver<RawPayload>,
    store: StateStore,
    stats: BridgeStats,
    capture: Option<CaptureTap>,
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
        process(&mut buf, &raw, &store, &stats);
    }
    // Whatever is already queued still goes in (bounded: the channel's capacity).
    while let Ok(raw) = rx.try_recv() {
        if let Some(tap) = &capture {
            tap.offer(&raw);
        }
        process(&mut buf, &raw, &store, &stats);
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
mod tests {
    use std::time::SystemTime;

    use protocol::{DeviceSettings, FrameSpec, encode_frames};
    use sources::RawPayload;
    use store::{BridgeStats, StateStore, StoreConfig};

    use super::{Outcome, process};

    /// A 96/8 report (protocol §10) on the device's property topic reaches the store's
    /// settings channel through the same path as every report, with no catalog state.
    #[test]
    fn a_settings_report_reaches_the_store() {
        let sn = "HJ31ZDH5ZF220999";
        let settings = DeviceSettings {
            work_mode: Some(2),
            backup_reserve: Some(15),
            surplus_threshold: Some(85),
            ..Default::default()
        };
        let payload = encode_frames(vec![FrameSpec {
            cmd_func: 96,
            cmd_id: 8,
            pdata: settings.encode(),
            device_sn: Some(sn.into()),
            seq: 1,
            src: 2,
            xor: true,
        }]);
        let raw = RawPayload {
            topic: protocol::topics::property_topic(sn),
            payload: payload.into(),
            received_at: SystemTime::now(),
            origin: sources::Origin::Push,
        };
        let store = StateStore::open(&StoreConfig::default()).expect("store");
        let mut buf = protocol::UpdateBuf::new();
        let outcome = process(&mut buf, &raw, &store, &BridgeStats::default());
        assert_eq!(outcome, Outcome::Applied(0));
        assert_eq!(store.settings(sn), Some(settings));
    }
}
