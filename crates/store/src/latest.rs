//! The in-memory latest values: per device, per state, with per-channel update times,
//! stale flags and the online/offline status the device last reported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::{Channel, StateDef};
use protocol::{DeviceStatus, Value};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::config::cadence;
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

#[derive(Debug)]
struct DeviceEntry {
    sn: Arc<str>,
    values: Vec<Option<LatestState>>,
    channel_updates: [Option<SystemTime>; 6],
    status: Option<(DeviceStatus, SystemTime)>,
}

/// All devices' latest values (kept behind the store's lock).
#[derive(Debug, Default)]
pub(crate) struct Latest {
    devices: BTreeMap<Arc<str>, DeviceEntry>,
}

fn channel_slot(channel: Channel) -> usize {
    Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default()
}

impl Latest {
    fn entry(&mut self, sn: &Arc<str>) -> &mut DeviceEntry {
        self.devices
            .entry(sn.clone())
            .or_insert_with(|| DeviceEntry {
                sn: sn.clone(),
                values: vec![None; catalog::STATE_COUNT],
                channel_updates: [None; 6],
                status: None,
            })
    }

    /// Records one value; returns the stored copy.
    pub(crate) fn set(&mut self, state: LatestState) {
        let entry = self.entry(&state.device_sn);
        let slot = &mut entry.channel_updates[channel_slot(state.state.channel)];
        if slot.is_none_or(|t| t < state.updated_at) {
            *slot = Some(state.updated_at);
        }
        if let Some(v) = entry.values.get_mut(state.state.index) {
            *v = Some(state);
        }
    }

    pub(crate) fn set_status(&mut self, sn: &Arc<str>, status: DeviceStatus, at: SystemTime) {
        self.entry(sn).status = Some((status, at));
    }

    pub(crate) fn status(&self, sn: &str) -> Option<DeviceStatus> {
        self.devices.get(sn).and_then(|d| d.status).map(|(s, _)| s)
    }

    pub(crate) fn latest(&self, sn: &str) -> Vec<LatestState> {
        self.devices
            .get(sn)
            .map(|d| d.values.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn get(&self, sn: &str, state: &StateDef) -> Option<LatestState> {
        self.devices
            .get(sn)
            .and_then(|d| d.values.get(state.index).cloned().flatten())
    }

    pub(crate) fn snapshots(&self, now: SystemTime, stale_after: u32) -> Vec<DeviceSnapshot> {
        self.devices
            .values()
            .map(|d| d.snapshot(now, stale_after))
            .collect()
    }
}

impl DeviceEntry {
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
            state_count: self.values.iter().flatten().count(),
        }
    }
}
