//! The dispatch table: `(cmd_func, cmd_id)` → report message and catalog channel (protocol §4).

use catalog::Channel;

/// What a frame's `(cmd_func, cmd_id)` pair carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// A report mapped to catalog states.
    Mapped(MappedReport),
    /// 96/8 `EmsChangeReport`: the device's settings (protocol §10), decoded into
    /// [`crate::control::DeviceSettings`], not catalog states.
    Settings,
    /// 96/10 `EmsAllTimerTaskReport` and the 96/127 answer: the device's timer tasks
    /// (protocol §12), decoded into [`crate::timer::TimerTask`]s, not catalog states.
    TimerTasks,
    /// A known report with no catalog states (counted, not an error).
    KnownUnmapped(&'static str),
    /// A pair the protocol does not know (counted, not an error).
    Unknown,
}

/// The four report messages that carry catalog states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappedReport {
    EmsHeartbeat,
    EnergyStream,
    BatteryPacks,
    CloudBmsInfo,
}

impl MappedReport {
    pub const ALL: [MappedReport; 4] = [
        MappedReport::EmsHeartbeat,
        MappedReport::EnergyStream,
        MappedReport::BatteryPacks,
        MappedReport::CloudBmsInfo,
    ];

    /// The proto message name.
    pub const fn message(self) -> &'static str {
        match self {
            MappedReport::EmsHeartbeat => "EMSHeartbeatReport",
            MappedReport::EnergyStream => "EnergyStreamItem",
            MappedReport::BatteryPacks => "BPChangeReport",
            MappedReport::CloudBmsInfo => "CloudBmsInfoReport",
        }
    }

    /// `(cmd_func, cmd_id)` of this report.
    pub const fn cmd(self) -> (i32, i32) {
        match self {
            MappedReport::EmsHeartbeat => (96, 1),
            MappedReport::EnergyStream => (96, 33),
            MappedReport::BatteryPacks => (96, 108),
            MappedReport::CloudBmsInfo => (96, 111),
        }
    }

    /// The catalog channel for the report (packs: the channel of pack 0).
    pub const fn channel(self) -> Channel {
        match self {
            MappedReport::EmsHeartbeat => Channel::EmsHeartbeatReport,
            MappedReport::EnergyStream => Channel::EnergyStreamItem,
            MappedReport::BatteryPacks => Channel::BpInfo0,
            MappedReport::CloudBmsInfo => Channel::CloudBmsInfoReport,
        }
    }

    /// The report that fills `channel`.
    pub const fn for_channel(channel: Channel) -> MappedReport {
        match channel {
            Channel::EmsHeartbeatReport => MappedReport::EmsHeartbeat,
            Channel::EnergyStreamItem => MappedReport::EnergyStream,
            Channel::CloudBmsInfoReport => MappedReport::CloudBmsInfo,
            Channel::BpInfo0 | Channel::BpInfo1 | Channel::BpInfo2 => MappedReport::BatteryPacks,
        }
    }
}

/// Known pairs that carry no catalog states.
const KNOWN_UNMAPPED: [((i32, i32), &str); 11] = [
    ((96, 3), "ErrorChangeReport"),
    ((96, 34), "EnergyStreamDetail"),
    ((96, 97), "EnergyStreamSwitch"),
    ((96, 106), "ConfigSet"),
    ((96, 107), "ConfigGet"),
    ((96, 109), "DcChangeReport"),
    ((96, 110), "DcStaReport2"),
    ((96, 112), "Report96_112"),
    ((96, 136), "Report96_136"),
    ((53, 113), "ModuleClusterInfo"),
    ((254, 32), "EnergyTotalReport"),
];

/// Looks up what a `(cmd_func, cmd_id)` pair carries.
pub fn dispatch(cmd_func: i32, cmd_id: i32) -> Report {
    if (cmd_func, cmd_id)
        == (
            crate::control::CMD_FUNC,
            crate::control::SETTINGS_REPORT_CMD_ID,
        )
    {
        return Report::Settings;
    }
    if cmd_func == crate::control::CMD_FUNC
        && matches!(
            cmd_id,
            crate::timer::PUSH_CMD_ID | crate::timer::GET_ALL_CMD_ID
        )
    {
        return Report::TimerTasks;
    }
    if let Some(r) = MappedReport::ALL
        .into_iter()
        .find(|r| r.cmd() == (cmd_func, cmd_id))
    {
        return Report::Mapped(r);
    }
    KNOWN_UNMAPPED
        .iter()
        .find(|(pair, _)| *pair == (cmd_func, cmd_id))
        .map_or(Report::Unknown, |(_, name)| Report::KnownUnmapped(name))
}
