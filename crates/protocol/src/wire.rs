//! Zero-copy protobuf wire reader that checks each known field's wire type.
//!
//! Hand-rolled rather than prost's decoder so the decoder can map field numbers straight
//! to catalog states without building intermediate structs, and so truncation and
//! malformation are told apart (they are different skip reasons).

use catalog::StateDef;

use crate::pb::{MessageSchema, ProtoField, ProtoType};

/// What is wrong with a byte string that should be a protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("input ends in the middle of a field")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("invalid wire type {0}")]
    InvalidWireType(u8),
    #[error("field number 0")]
    FieldNumberZero,
    #[error("field {field} has wire type {found}, expected {expected}")]
    WrongWireType { field: u32, found: u8, expected: u8 },
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 { field: u32 },
    #[error("packed field {field} has a length that is not a whole number of elements")]
    BadPackedLength { field: u32 },
    #[error("group nesting deeper than {MAX_GROUP_DEPTH}")]
    GroupTooDeep,
    #[error("end-group tag without a start")]
    UnexpectedEndGroup,
    #[error("field {field} repeats more than {max} times")]
    TooManyElements { field: u32, max: usize },
}

impl WireError {
    /// True for "the bytes stop early" as opposed to "the bytes are wrong".
    pub fn is_truncation(&self) -> bool {
        matches!(self, WireError::Truncated)
    }
}

const MAX_GROUP_DEPTH: usize = 32;
pub const WIRE_VARINT: u8 = 0;
pub const WIRE_FIXED64: u8 = 1;
pub const WIRE_LEN: u8 = 2;
pub const WIRE_START_GROUP: u8 = 3;
pub const WIRE_END_GROUP: u8 = 4;
pub const WIRE_FIXED32: u8 = 5;

/// The raw content of one field occurrence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawField<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Len(&'a [u8]),
}

/// A cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, WireError> {
        // One- and two-byte varints (tags, small values) are the common case.
        if let Some(&byte) = self.buf.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        if let Some(&[low, high]) = self.buf.get(self.pos..self.pos + 2)
            && high < 0x80
        {
            self.pos += 2;
            return Ok(u64::from(low & 0x7f) | u64::from(high) << 7);
        }
        self.long_varint()
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    pub fn fixed32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a tag: `(field number, wire type)`.
    #[inline]
    pub(crate) fn tag(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let field = u32::try_from(key >> 3).map_err(|_| WireError::InvalidWireType(wire))?;
        if field == 0 {
            return Err(WireError::FieldNumberZero);
        }
        Ok((field, wire))
    }

    #[inline]
    pub(crate) fn value(&mut self, wire: u8) -> Result<RawField<'a>, WireError> {
        match wire {
            WIRE_VARINT => self.varint().map(RawField::Varint),
            WIRE_FIXED64 => self.fixed64().map(RawField::Fixed64),
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                self.take(len).map(RawField::Len)
            }
            WIRE_FIXED32 => self.fixed32().map(RawField::Fixed32),
            other => Err(WireError::InvalidWireType(other)),
        }
    }

    /// Skips a group whose start tag (field `field`) was just read.
    pub(crate) fn skip_group(&mut self, field: u32, depth: usize) -> Result<(), WireError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(WireError::GroupTooDeep);
        }
        loop {
            let (f, wire) = self.tag()?;
            match wire {
                WIRE_END_GROUP if f == field => return Ok(()),
                WIRE_END_GROUP => return Err(WireError::UnexpectedEndGroup),
                WIRE_START_GROUP => self.skip_group(f, depth + 1)?,
                other => {
                    self.value(other)?;
                }
            }
        }
    }
}

/// The wire type a field of this type must use (repeated scalars may also come packed).
pub(crate) fn expected_wire(field: &ProtoField) -> u8 {
    match field.ty {
        ProtoType::Float => WIRE_FIXED32,
        ProtoType::Uint32 | ProtoType::Int32 | ProtoType::Sint32 | ProtoType::Bool => WIRE_VARINT,
        ProtoType::String | ProtoType::Bytes | ProtoType::Message => WIRE_LEN,
    }
}

/// One known field: its proto definition, its wire type, and the catalog state it fills.
#[derive(Debug, Clone, Copy)]
pub struct FieldEntry {
    pub field: &'static ProtoField,
    pub wire: u8,
    /// The catalog state this field fills in the indexed channel, if any.
    pub state: Option<&'static StateDef>,
}

/// Walks every field of `buf` against `index`, calling `visit` for each known field with
/// a valid wire type. Unknown fields are skipped (as protobuf requires); a known field
/// with the wrong wire type or invalid UTF-8 is an error, as in prost.
pub fn walk<'a>(
    buf: &'a [u8],
    index: &FieldIndex,
    mut visit: impl FnMut(&FieldEntry, RawField<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let (number, wire) = r.tag()?;
        match wire {
            WIRE_START_GROUP => {
                r.skip_group(number, 0)?;
                continue;
            }
            WIRE_END_GROUP => return Err(WireError::UnexpectedEndGroup),
            _ => {}
        }
        let raw = r.value(wire)?;
        let Some(entry) = index.get(number) else {
            continue;
        };
        if wire != entry.wire && !(wire == WIRE_LEN && entry.field.repeated) {
            return Err(WireError::WrongWireType {
                field: number,
                found: wire,
                expected: entry.wire,
            });
        }
        if let (ProtoType::String, RawField::Len(bytes)) = (entry.field.ty, raw) {
            std::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8 { field: number })?;
        }
        visit(entry, raw)?;
    }
    Ok(())
}

/// A message's fields indexed by field number, for O(1) lookup while walking.
#[derive(Debug)]
pub struct FieldIndex {
    by_number: Vec<Option<FieldEntry>>,
}

impl FieldIndex {
    /// Index of a message whose fields are not catalog states (envelope messages).
    pub fn new(schema: &'static MessageSchema) -> Self {
        Self::with_states(schema, |_| None)
    }

    /// Index of a report message; `state_of` names the catalog state of each field.
    pub fn with_states(
        schema: &'static MessageSchema,
        state_of: impl Fn(&ProtoField) -> Option<&'static StateDef>,
    ) -> Self {
        let max = schema.fields.iter().map(|f| f.number).max().unwrap_or(0) as usize;
        let mut by_number = vec![None; max + 1];
        for field in schema.fields {
            by_number[field.number as usize] = Some(FieldEntry {
                field,
                wire: expected_wire(field),
                state: state_of(field),
            });
        }
        FieldIndex { by_number }
    }

    pub fn get(&self, number: u32) -> Option<&FieldEntry> {
        self.by_number.get(number as usize).and_then(Option::as_ref)
    }
}

/// Calls `each` for every fixed32 element of a packed (or single unpacked) float field.
pub fn for_each_fixed32(
    field: u32,
    raw: RawField<'_>,
    mut each: impl FnMut(u32),
) -> Result<(), WireError> {
    match raw {
        RawField::Fixed32(v) => each(v),
        RawField::Len(bytes) => {
            if bytes.len() % 4 != 0 {
                return Err(WireError::BadPackedLength { field });
            }
            for c in bytes.chunks_exact(4) {
                each(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Calls `each` for every varint element of a packed (or single unpacked) integer field.
pub fn for_each_varint(
    field: u32,
    raw: RawField<'_>,
    mut each: impl FnMut(u64),
) -> Result<(), WireError> {
    match raw {
        RawField::Varint(v) => each(v),
        RawField::Len(bytes) => {
            let mut r = Reader::new(bytes);
            while !r.is_empty() {
                each(r.varint().map_err(|e| match e {
                    WireError::Truncated => WireError::BadPackedLength { field },
                    other => other,
                })?);
            }
        }
        _ => {}
    }
    Ok(())
}
