//! The six catalog channels: one per report message, and one per battery pack position.

use std::fmt;

/// A catalog channel. `as_str` is the spec's spelling, used in keys like `bpInfo1.bpSoc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    CloudBmsInfoReport,
    EmsHeartbeatReport,
    EnergyStreamItem,
    BpInfo0,
    BpInfo1,
    BpInfo2,
}

impl Channel {
    /// All channels in spec order.
    pub const ALL: [Channel; 6] = [
        Channel::CloudBmsInfoReport,
        Channel::EmsHeartbeatReport,
        Channel::EnergyStreamItem,
        Channel::BpInfo0,
        Channel::BpInfo1,
        Channel::BpInfo2,
    ];

    /// The channel's name as the spec and the JSON keys spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::CloudBmsInfoReport => "CloudBmsInfoReport",
            Channel::EmsHeartbeatReport => "EMSHeartbeatReport",
            Channel::EnergyStreamItem => "EnergyStreamItem",
            Channel::BpInfo0 => "bpInfo0",
            Channel::BpInfo1 => "bpInfo1",
            Channel::BpInfo2 => "bpInfo2",
        }
    }

    /// Parses the spec spelling (`"EMSHeartbeatReport"`, `"bpInfo2"`).
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The battery-pack channel for position `index` in a BPChangeReport (0..=2).
    pub const fn battery_pack(index: usize) -> Option<Channel> {
        match index {
            0 => Some(Channel::BpInfo0),
            1 => Some(Channel::BpInfo1),
            2 => Some(Channel::BpInfo2),
            _ => None,
        }
    }

    /// Pack position for `bpInfoN` channels, `None` for the report channels.
    pub const fn pack_index(self) -> Option<usize> {
        match self {
            Channel::BpInfo0 => Some(0),
            Channel::BpInfo1 => Some(1),
            Channel::BpInfo2 => Some(2),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
