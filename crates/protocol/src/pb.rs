//! Generated code: prost message types and the per-message field tables.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/poweroceanfit.rs"));

/// Scalar type of a proto field, as far as this schema uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoType {
    Float,
    Uint32,
    Int32,
    Sint32,
    /// Only in the messages a client publishes (protocol §8); never a catalog state.
    Bool,
    String,
    Bytes,
    Message,
}

/// One field of a proto message.
#[derive(Debug)]
pub struct ProtoField {
    pub number: u32,
    /// snake_case name as in the .proto.
    pub name: &'static str,
    /// lowerCamelCase name: the catalog state name (protocol §5).
    pub state_name: &'static str,
    pub ty: ProtoType,
    pub repeated: bool,
}

/// The fields of one proto message.
#[derive(Debug)]
pub struct MessageSchema {
    pub name: &'static str,
    pub fields: &'static [ProtoField],
}

include!(concat!(env!("OUT_DIR"), "/schema_generated.rs"));

/// The schema of message `name` (e.g. `"EMSHeartbeatReport"`).
pub fn message_schema(name: &str) -> Option<&'static MessageSchema> {
    MESSAGES.iter().find(|m| m.name == name)
}
