//! [`PayloadView`]: one read-only view of a decoded payload, whether its states are owned
//! ([`DecodedPayload`]) or live in a reused [`UpdateBuf`], so consumers (the store, the
//! counters) have one code path for both.

use catalog::StateDef;
use smol_str::SmolStr;

use super::{UpdateBuf, ValueRef};
use crate::control::DeviceSettings;
use crate::decode::{DecodedPayload, DeviceStatus, FrameSkip};
use crate::error::DecodeError;
use crate::timer::TimerTask;
use crate::value::Value;

/// One decoded state as a view hands it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateRef<'a> {
    pub device_sn: &'a str,
    pub state: &'static StateDef,
    pub value: ValueRef<'a>,
    pub out_of_range: bool,
}

/// What a decoded payload tells, read-only.
pub trait PayloadView {
    /// `Online` once a report decoded; `Offline` for the offline frame; else `None`.
    fn status(&self) -> Option<DeviceStatus>;
    /// Device serial of the last frame (for status and skips).
    fn device_sn(&self) -> Option<&str>;
    /// Number of frames in the payload.
    fn frames(&self) -> usize;
    fn skipped(&self) -> &[FrameSkip];
    fn errors(&self) -> &[DecodeError];
    /// Number of decoded states.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `i`-th decoded state (`i < len()`), in decode order.
    fn update(&self, i: usize) -> Option<UpdateRef<'_>>;
    /// Settings a 96/8 frame reported (protocol §10; not catalog states).
    fn settings(&self) -> Option<&DeviceSettings>;
    /// Timer tasks a 96/10 or 96/127 frame reported (protocol §12; not catalog states).
    fn timer_tasks(&self) -> Option<&[TimerTask]>;
}

impl PayloadView for DecodedPayload {
    #[inline]
    fn settings(&self) -> Option<&DeviceSettings> {
        self.settings.as_ref()
    }

    #[inline]
    fn timer_tasks(&self) -> Option<&[TimerTask]> {
        self.timer_tasks.as_deref()
    }

    #[inline]
    fn status(&self) -> Option<DeviceStatus> {
        self.status
    }

    #[inline]
    fn device_sn(&self) -> Option<&str> {
        self.device_sn.as_deref()
    }

    #[inline]
    fn frames(&self) -> usize {
        self.frames
    }

    #[inline]
    fn skipped(&self) -> &[FrameSkip] {
        &self.skipped
    }

    #[inline]
    fn errors(&self) -> &[DecodeError] {
        &self.errors
    }

    #[inline]
    fn len(&self) -> usize {
        self.updates.len()
    }

    #[inline]
    fn update(&self, i: usize) -> Option<UpdateRef<'_>> {
        self.updates.get(i).map(|u| UpdateRef {
            device_sn: &u.device_sn,
            state: u.state,
            value: ValueRef::from(&u.value),
            out_of_range: u.out_of_range,
        })
    }
}

impl PayloadView for UpdateBuf {
    #[inline]
    fn settings(&self) -> Option<&DeviceSettings> {
        UpdateBuf::settings(self)
    }

    #[inline]
    fn timer_tasks(&self) -> Option<&[TimerTask]> {
        UpdateBuf::timer_tasks(self)
    }

    #[inline]
    fn status(&self) -> Option<DeviceStatus> {
        self.status
    }

    #[inline]
    fn device_sn(&self) -> Option<&str> {
        UpdateBuf::device_sn(self)
    }

    #[inline]
    fn frames(&self) -> usize {
        UpdateBuf::frames(self)
    }

    #[inline]
    fn skipped(&self) -> &[FrameSkip] {
        &self.skipped
    }

    #[inline]
    fn errors(&self) -> &[DecodeError] {
        &self.errors
    }

    #[inline]
    fn len(&self) -> usize {
        self.updates().len()
    }

    #[inline]
    fn update(&self, i: usize) -> Option<UpdateRef<'_>> {
        self.updates().get(i).map(|u| UpdateRef {
            device_sn: self.device_sn_of(u),
            state: u.state(),
            value: self.value(u),
            out_of_range: u.out_of_range(),
        })
    }
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(value: &'a Value) -> ValueRef<'a> {
        match value {
            Value::Number(n) => ValueRef::Number(*n),
            Value::Text(t) => ValueRef::Text(t),
            Value::Array(items) => ValueRef::Array(items),
        }
    }
}

impl ValueRef<'_> {
    /// An owned copy (short texts stay inline, without allocating).
    #[inline]
    pub fn to_value(&self) -> Value {
        match *self {
            ValueRef::Number(n) => Value::Number(n),
            ValueRef::Text(t) => Value::Text(SmolStr::new(t)),
            ValueRef::Array(items) => Value::Array(items.to_vec()),
        }
    }

    /// Makes `value` hold this value, reusing its memory: nothing is allocated when the
    /// value is unchanged (the usual case for a device's next report) or an array of the
    /// same kind changes in place.
    #[inline]
    pub fn assign_to(&self, value: &mut Value) {
        match (*self, &mut *value) {
            (ValueRef::Array(new), Value::Array(old)) if old.as_slice() != new => {
                old.clear();
                old.extend_from_slice(new);
            }
            (ValueRef::Array(_), Value::Array(_)) => {}
            (new, old) if !new.eq_value(old) => *old = new.to_value(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_views_give_the_same_states() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
        let text = std::fs::read_to_string(format!("{dir}/multi_frame_payload.json"))
            .expect("vector readable");
        let v: serde_json::Value = serde_json::from_str(&text).expect("vector json");
        let bytes = hex::decode(v["payload_hex"].as_str().expect("hex")).expect("hex");
        let owned = crate::decode_payload(&bytes, "SN").expect("decodes");
        let mut buf = UpdateBuf::new();
        buf.decode(&bytes, "SN").expect("decodes");
        assert_eq!(PayloadView::len(&owned), 141);
        assert_eq!(PayloadView::len(&buf), PayloadView::len(&owned));
        for i in 0..PayloadView::len(&owned) {
            assert_eq!(buf.update(i), owned.update(i));
        }
        assert_eq!(buf.update(141), None);
        assert_eq!(PayloadView::device_sn(&buf), owned.device_sn.as_deref());
        assert_eq!(PayloadView::status(&buf), owned.status);
    }

    #[test]
    fn assign_to_keeps_unchanged_values_and_reuses_arrays() {
        let mut v = Value::Array(vec![1.0, 2.0]);
        let before = match &v {
            Value::Array(a) => a.as_ptr(),
            _ => std::ptr::null(),
        };
        ValueRef::Array(&[3.0, 4.0]).assign_to(&mut v);
        assert_eq!(v, Value::Array(vec![3.0, 4.0]));
        assert!(matches!(&v, Value::Array(a) if a.as_ptr() == before));
        ValueRef::Text("PB_BMS_STATE_DISCHARGEABLE").assign_to(&mut v);
        assert_eq!(v, Value::Text("PB_BMS_STATE_DISCHARGEABLE".into()));
        ValueRef::Number(2.5).assign_to(&mut v);
        assert_eq!(v, Value::Number(2.5));
        ValueRef::Number(f64::NAN).assign_to(&mut v);
        assert!(matches!(v, Value::Number(n) if n.is_nan()));
    }
}
