//! What the store refuses to publish, value by value: placeholders (protocol §11) and
//! energy counters that step backwards ([`protocol::counters`]). A held value reaches
//! nothing — latest values, events (SSE, Home Assistant), history — and is counted; the
//! last published value stands.
//!
//! Home Assistant's Energy dashboard sums a counter's increases forever and cannot be
//! repaired afterwards; it takes any decrease of a `total_increasing` sensor below 90 %
//! of the previous value as a meter reset. One bad sample (a dip by 1 Wh, a 0 for a
//! frame) would then count the whole day's energy twice. So:
//! - **lifetime counter**: never resets. Any decrease is held; exactly 0 of an
//!   energy/charge counter is a placeholder. (The catalog's pack charge, discharge and
//!   cycles are per pack, taken in turn under one state: only their placeholders are
//!   dropped — [`CounterKind::PackLifetime`].)
//! - **daily counter** (the heartbeat's six `*DayEnergy`): resets at local midnight. A
//!   decrease is a reset, published once, when the new value is at most
//!   [`RESET_FRACTION`] (10 %) of the last published one — a day restarts at 0 and the
//!   heartbeat reports every 30–60 s, so the first value after midnight is a few Wh — or
//!   when the heartbeat had been silent for [`MISSED_MIDNIGHT_AFTER`] (1 h) or more:
//!   across such a gap the bridge (or the device) may have missed midnight, and holding
//!   today's counter until it passed yesterday's total would hide a whole day. Any other
//!   decrease is held (a dip by 1 Wh at 1 500 Wh is not a reset).
//!
//! The guard compares with the last *published* value (the latest value the store holds),
//! which the history restores after a restart, so the rule holds across restarts.

use std::time::Duration;

use catalog::StateDef;
use protocol::counters::{CounterKind, counter_kind};
use protocol::{ValueRef, field::is_placeholder};

/// A daily counter that falls to at most this share of its last published value has
/// been reset (midnight).
pub const RESET_FRACTION: f64 = 0.1;

/// A daily counter's decrease after this long without a heartbeat is taken as a reset
/// (midnight may have passed unseen).
pub const MISSED_MIDNIGHT_AFTER: Duration = Duration::from_secs(3600);

/// What [`crate::StateStore::apply`] held back from one payload; the pipeline counts
/// each as `dropped{reason}` ([`Held::reasons`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Placeholder readings (protocol §11), never published.
    pub placeholder: u64,
    /// Counter readings that stepped backwards (see the module doc).
    pub counter_backwards: u64,
    /// Devices of the payload the store had no room for (`[store] max_devices`): one per
    /// device and payload.
    pub device_limit: u64,
}

impl Held {
    /// `(reason label, count)` of each kind, for `dropped{reason}`.
    pub fn reasons(&self) -> [(&'static str, u64); 3] {
        [
            ("placeholder", self.placeholder),
            ("counter_backwards", self.counter_backwards),
            ("device_limit", self.device_limit),
        ]
    }

    pub fn is_empty(&self) -> bool {
        *self == Held::default()
    }
}

/// What happens to one decoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Publish,
    /// Not a reading (protocol §11): dropped, counted `placeholder`.
    Placeholder,
    /// A counter stepping backwards: held, counted `counter_backwards`.
    Backwards,
}

/// Judges `value` of `state`. `previous` is the last published value (looked up only
/// for counters); `silence` how long the state's channel had been quiet before this
/// payload (`None`: it never reported).
#[inline]
pub(crate) fn judge(
    state: &StateDef,
    value: ValueRef<'_>,
    previous: impl FnOnce() -> Option<f64>,
    silence: Option<Duration>,
) -> Verdict {
    let ValueRef::Number(v) = value else {
        return Verdict::Publish;
    };
    if is_placeholder(state, v) {
        return Verdict::Placeholder;
    }
    judge_counter(counter_kind(state), v, previous, silence)
}

/// The counter part of [`judge`], by kind: only a series is held back.
fn judge_counter(
    kind: CounterKind,
    v: f64,
    previous: impl FnOnce() -> Option<f64>,
    silence: Option<Duration>,
) -> Verdict {
    if !kind.is_series() {
        return Verdict::Publish;
    }
    if !v.is_finite() {
        return Verdict::Placeholder;
    }
    let Some(last) = previous().filter(|p| p.is_finite()) else {
        return Verdict::Publish;
    };
    if v >= last {
        return Verdict::Publish;
    }
    let reset = kind == CounterKind::Daily
        && ((v >= 0.0 && v <= last * RESET_FRACTION)
            || silence.is_some_and(|s| s >= MISSED_MIDNIGHT_AFTER));
    if reset {
        Verdict::Publish
    } else {
        Verdict::Backwards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(key: &str) -> &'static StateDef {
        catalog::by_key(key).expect("catalog key")
    }

    fn daily(v: f64, last: Option<f64>) -> Verdict {
        let pv = state("EMSHeartbeatReport.pvInDayEnergy");
        judge(
            pv,
            ValueRef::Number(v),
            || last,
            Some(Duration::from_secs(30)),
        )
    }

    /// A lifetime series (the catalog has none today; Modbus-style totals would be).
    fn lifetime(v: f64, last: Option<f64>) -> Verdict {
        judge_counter(
            CounterKind::Lifetime,
            v,
            || last,
            Some(Duration::from_secs(30)),
        )
    }

    #[test]
    fn a_dip_by_one_is_held_growth_and_equality_publish() {
        assert_eq!(daily(1499.0, Some(1500.0)), Verdict::Backwards);
        assert_eq!(daily(1500.0, Some(1500.0)), Verdict::Publish);
        assert_eq!(daily(1501.0, Some(1500.0)), Verdict::Publish);
        assert_eq!(daily(1500.0, None), Verdict::Publish, "first value");
        assert_eq!(lifetime(3999.999, Some(4000.0)), Verdict::Backwards);
        assert_eq!(lifetime(4000.001, Some(4000.0)), Verdict::Publish);
    }

    #[test]
    fn midnight_resets_a_daily_counter_never_a_lifetime_one() {
        assert_eq!(daily(0.0, Some(15_000.0)), Verdict::Publish);
        assert_eq!(daily(12.0, Some(15_000.0)), Verdict::Publish);
        assert_eq!(
            daily(1500.0, Some(15_000.0)),
            Verdict::Publish,
            "10 % exactly"
        );
        assert_eq!(daily(1501.0, Some(15_000.0)), Verdict::Backwards);
        assert_eq!(daily(-5.0, Some(15_000.0)), Verdict::Backwards);
        // Reset, then the day grows from there.
        assert_eq!(daily(30.0, Some(0.0)), Verdict::Publish);
        // A lifetime series never resets.
        assert_eq!(lifetime(1.0, Some(4000.0)), Verdict::Backwards);
        assert_eq!(lifetime(0.0, Some(4000.0)), Verdict::Backwards);
    }

    #[test]
    fn pack_counters_drop_placeholders_and_take_each_pack_in_turn() {
        let charged = state("CloudBmsInfoReport.bpAccuChgCap");
        let judge_charged = |v, last| judge(charged, ValueRef::Number(v), || last, None);
        // 0 of a charge counter is a placeholder (protocol §11), whatever came before.
        assert_eq!(judge_charged(0.0, None), Verdict::Placeholder);
        assert_eq!(judge_charged(0.0, Some(4000.0)), Verdict::Placeholder);
        // The other pack's smaller total is its own reading, not a step back.
        assert_eq!(judge_charged(3000.0, Some(4000.0)), Verdict::Publish);
        let cycles = state("CloudBmsInfoReport.bpCycles");
        let judge_cycles = |v, last| judge(cycles, ValueRef::Number(v), || last, None);
        assert_eq!(judge_cycles(0.0, None), Verdict::Publish, "a new pack");
        assert_eq!(judge_cycles(40.0, Some(47.0)), Verdict::Publish, "pack 2");
    }

    #[test]
    fn after_an_hour_of_silence_a_daily_decrease_is_a_missed_midnight() {
        let pv = state("EMSHeartbeatReport.pvInDayEnergy");
        let after = |secs| {
            judge(
                pv,
                ValueRef::Number(9000.0),
                || Some(15_000.0),
                Some(Duration::from_secs(secs)),
            )
        };
        assert_eq!(after(3599), Verdict::Backwards);
        assert_eq!(after(3600), Verdict::Publish);
        // A lifetime series has no midnight.
        let long = Some(Duration::from_secs(86_400));
        assert_eq!(
            judge_counter(CounterKind::Lifetime, 1.0, || Some(2.0), long),
            Verdict::Backwards
        );
    }

    #[test]
    fn placeholders_and_other_states() {
        let soc = state("EMSHeartbeatReport.bpSoc");
        let no_previous = || -> Option<f64> { panic!("only counters look back") };
        assert_eq!(
            judge(soc, ValueRef::Number(4_294_967_295.0), no_previous, None),
            Verdict::Placeholder
        );
        assert_eq!(
            judge(soc, ValueRef::Number(3.0), no_previous, None),
            Verdict::Publish
        );
        let pv = state("EnergyStreamItem.pvPwr");
        assert_eq!(
            judge(pv, ValueRef::Number(0.0), no_previous, None),
            Verdict::Publish
        );
        let text = state("bpInfo0.bpSn");
        assert_eq!(
            judge(text, ValueRef::Text("x"), no_previous, None),
            Verdict::Publish
        );
        assert_eq!(daily(f64::NAN, Some(1.0)), Verdict::Placeholder);
    }
}
