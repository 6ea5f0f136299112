//! Field number → catalog state, per channel: the join of the proto and the catalog.
//!
//! Built once (lazily) from the generated field tables and the generated catalog, so the
//! decoder is table-driven: no hand-written line per state.

use std::sync::LazyLock;

use catalog::{Channel, StateDef};

use crate::pb::{self, ProtoField};
use crate::wire::FieldIndex;

/// The decode tables for one catalog channel.
#[derive(Debug)]
pub struct ChannelTable {
    pub channel: Channel,
    /// The proto message whose fields fill this channel.
    pub message: &'static str,
    /// Field number → proto field, wire type and catalog state.
    pub fields: FieldIndex,
}

impl ChannelTable {
    fn new(channel: Channel, message: &'static str) -> Self {
        let fields =
            FieldIndex::with_states(schema(message), |f| catalog::find(channel, f.state_name));
        ChannelTable {
            channel,
            message,
            fields,
        }
    }

    /// The catalog state a field fills, if any (some fields are not catalog states).
    pub fn state(&self, field: &ProtoField) -> Option<&'static StateDef> {
        self.fields.get(field.number).and_then(|entry| entry.state)
    }

    /// The proto field that carries `state` (used by the encoder).
    pub fn field_for(&self, state: &StateDef) -> Option<&'static ProtoField> {
        schema(self.message)
            .fields
            .iter()
            .find(|f| self.state(f).is_some_and(|s| std::ptr::eq(s, state)))
    }
}

/// All tables the decoder needs.
#[derive(Debug)]
pub struct Tables {
    pub frames: FieldIndex,
    pub header: FieldIndex,
    pub bp_change: FieldIndex,
    /// 96/8 `EmsChangeReport`: the settings read-back (protocol §10), not catalog states.
    pub settings: FieldIndex,
    channels: Vec<ChannelTable>,
}

impl Tables {
    /// The table for `channel`.
    pub fn channel(&self, channel: Channel) -> &ChannelTable {
        // `channels` is built from `Channel::ALL`, so every channel is present.
        &self.channels[Channel::ALL
            .iter()
            .position(|c| *c == channel)
            .unwrap_or_default()]
    }
}

fn schema(message: &str) -> &'static pb::MessageSchema {
    pb::message_schema(message).unwrap_or_else(|| panic!("proto has no message {message}"))
}

/// The proto message that fills each channel.
pub fn message_for(channel: Channel) -> &'static str {
    match channel {
        Channel::CloudBmsInfoReport => "CloudBmsInfoReport",
        Channel::EmsHeartbeatReport => "EMSHeartbeatReport",
        Channel::EnergyStreamItem => "EnergyStreamItem",
        Channel::BpInfo0 | Channel::BpInfo1 | Channel::BpInfo2 => "BPReport",
    }
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| Tables {
    frames: FieldIndex::new(schema("Frames")),
    header: FieldIndex::new(schema("Header")),
    bp_change: FieldIndex::new(schema("BPChangeReport")),
    settings: FieldIndex::new(schema("EmsChangeReport")),
    channels: Channel::ALL
        .iter()
        .map(|&c| ChannelTable::new(c, message_for(c)))
        .collect(),
});

/// The decode tables (built on first use).
pub fn tables() -> &'static Tables {
    &TABLES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_state_has_a_proto_field() {
        let t = tables();
        for state in &catalog::STATES {
            let table = t.channel(state.channel);
            assert!(
                table.field_for(state).is_some(),
                "{} has no field in {}",
                state.key,
                table.message
            );
        }
    }

    #[test]
    fn only_the_documented_fields_are_outside_the_catalog() {
        let t = tables();
        let mut unmapped = Vec::new();
        for channel in [
            Channel::EmsHeartbeatReport,
            Channel::EnergyStreamItem,
            Channel::CloudBmsInfoReport,
            Channel::BpInfo0,
        ] {
            let table = t.channel(channel);
            for f in schema(table.message).fields {
                if table.state(f).is_none() {
                    unmapped.push(format!("{}.{}", table.message, f.name));
                }
            }
        }
        assert_eq!(
            unmapped,
            [
                "EMSHeartbeatReport.sys_rate_ctrl_time",
                "EMSHeartbeatReport.err_code",
                "EMSHeartbeatReport.app_config_finish"
            ]
        );
    }
}
