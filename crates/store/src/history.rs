//! Which samples go to history: a value is kept when it changed (but not more often than
//! `min_interval`), and an unchanged value again after `unchanged_every`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::{Kind, StateDef};
use protocol::Value;

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
    last: HashMap<(Arc<str>, usize), (Value, SystemTime)>,
}

impl HistoryFilter {
    pub(crate) fn new(min_interval: Duration, unchanged_every: Duration) -> Self {
        HistoryFilter {
            min_interval,
            unchanged_every,
            last: HashMap::new(),
        }
    }

    /// True when this value should be stored; remembers it if so.
    pub(crate) fn admit(
        &mut self,
        sn: &Arc<str>,
        state: &StateDef,
        value: &Value,
        at: SystemTime,
    ) -> bool {
        let key = (sn.clone(), state.index);
        let keep = match self.last.get(&key) {
            None => true,
            Some((last, last_at)) => {
                let since = at.duration_since(*last_at).unwrap_or(Duration::ZERO);
                (last != value && since >= self.min_interval)
                    || (!self.unchanged_every.is_zero() && since >= self.unchanged_every)
            }
        };
        if keep {
            self.last.insert(key, (value.clone(), at));
        }
        keep
    }

    /// Seeds the filter with a value already in the history (after a restart).
    pub(crate) fn seed(&mut self, sn: &Arc<str>, state: &StateDef, value: Value, at: SystemTime) {
        self.last.insert((sn.clone(), state.index), (value, at));
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
        assert!(f.admit(&sn, def, &Value::Number(1.0), t0));
        // Same value: skipped until unchanged_every.
        assert!(!f.admit(&sn, def, &Value::Number(1.0), t0 + Duration::from_secs(20)));
        // Changed but within min_interval: skipped.
        assert!(!f.admit(&sn, def, &Value::Number(2.0), t0 + Duration::from_secs(5)));
        assert!(f.admit(&sn, def, &Value::Number(2.0), t0 + Duration::from_secs(11)));
        assert!(f.admit(&sn, def, &Value::Number(2.0), t0 + Duration::from_secs(611)));
        // Other devices are independent.
        assert!(f.admit(&"SN2".into(), def, &Value::Number(2.0), t0));
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
