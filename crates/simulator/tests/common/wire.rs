//! The raw protobuf of a device's payload, read with prost's low-level functions rather
//! than the protocol crate's decoder: each frame's header with its `pdata` un-XOR-ed
//! (protocol §3), and the fields a message carries on the wire — so a test sees what is
//! absent or explicitly 0, not what a decoder makes of it.

use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint};
use protocol::pb::Frames;

/// One frame of a payload.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub cmd_func: i32,
    pub cmd_id: i32,
    pub device_sn: Option<String>,
    /// The report bytes, XOR undone.
    pub pdata: Vec<u8>,
}

/// The frames of `payload` (panics if it is not a `Frames` message).
pub fn raw_frames(payload: &[u8]) -> Vec<RawFrame> {
    let frames = Frames::decode(payload).expect("a Frames message");
    frames
        .header
        .into_iter()
        .map(|h| {
            let mut pdata = h.pdata.unwrap_or_default();
            if h.enc_type == Some(1) && h.src != Some(32) {
                let key = h.seq.unwrap_or_default() as u8;
                pdata.iter_mut().for_each(|b| *b ^= key);
            }
            RawFrame {
                cmd_func: h.cmd_func.unwrap_or_default(),
                cmd_id: h.cmd_id.unwrap_or_default(),
                device_sn: h.device_sn,
                pdata,
            }
        })
        .collect()
}

/// One field as it is on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Varint(u64),
    Fixed32(f32),
    Fixed64(u64),
    Bytes(Vec<u8>),
}

/// Every field of a message, in wire order: (field number, value).
pub fn raw_fields(mut buf: &[u8]) -> Vec<(u32, RawValue)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).expect("a field key");
        let value = match wire {
            WireType::Varint => RawValue::Varint(decode_varint(&mut buf).expect("a varint")),
            WireType::ThirtyTwoBit => {
                let (bytes, rest) = buf.split_at(4);
                buf = rest;
                RawValue::Fixed32(f32::from_le_bytes(bytes.try_into().unwrap()))
            }
            WireType::SixtyFourBit => {
                let (bytes, rest) = buf.split_at(8);
                buf = rest;
                RawValue::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap()))
            }
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).expect("a length") as usize;
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                RawValue::Bytes(bytes.to_vec())
            }
            other => panic!("unexpected wire type {other:?}"),
        };
        out.push((number, value));
    }
    out
}

/// The field numbers of a message.
pub fn field_numbers(buf: &[u8]) -> Vec<u32> {
    raw_fields(buf).into_iter().map(|(n, _)| n).collect()
}

/// The value of field `number`, if present.
pub fn field(buf: &[u8], number: u32) -> Option<RawValue> {
    raw_fields(buf)
        .into_iter()
        .find_map(|(n, v)| (n == number).then_some(v))
}
