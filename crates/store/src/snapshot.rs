//! What the store shows of its devices: [`LatestState`] (one state's latest value),
//! [`ChannelSnapshot`] and [`DeviceSnapshot`] (a device's channels, stages, settings and
//! grid presence), as the API and the sinks read them.

use std::sync::Arc;
use std::time::SystemTime;

use catalog::StateDef;
use protocol::{DeviceSettings, Value};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use model::GridState;
use model::Stage;
use model::unix_ms;

/// The latest value of one state of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestState {
    pub device_sn: Arc<str>,
    pub state: &'static StateDef,
    pub value: Value,
    pub out_of_range: bool,
    pub updated_at: SystemTime,
    /// The path it came on (cloud push, cloud poll, Modbus; `history` when revived).
    pub source: model::Provenance,
}

impl Serialize for LatestState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("LatestState", 9)?;
        st.serialize_field("device", &*self.device_sn)?;
        st.serialize_field("key", self.state.key)?;
        st.serialize_field("channel", self.state.channel.as_str())?;
        st.serialize_field("unit", self.state.unit)?;
        st.serialize_field("value", &self.value)?;
        st.serialize_field("out_of_range", &self.out_of_range)?;
        st.serialize_field("updated_ms", &unix_ms(self.updated_at))?;
        st.serialize_field("source", self.source.as_str())?;
        st.end()
    }
}

/// One channel of one device: when it last reported and its stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelSnapshot {
    pub channel: &'static str,
    /// Battery pack position for `bpInfoN` channels.
    pub pack: Option<usize>,
    /// Last update of any origin (pushed report or quota poll).
    pub last_update_ms: Option<i64>,
    /// Seconds since the last update, at snapshot time.
    pub age_secs: Option<f64>,
    /// Last pushed report (what the stage follows; `None`: only ever polled).
    pub last_push_ms: Option<i64>,
    /// Seconds since the last pushed report, at snapshot time.
    pub push_age_secs: Option<f64>,
    /// fresh / stale / unavailable ([`crate::stage`]).
    pub stage: Stage,
    /// `stage` is not fresh (kept for older clients).
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
    /// The freshest channel's stage ([`crate::stage`]); `None` before any channel reported.
    pub stage: Option<Stage>,
    /// Channels that have reported at least once.
    pub channels: Vec<ChannelSnapshot>,
    /// Battery pack positions seen (0-based).
    pub packs: Vec<usize>,
    /// How many of the 216 catalog states have a value.
    pub state_count: usize,
    /// The settings the device last reported (96/8, protocol §10; not catalog states);
    /// `None` before its first settings report.
    pub settings: Option<DeviceSettings>,
    /// When the last settings report arrived.
    pub settings_ms: Option<i64>,
    /// Grid presence derived from the meter's phase voltages (protocol §13; not a
    /// catalog state), with how it was derived.
    pub grid: GridState,
}
