//! [`RawPayload`]: one MQTT message as received, and where its values come from. Which
//! decoder a topic needs is the protocol's to say ([`protocol::route`]); [`decode_raw`]
//! is re-exported from there for the tools that read record files.

use std::time::SystemTime;

use bytes::Bytes;
pub use protocol::route::{PayloadError, decode_raw};

/// One message from a source, untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPayload {
    pub topic: String,
    pub payload: Bytes,
    pub received_at: SystemTime,
    /// How it came: pushed by the device or fetched by a poll (protocol §8: only a push
    /// proves the device is alive).
    pub origin: Origin,
}

/// Where a payload's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An MQTT message: a device report or get-all answer (app route), an open-API
    /// `quota`/`status` message, a fleet broker's message (and a recorded push).
    #[default]
    Push,
    /// An HTTP quota poll (open API `quota/all`): the cloud's last known values, even for
    /// a device that has been offline for days; updates values, never freshness.
    Poll,
}

impl Origin {
    /// True for [`Origin::Push`] (record files write no `origin` for those).
    pub fn is_push(&self) -> bool {
        *self == Origin::Push
    }
}
