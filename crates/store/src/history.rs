//! Which samples go to history: a value is kept when it changed (but not more often than
//! `min_interval`), and an unchanged value again after `unchanged_every`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::{Kind, StateDef};
use protocol::{Value, ValueRef};

use crate::slots::ChannelSlots;

/// One history row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySample {
    pub device_sn: Arc<str>,
    pub state: &'static StateDef,
    pub at: SystemTime,
    pub value: Value,
}

impl HistorySample {
    /// The numeric column: numbers only.
    pub fn number(&self) -> Option<f64> {
        self.value.as_number().filter(|v| v.is_finite())
    }

    /// The text column: texts, and arrays as a JSON list.
    pub fn text(&self) -> Option<String> {
        match &self.value {
            Value::Number(_) => None,
            Value::Text(t) => Some(t.to_string()),
            Value::Array(items) => serde_json::to_string(items).ok(),
        }
    }
}

/// Rebuilds a value from the stored columns, using the catalog kind.
pub fn value_from_columns(
    state: &StateDef,
    num: Option<f64>,
    text: Option<String>,
) -> Option<Value> {
    match (num, text) {
        (Some(n), _) => Some(Value::Number(n)),
        (None, Some(t)) if state.kind == Kind::Array => {
            serde_json::from_str::<Vec<f64>>(&t).ok().map(Value::Array)
        }
        (None, Some(t)) => Some(Value::Text(t.into())),
        (None, None) => None,
    }
}

/// Remembers the last stored value per device/state.
#[derive(Debug)]
pub(crate) struct HistoryFilter {
    min_interval: Duration,
    unchanged_every: Duration,
    last: HashMap<Arc<str>, ChannelSlots<(Value, SystemTime)>>,
}

/// The filter for one device (looked up once per payload, not per state).
pub(crate) struct DeviceFilter<'f> {
    min_interval: Duration,
    unchanged_every: Duration,
    last: &'f mut ChannelSlots<(Value, SystemTime)>,
}

impl HistoryFilter {
    pub(crate) fn new(min_interval: Duration, unchanged_every: Duration) -> Self {
        HistoryFilter {
            min_interval,
            unchanged_every,
            last: HashMap::new(),
        }
    }

    pub(crate) fn device(&mut self, sn: &Arc<str>) -> DeviceFilter<'_> {
        DeviceFilter {
            min_interval: self.min_interval,
            unchanged_every: self.unchanged_every,
            last: self.last.entry(sn.clone()).or_default(),
        }
    }

    /// Seeds the filter with a value already in the history (after a restart).
    pub(crate) fn seed(&mut self, sn: &Arc<str>, state: &StateDef, value: Value, at: SystemTime) {
        if let Some(slot) = self.device(sn).last.slot_mut(state) {
            *slot = Some((value, at));
        }
    }
}

impl DeviceFilter<'_> {
    /// True when this value should be stored; remembers it if so (in place: nothing is
    /// allocated for a number or short text, nor for an array of unchanged length).
    pub(crate) fn admit(&mut self, state: &StateDef, value: ValueRef<'_>, at: SystemTime) -> bool {
        let Some(slot) = self.last.slot_mut(state) else {
            return true;
        };
        match slot {
            None => {
                *slot = Some((value.to_value(), at));
                true
            }
            Some((last, last_at)) => {
                let changed = !value.eq_value(last);
                let since = || at.duration_since(*last_at).unwrap_or(Duration::ZERO);
                let keep = (changed
                    && (self.min_interval.is_zero() || since() >= self.min_interval))
                    || (!self.unchanged_every.is_zero() && since() >= self.unchanged_every);
                if keep {
                    value.assign_to(last);
                    *last_at = at;
                }
                keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_changes_and_refreshes_unchanged_values() {
        let def = catalog::by_key("EnergyStreamItem.pvPwr").expect("in catalog");
        let sn: Arc<str> = "SN1".into();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut f = HistoryFilter::new(Duration::from_secs(10), Duration::from_secs(600));
        let mut admit =
            |sn: &Arc<str>, v: f64, at| f.device(sn).admit(def, ValueRef::Number(v), at);
        assert!(admit(&sn, 1.0, t0));
        // Same value: skipped until unchanged_every.
        assert!(!admit(&sn, 1.0, t0 + Duration::from_secs(20)));
        // Changed but within min_interval: skipped.
        assert!(!admit(&sn, 2.0, t0 + Duration::from_secs(5)));
        assert!(admit(&sn, 2.0, t0 + Duration::from_secs(11)));
        assert!(admit(&sn, 2.0, t0 + Duration::from_secs(611)));
        // Other devices are independent.
        assert!(admit(&"SN2".into(), 2.0, t0));
    }

    #[test]
    fn columns_round_trip() {
        let arr = catalog::by_key("CloudBmsInfoReport.bpCellVol").expect("in catalog");
        let s = HistorySample {
            device_sn: "SN".into(),
            state: arr,
            at: SystemTime::UNIX_EPOCH,
            value: Value::Array(vec![3.2, 3.25]),
        };
        assert_eq!(s.number(), None);
        assert_eq!(
            value_from_columns(arr, s.number(), s.text()),
            Some(s.value.clone())
        );
        let txt = catalog::by_key("bpInfo0.bpSn").expect("in catalog");
        assert_eq!(
            value_from_columns(txt, None, Some("ABC".into())),
            Some(Value::Text("ABC".into()))
        );
    }
}
