//! The compact decoder's plan for one report channel: every tag (field number and wire
//! type) the message accepts, mapped once to what the value rules do with it.
//!
//! Looking up the whole tag rather than the field number folds the wire-type check into
//! the lookup: a tag that is not in the plan is either unknown (skipped) or a known field
//! with the wrong wire type (an error), and both go to the rare-case path.

use std::sync::LazyLock;

use catalog::{Channel, Kind, StateDef};

use crate::pb::{ProtoField, ProtoType};
use crate::schema::{ChannelTable, tables};
use crate::wire::{FieldIndex, WIRE_LEN, expected_wire};

/// How a varint field's bits become an integer (protobuf's scalar types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntType {
    Uint32,
    Int32,
    Sint32,
    Bool,
}

impl IntType {
    #[inline]
    pub(crate) fn convert(self, v: u64) -> i64 {
        match self {
            IntType::Uint32 => i64::from(v as u32),
            IntType::Int32 => i64::from(v as i32), // int32 on the wire: truncation is protobuf's rule
            IntType::Sint32 => {
                let n = v as u32;
                i64::from(((n >> 1) as i32) ^ -((n & 1) as i32))
            }
            IntType::Bool => i64::from(v != 0),
        }
    }
}

/// What a scalar becomes (rules 2–5), by catalog kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Rule 3: scaled number with a range flag.
    Number,
    /// Rule 4: enum text (varint codes ≥ 0 only).
    Diagnostic,
    /// Rules 5 and 8: decimal text.
    Text,
    /// Rule 6: a one-element array.
    Array,
}

/// What a repeated field becomes once all its occurrences are gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gathered {
    /// Rule 6: the elements as numbers.
    Array,
    /// Rule 4: the codes joined, looked up like one code.
    Codes,
    /// A diagnostic state on a float field: no codes, so the rule-4 text of none.
    NoCodes,
}

/// What to do with one field occurrence.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// A fixed32 float scalar.
    Float(Shape, &'static StateDef),
    /// A varint scalar.
    Int(IntType, Shape, &'static StateDef),
    /// A string scalar (every kind keeps the text).
    Text(&'static StateDef),
    /// A bytes or message scalar filling a state: the empty text.
    EmptyText(&'static StateDef),
    /// A known field that is not a catalog state: checked, then dropped.
    Skip,
    /// One occurrence of a repeated field; `packed` for a length-delimited run.
    Repeated {
        fixed32: bool,
        packed: bool,
        out: Option<(Gathered, &'static StateDef)>,
    },
}

/// One accepted tag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub action: Action,
    /// The field's bit in a message's set of fields seen so far (0 above 127).
    pub seen_bit: u128,
    pub number: u32,
    /// The tag's wire type (one the field accepts).
    pub wire: u8,
    /// A string field: its bytes must be UTF-8 (as prost requires).
    pub utf8: bool,
}

/// The plan of one channel.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Tag → 1 + index in `ops`; 0 for a tag the rare-case path handles.
    by_tag: Box<[u16]>,
    ops: Box<[Op]>,
    /// The field table, for the rare-case path (wrong wire types).
    pub fields: &'static FieldIndex,
}

impl Plan {
    fn new(table: &'static ChannelTable, schema_fields: &'static [ProtoField]) -> Plan {
        let max = schema_fields.iter().map(|f| f.number).max().unwrap_or(0) as usize;
        let mut by_tag = vec![0u16; (max + 1) << 3];
        let mut ops = Vec::new();
        for field in schema_fields {
            let state = table.state(field);
            let wire = expected_wire(field);
            let mut add = |wire: u8, action: Action| {
                ops.push(Op {
                    action,
                    seen_bit: 1u128.checked_shl(field.number).unwrap_or(0),
                    number: field.number,
                    wire,
                    utf8: field.ty == ProtoType::String,
                });
                by_tag[(field.number as usize) << 3 | usize::from(wire)] = ops.len() as u16;
            };
            if field.repeated {
                let fixed32 = field.ty == ProtoType::Float;
                let out = state.map(|s| (gathered(s, field), s));
                if wire != WIRE_LEN {
                    let packed = false;
                    add(
                        wire,
                        Action::Repeated {
                            fixed32,
                            packed,
                            out,
                        },
                    );
                }
                let packed = true;
                add(
                    WIRE_LEN,
                    Action::Repeated {
                        fixed32,
                        packed,
                        out,
                    },
                );
            } else {
                add(wire, scalar(field, state));
            }
        }
        Plan {
            by_tag: by_tag.into_boxed_slice(),
            ops: ops.into_boxed_slice(),
            fields: &table.fields,
        }
    }

    /// The op for a tag, if the tag is a known field with an accepted wire type.
    #[inline]
    pub(crate) fn op(&self, tag: u64) -> Option<&Op> {
        let slot = *self.by_tag.get(usize::try_from(tag).ok()?)?;
        self.ops.get(usize::from(slot).checked_sub(1)?)
    }
}

fn gathered(state: &StateDef, field: &ProtoField) -> Gathered {
    match (state.kind, field.ty) {
        (Kind::Diagnostic, ProtoType::Float) => Gathered::NoCodes,
        (Kind::Diagnostic, _) => Gathered::Codes,
        _ => Gathered::Array,
    }
}

/// The scalar rules of protocol §6 for one field, decided once.
fn scalar(field: &ProtoField, state: Option<&'static StateDef>) -> Action {
    let Some(state) = state else {
        return Action::Skip;
    };
    let int = |ty| {
        let shape = match state.kind {
            Kind::Number => Shape::Number,
            Kind::Diagnostic => Shape::Diagnostic,
            Kind::Text => Shape::Text,
            Kind::Array => Shape::Array,
        };
        Action::Int(ty, shape, state)
    };
    match field.ty {
        ProtoType::Float => {
            let shape = match state.kind {
                Kind::Number => Shape::Number,
                Kind::Array => Shape::Array,
                // A diagnostic needs an integer code: a float shows as its text.
                Kind::Diagnostic | Kind::Text => Shape::Text,
            };
            Action::Float(shape, state)
        }
        ProtoType::Uint32 => int(IntType::Uint32),
        ProtoType::Int32 => int(IntType::Int32),
        ProtoType::Sint32 => int(IntType::Sint32),
        ProtoType::Bool => int(IntType::Bool),
        ProtoType::String => Action::Text(state),
        ProtoType::Bytes | ProtoType::Message => Action::EmptyText(state),
    }
}

static PLANS: LazyLock<Vec<Plan>> = LazyLock::new(|| {
    let t = tables();
    Channel::ALL
        .iter()
        .map(|&c| {
            let table = t.channel(c);
            let fields = crate::pb::message_schema(table.message).map_or(&[][..], |m| m.fields);
            Plan::new(table, fields)
        })
        .collect()
});

/// The plan for `channel` (built on first use).
pub(crate) fn plan(channel: Channel) -> &'static Plan {
    &PLANS[Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default()]
}

/// The wire types the plan accepts, for the tests below.
#[cfg(test)]
fn accepted(field: &ProtoField) -> Vec<u8> {
    let wire = expected_wire(field);
    match (field.repeated, wire) {
        (true, WIRE_LEN) | (false, _) => vec![wire],
        (true, _) => vec![wire, WIRE_LEN],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{WIRE_FIXED32, WIRE_VARINT};

    #[test]
    fn every_field_of_every_channel_has_its_accepted_tags_and_no_other() {
        for channel in Channel::ALL {
            let p = plan(channel);
            let table = tables().channel(channel);
            let schema = crate::pb::message_schema(table.message).expect("schema");
            for field in schema.fields {
                for wire in [WIRE_VARINT, 1, WIRE_LEN, 3, 4, WIRE_FIXED32] {
                    let tag = u64::from(field.number) << 3 | u64::from(wire);
                    let found = p.op(tag).map(|op| op.number);
                    let want = accepted(field).contains(&wire).then_some(field.number);
                    assert_eq!(
                        found, want,
                        "{} field {} wire {wire}",
                        table.message, field.name
                    );
                }
            }
        }
    }

    #[test]
    fn sint32_and_int32_follow_protobuf() {
        assert_eq!(IntType::Sint32.convert(1), -1);
        assert_eq!(IntType::Sint32.convert(4), 2);
        assert_eq!(IntType::Int32.convert(u64::MAX), -1);
        assert_eq!(IntType::Uint32.convert(u64::MAX), i64::from(u32::MAX));
        assert_eq!(IntType::Bool.convert(7), 1);
    }
}
