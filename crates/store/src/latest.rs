//! The in-memory latest values: per device, per state, with per-channel update times,
//! stale flags and the online/offline status the device last reported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::{Channel, StateDef};
use protocol::{DeviceStatus, Value, ValueRef};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::config::cadence;
use crate::slots::{ChannelSlots, channel_slot};
use crate::unix_ms;

/// The latest value of one state of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestState {
    pub device_sn: Arc<str>,
    pub state: &'static StateDef,
    pub value: Value,
    pub out_of_range: bool,
    pub updated_at: SystemTime,
}

impl Serialize for LatestState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("LatestState", 8)?;
        st.serialize_field("device", &*self.device_sn)?;
        st.serialize_field("key", self.state.key)?;
        st.serialize_field("channel", self.state.channel.as_str())?;
        st.serialize_field("unit", self.state.unit)?;
        st.serialize_field("value", &self.value)?;
        st.serialize_field("out_of_range", &self.out_of_range)?;
        st.serialize_field("updated_ms", &unix_ms(self.updated_at))?;
        st.end()
    }
}

/// One channel of one device: when it last reported and whether that is too long ago.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSnapshot {
    pub channel: &'static str,
    /// Battery pack position for `bpInfoN` channels.
    pub pack: Option<usize>,
    pub last_update_ms: Option<i64>,
    /// Seconds since the last update, at snapshot time.
    pub age_secs: Option<f64>,
    /// Not updated for `stale_after_cadences` × the channel's cadence.
    pub stale: bool,
}

/// What the store knows about one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSnapshot {
    pub device_sn: String,
    /// `Some(true)` online, `Some(false)` offline, `None` never said.
    pub online: Option<bool>,
    pub status_ms: Option<i64>,
    /// Latest state update of any channel.
    pub last_update_ms: Option<i64>,
    /// Channels that have reported at least once.
    pub channels: Vec<ChannelSnapshot>,
    /// Battery pack positions seen (0-based).
    pub packs: Vec<usize>,
    /// How many of the 216 catalog states have a value.
    pub state_count: usize,
}

/// One device: its latest values (see [`ChannelSlots`] for the memory layout), when each
/// channel last reported, and its online status.
#[derive(Debug)]
pub(crate) struct DeviceEntry {
    sn: Arc<str>,
    values: ChannelSlots<LatestState>,
    channel_updates: [Option<SystemTime>; 6],
    status: Option<(DeviceStatus, SystemTime)>,
}

/// All devices' latest values (kept behind the store's lock).
#[derive(Debug, Default)]
pub(crate) struct Latest {
    devices: BTreeMap<Arc<str>, DeviceEntry>,
}

impl Latest {
    /// The entry of device `sn`, created on its first report. Called once per device
    /// and payload, not per state; a known device's serial is not copied.
    pub(crate) fn device(&mut self, sn: &str) -> Option<&mut DeviceEntry> {
        if !self.devices.contains_key(sn) {
            let sn: Arc<str> = sn.into();
            let entry = DeviceEntry {
                sn: sn.clone(),
                values: ChannelSlots::default(),
                channel_updates: [None; 6],
                status: None,
            };
            self.devices.insert(sn, entry);
        }
        self.devices.get_mut(sn)
    }

    /// Records one value (restoring from history).
    pub(crate) fn set(&mut self, state: LatestState) {
        if let Some(device) = self.device(&state.device_sn) {
            let value = ValueRef::from(&state.value);
            device.update(state.state, value, state.out_of_range, state.updated_at);
        }
    }

    pub(crate) fn latest(&self, sn: &str) -> Vec<LatestState> {
        self.devices
            .get(sn)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn get(&self, sn: &str, state: &StateDef) -> Option<LatestState> {
        self.devices.get(sn)?.values.get(state).cloned()
    }

    pub(crate) fn snapshots(&self, now: SystemTime, stale_after: u32) -> Vec<DeviceSnapshot> {
        self.devices
            .values()
            .map(|d| d.snapshot(now, stale_after))
            .collect()
    }
}

impl DeviceEntry {
    /// The device's serial, shared by everything that names the device.
    pub(crate) fn sn(&self) -> &Arc<str> {
        &self.sn
    }

    /// Records an online/offline report; true when the status changed.
    pub(crate) fn set_status(&mut self, status: DeviceStatus, at: SystemTime) -> bool {
        let changed = self.status.map(|(s, _)| s) != Some(status);
        self.status = Some((status, at));
        changed
    }

    /// Records one value: the state's slot takes it (in place: an unchanged value is not
    /// copied again) and its channel's update time moves forward.
    pub(crate) fn update(
        &mut self,
        state: &'static StateDef,
        value: ValueRef<'_>,
        out_of_range: bool,
        at: SystemTime,
    ) {
        let channel = &mut self.channel_updates[channel_slot(state.channel)];
        if channel.is_none_or(|t| t < at) {
            *channel = Some(at);
        }
        let Some(slot) = self.values.slot_mut(state) else {
            return;
        };
        match slot {
            Some(latest) => {
                value.assign_to(&mut latest.value);
                latest.out_of_range = out_of_range;
                latest.updated_at = at;
            }
            None => {
                *slot = Some(LatestState {
                    device_sn: self.sn.clone(),
                    state,
                    value: value.to_value(),
                    out_of_range,
                    updated_at: at,
                })
            }
        }
    }

    /// Every stored value, in catalog order.
    fn values(&self) -> impl Iterator<Item = &LatestState> {
        self.values.values()
    }

    fn snapshot(&self, now: SystemTime, stale_after: u32) -> DeviceSnapshot {
        let mut channels = Vec::new();
        let mut packs = Vec::new();
        for (channel, update) in Channel::ALL.iter().zip(self.channel_updates) {
            let Some(at) = update else { continue };
            let age = now.duration_since(at).unwrap_or(Duration::ZERO);
            if let Some(p) = channel.pack_index() {
                packs.push(p);
            }
            channels.push(ChannelSnapshot {
                channel: channel.as_str(),
                pack: channel.pack_index(),
                last_update_ms: Some(unix_ms(at)),
                age_secs: Some(age.as_secs_f64()),
                stale: age > cadence(*channel).saturating_mul(stale_after),
            });
        }
        DeviceSnapshot {
            device_sn: self.sn.to_string(),
            online: self.status.map(|(s, _)| s == DeviceStatus::Online),
            status_ms: self.status.map(|(_, at)| unix_ms(at)),
            last_update_ms: self
                .channel_updates
                .iter()
                .flatten()
                .max()
                .map(|t| unix_ms(*t)),
            channels,
            packs,
            state_count: self.values().count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(key: &str, v: f64) -> LatestState {
        LatestState {
            device_sn: "SN1".into(),
            state: catalog::by_key(key).expect("catalog key"),
            value: Value::Number(v),
            out_of_range: false,
            updated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        }
    }

    #[test]
    fn channels_are_allocated_on_first_report_and_read_back_by_key() {
        let mut latest = Latest::default();
        latest.set(value("EnergyStreamItem.pvPwr", 1200.0));
        latest.set(value("bpInfo2.bpSoc", 55.0));
        latest.set(value("EnergyStreamItem.pvPwr", 1300.0));
        let entry = latest.devices.get("SN1").expect("device");
        assert_eq!(entry.values.allocated(), [0, 0, 10, 0, 0, 25]);
        let pv = catalog::by_key("EnergyStreamItem.pvPwr").expect("key");
        assert_eq!(
            latest.get("SN1", pv).map(|s| s.value),
            Some(Value::Number(1300.0))
        );
        let soc = catalog::by_key("bpInfo2.bpSoc").expect("key");
        assert_eq!(
            latest.get("SN1", soc).map(|s| s.value),
            Some(Value::Number(55.0))
        );
        let other = catalog::by_key("bpInfo0.bpSoc").expect("key");
        assert_eq!(latest.get("SN1", other), None);
        let keys: Vec<&str> = latest.latest("SN1").iter().map(|s| s.state.key).collect();
        assert_eq!(keys, ["EnergyStreamItem.pvPwr", "bpInfo2.bpSoc"]);
        let snap = latest.snapshots(SystemTime::UNIX_EPOCH + Duration::from_secs(11), 3);
        assert_eq!(snap[0].state_count, 2);
    }
}
