//! Decodes one report message into compact updates: one pass over the wire, one plan
//! lookup per tag, the value rules applied in place, nothing allocated once the
//! buffer's arenas have grown to the size of the payloads seen.

use catalog::StateDef;

use super::plan::{Action, Gathered, Op, Plan, Shape};
use super::{Arenas, CompactUpdate, Repr, Span};
use crate::field::ZeroFill;
use crate::value;
use crate::wire::{FieldIndex, Reader, WIRE_END_GROUP, WIRE_START_GROUP, WireError};

/// A repeated field being gathered: its elements so far in the numbers arena.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    number: u32,
    out: Option<(Gathered, &'static StateDef)>,
    pub(super) span: Span,
}

/// Decodes `bytes` as the message of `plan` into `arenas`, tagging updates with `frame`.
/// Scalars keep the last occurrence (protobuf's rule) at the place of the first; repeated
/// fields gather all occurrences and follow the scalars, in order of first occurrence.
/// Returns the set of scalar fields present (bit = field number), for the §11 rules.
/// On error the caller truncates what was pushed.
pub(crate) fn decode_message(
    bytes: &[u8],
    plan: &Plan,
    frame: u32,
    arenas: &mut Arenas,
) -> Result<u128, WireError> {
    let mut m = Message {
        start: arenas.updates.len(),
        seen: 0,
        frame,
        arenas,
    };
    m.arenas.pending.clear();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let tag = r.varint()?;
        match plan.op(tag) {
            Some(op) => m.field(&mut r, op)?,
            None => other_field(&mut r, tag, plan.fields)?,
        }
    }
    m.finish();
    Ok(m.seen)
}

/// Pushes a 0 for each state of `fills` whose field is not in `seen` (protocol §11: an
/// absent power field of the energy stream reads 0 W), as updates of `frame`.
pub(crate) fn push_zeros(fills: &[ZeroFill], seen: u128, frame: u32, arenas: &mut Arenas) {
    for &(bit, state) in fills {
        if seen & bit == 0 {
            arenas.updates.push(CompactUpdate {
                state: state.index as u16,
                frame,
                out_of_range: state.is_out_of_range(0.0),
                value: Repr::Number(0.0),
            });
        }
    }
}

struct Message<'b> {
    start: usize,
    /// Field numbers already emitted (every catalog field number is below 128).
    seen: u128,
    frame: u32,
    arenas: &'b mut Arenas,
}

impl Message<'_> {
    #[inline]
    fn field(&mut self, r: &mut Reader<'_>, op: &Op) -> Result<(), WireError> {
        match op.action {
            Action::Float(shape, state) => {
                let x = f32::from_bits(r.fixed32()?);
                match shape {
                    Shape::Number => {
                        let (v, out_of_range) = value::float_scaled(state, x);
                        self.emit(op.seen_bit, state, Repr::Number(v), out_of_range);
                    }
                    Shape::Array => {
                        let span = self.arenas.push_numbers(&[value::shortest_f64(x)]);
                        self.emit(op.seen_bit, state, Repr::Array(span), false);
                    }
                    Shape::Text | Shape::Diagnostic => {
                        let span = self.arenas.text_with(|t| value::write_float_text(x, t));
                        self.emit(op.seen_bit, state, Repr::Text(span), false);
                    }
                }
            }
            Action::Int(ty, shape, state) => {
                let n = ty.convert(r.varint()?);
                let (repr, out_of_range) = match shape {
                    Shape::Number => {
                        let (v, out_of_range) = value::int_scaled(state, n);
                        (Repr::Number(v), out_of_range)
                    }
                    Shape::Diagnostic if n >= 0 => (self.diagnostic(state, n as u64), false),
                    Shape::Array => (Repr::Array(self.arenas.push_numbers(&[n as f64])), false),
                    Shape::Diagnostic | Shape::Text => {
                        let span = self.arenas.text_with(|t| value::write_int_text(n, t));
                        (Repr::Text(span), false)
                    }
                };
                self.emit(op.seen_bit, state, repr, out_of_range);
            }
            Action::Text(state) => {
                let text = utf8(r, op.number)?;
                let span = self.arenas.text_with(|t| t.push_str(text));
                self.emit(op.seen_bit, state, Repr::Text(span), false);
            }
            Action::EmptyText(state) => {
                let len = r.varint()?;
                r.take(usize::try_from(len).map_err(|_| WireError::Truncated)?)?;
                self.emit(op.seen_bit, state, Repr::Static(""), false);
            }
            Action::Skip if op.utf8 => {
                utf8(r, op.number)?;
            }
            Action::Skip => {
                r.value(op.wire)?;
            }
            Action::Repeated {
                fixed32,
                packed,
                out,
            } => self.repeated(r, op, fixed32, packed, out)?,
        }
        Ok(())
    }

    /// Rule 4 for one code: the catalog's text, or `"<code> not part of array"`.
    fn diagnostic(&mut self, state: &'static StateDef, code: u64) -> Repr {
        match state.enum_text(code) {
            Some(text) => Repr::Static(text),
            None => Repr::Text(
                self.arenas
                    .text_with(|t| value::write_not_in_array(std::iter::once(code), t)),
            ),
        }
    }

    /// Pushes a scalar's update, or overwrites the earlier occurrence of the same field.
    #[inline]
    fn emit(&mut self, bit: u128, state: &'static StateDef, value: Repr, out_of_range: bool) {
        let index = state.index as u16;
        if self.seen & bit != 0
            && let Some(earlier) = self.arenas.updates[self.start..]
                .iter_mut()
                .find(|u| u.state == index)
        {
            earlier.value = value;
            earlier.out_of_range = out_of_range;
            return;
        }
        self.seen |= bit;
        self.arenas.updates.push(CompactUpdate {
            state: index,
            frame: self.frame,
            out_of_range,
            value,
        });
    }

    fn repeated(
        &mut self,
        r: &mut Reader<'_>,
        op: &Op,
        fixed32: bool,
        packed: bool,
        out: Option<(Gathered, &'static StateDef)>,
    ) -> Result<(), WireError> {
        let number = op.number;
        let arenas = &mut *self.arenas;
        let slot = match arenas.pending.iter().position(|p| p.number == number) {
            Some(slot) => slot,
            None => {
                let span = Span::at(arenas.numbers.len());
                arenas.pending.push(Pending { number, out, span });
                arenas.pending.len() - 1
            }
        };
        // Elements go to the end of the numbers arena; a field whose occurrences are
        // interleaved with another repeated field's is moved there first.
        let keep = out.is_some();
        if keep {
            arenas.move_to_end(slot);
        }
        let before = arenas.numbers.len();
        let numbers = &mut arenas.numbers;
        match (fixed32, packed) {
            (true, false) => numbers.push(value::shortest_f64(f32::from_bits(r.fixed32()?))),
            (false, false) => numbers.push(u64::from(r.varint()? as u32) as f64),
            (true, true) => {
                let bytes = len_delimited(r)?;
                if bytes.len() % 4 != 0 {
                    return Err(WireError::BadPackedLength { field: number });
                }
                if keep {
                    numbers.extend(bytes.chunks_exact(4).map(|c| {
                        let bits = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        value::shortest_f64(f32::from_bits(bits))
                    }));
                }
            }
            (false, true) => {
                let bytes = if op.utf8 {
                    utf8(r, number)?.as_bytes()
                } else {
                    len_delimited(r)?
                };
                let mut elements = Reader::new(bytes);
                while !elements.is_empty() {
                    let v = elements.varint().map_err(|e| match e {
                        WireError::Truncated => WireError::BadPackedLength { field: number },
                        other => other,
                    })?;
                    if keep {
                        numbers.push(u64::from(v as u32) as f64);
                    }
                }
            }
        }
        if keep {
            arenas.pending[slot].span.len += (arenas.numbers.len() - before) as u32;
        } else {
            arenas.numbers.truncate(before);
        }
        Ok(())
    }

    /// Pushes the gathered repeated fields (rule 6, or rule 4 for code lists).
    fn finish(&mut self) {
        for i in 0..self.arenas.pending.len() {
            let Pending { out, span, .. } = self.arenas.pending[i];
            let Some((gathered, state)) = out else {
                continue;
            };
            if span.len == 0 {
                continue; // rule 1: an empty list is absent
            }
            let repr = match gathered {
                Gathered::Array => Repr::Array(span),
                Gathered::NoCodes => Repr::Static(" not part of array"),
                Gathered::Codes => {
                    let codes = span.range();
                    if let [code] = self.arenas.numbers[codes.clone()] {
                        self.diagnostic(state, code as u64)
                    } else {
                        let Arenas { numbers, text, .. } = &mut *self.arenas;
                        let start = text.len();
                        let codes = numbers[codes].iter().map(|&c| c as u64);
                        value::write_not_in_array(codes, text);
                        Repr::Text(Span::between(start, text.len()))
                    }
                }
            };
            self.arenas.updates.push(CompactUpdate {
                state: state.index as u16,
                frame: self.frame,
                out_of_range: false,
                value: repr,
            });
        }
    }
}

#[inline]
fn len_delimited<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let len = usize::try_from(r.varint()?).map_err(|_| WireError::Truncated)?;
    r.take(len)
}

#[inline]
fn utf8<'a>(r: &mut Reader<'a>, field: u32) -> Result<&'a str, WireError> {
    std::str::from_utf8(len_delimited(r)?).map_err(|_| WireError::InvalidUtf8 { field })
}

/// A tag the plan does not hold: an unknown field (skipped, groups included) or a known
/// field with a wire type it does not accept (an error, as in prost).
#[cold]
fn other_field(r: &mut Reader<'_>, tag: u64, fields: &FieldIndex) -> Result<(), WireError> {
    let wire = (tag & 7) as u8;
    let number = u32::try_from(tag >> 3).map_err(|_| WireError::InvalidWireType(wire))?;
    if number == 0 {
        return Err(WireError::FieldNumberZero);
    }
    match wire {
        WIRE_START_GROUP => r.skip_group(number, 0),
        WIRE_END_GROUP => Err(WireError::UnexpectedEndGroup),
        _ => {
            r.value(wire)?;
            match fields.get(number) {
                Some(entry) => Err(WireError::WrongWireType {
                    field: number,
                    found: wire,
                    expected: entry.wire,
                }),
                None => Ok(()),
            }
        }
    }
}
