//! The decode path that allocates nothing per state: [`UpdateBuf`], a buffer the caller
//! keeps between payloads, filled with compact updates — (catalog index, value, flag) —
//! whose texts and arrays live in the buffer's own arenas.
//!
//! Once the arenas have grown to the largest payload seen, decoding allocates nothing.
//! [`crate::decode_payload`] is this path plus a conversion to [`StateUpdate`]s, so
//! there is one decoder; [`PayloadView`] reads either form.

mod message;
mod plan;
mod view;

use smol_str::SmolStr;

use catalog::StateDef;

use crate::control::DeviceSettings;
use crate::decode::{self, DecodedPayload, DeviceStatus, FrameSkip, Reading, StateUpdate};
use crate::error::DecodeError;
use crate::field::FieldRules;
use crate::timer::TimerTask;
use crate::value::Value;

pub(crate) use message::{decode_message, push_zeros};
pub(crate) use plan::plan;
pub use view::{PayloadView, UpdateRef};

/// A run of items in one of the buffer's arenas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Payloads are at most [`crate::MAX_PAYLOAD_BYTES`], so arena offsets fit in `u32`.
    fn between(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    fn at(start: usize) -> Span {
        Span::between(start, start)
    }

    #[inline]
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// A value as stored in the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Repr {
    Number(f64),
    /// A catalog enum text (or another text that lives forever).
    Static(&'static str),
    Text(Span),
    Array(Span),
}

/// One catalog state decoded from a frame: its catalog index, its value (in the buffer)
/// and its out-of-range flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactUpdate {
    state: u16,
    frame: u32,
    out_of_range: bool,
    value: Repr,
}

impl CompactUpdate {
    /// The catalog state.
    #[inline]
    pub fn state(&self) -> &'static StateDef {
        &catalog::STATES[usize::from(self.state)]
    }

    /// Position of the state in [`catalog::STATES`].
    pub fn state_index(&self) -> usize {
        usize::from(self.state)
    }

    /// Outside the catalog's [min, max]: published anyway, flagged (rule 3).
    #[inline]
    pub fn out_of_range(&self) -> bool {
        self.out_of_range
    }

    /// Index of the frame the update came from (see [`UpdateBuf::device_sn_of`]).
    #[inline]
    pub fn frame(&self) -> usize {
        self.frame as usize
    }
}

/// A value borrowed from an [`UpdateBuf`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Number(f64),
    Text(&'a str),
    Array(&'a [f64]),
}

impl ValueRef<'_> {
    /// True when `value` holds the same value (numbers compare as `f64`s).
    #[inline]
    pub fn eq_value(&self, value: &Value) -> bool {
        match (self, value) {
            (ValueRef::Number(a), Value::Number(b)) => a == b,
            (ValueRef::Text(a), Value::Text(b)) => *a == b.as_str(),
            (ValueRef::Array(a), Value::Array(b)) => *a == b.as_slice(),
            _ => false,
        }
    }
}

/// The growing parts the message decoder writes to.
#[derive(Debug, Default)]
pub(crate) struct Arenas {
    pub(crate) updates: Vec<CompactUpdate>,
    numbers: Vec<f64>,
    text: String,
    pending: Vec<message::Pending>,
}

impl Arenas {
    fn push_numbers(&mut self, items: &[f64]) -> Span {
        let start = self.numbers.len();
        self.numbers.extend_from_slice(items);
        Span::between(start, self.numbers.len())
    }

    /// Writes a text with `write` and returns where it is.
    fn text_with(&mut self, write: impl FnOnce(&mut String)) -> Span {
        let start = self.text.len();
        write(&mut self.text);
        Span::between(start, self.text.len())
    }

    /// Moves a gathered repeated field to the end of the numbers arena, unless it is
    /// there already, so its next elements extend it.
    fn move_to_end(&mut self, slot: usize) {
        let span = self.pending[slot].span;
        if span.range().end != self.numbers.len() {
            let start = self.numbers.len();
            self.numbers.extend_from_within(span.range());
            self.pending[slot].span = Span::between(start, self.numbers.len());
        }
    }
}

/// A reusable decode buffer: call [`UpdateBuf::decode`] for each payload and read the
/// updates, status, skips and errors back; keep the buffer for the next payload.
#[derive(Debug, Default)]
pub struct UpdateBuf {
    pub(crate) arenas: Arenas,
    /// The device serial of each frame, in the text arena.
    frames: Vec<Span>,
    pub(crate) status: Option<DeviceStatus>,
    pub(crate) skipped: Vec<FrameSkip>,
    pub(crate) errors: Vec<DecodeError>,
    /// Settings from 96/8 frames (protocol §10), outside the catalog.
    pub(crate) settings: Option<DeviceSettings>,
    /// Timer tasks from a 96/10 or 96/127 frame (protocol §12), outside the catalog, and
    /// the header seq of the last list frame read (`None`: none yet; a second list under
    /// it is the stale copy).
    pub(crate) timer_tasks: Option<Vec<TimerTask>>,
    pub(crate) timer_seq: Option<Option<i32>>,
    /// Scratch for XOR-ed pdata.
    pub(crate) xor: Vec<u8>,
    /// Frames dropped because their header named another device than the topic's
    /// ([`UpdateBuf::decode_from_device`] only).
    pub(crate) foreign_frames: usize,
}

impl UpdateBuf {
    pub fn new() -> UpdateBuf {
        UpdateBuf::default()
    }

    /// A buffer sized for one payload of `payload_len` bytes (a field takes at least two
    /// bytes on the wire, most take five), for one-shot decoding.
    pub(crate) fn for_payload(payload_len: usize) -> UpdateBuf {
        let mut buf = UpdateBuf::new();
        let fields = payload_len.min(crate::MAX_PAYLOAD_BYTES) / 5 + 4;
        buf.arenas.updates.reserve(fields);
        buf.arenas.text.reserve(fields * 4);
        buf.arenas.numbers.reserve(fields / 4);
        buf.frames.reserve(1);
        buf
    }

    /// Decodes one MQTT payload into the buffer (emptied first), like
    /// [`crate::decode_payload`]: `fallback_sn` names the device when a frame carries no
    /// `device_sn`. On error the buffer is left empty.
    pub fn decode(&mut self, payload: &[u8], fallback_sn: &str) -> Result<(), DecodeError> {
        let reading = Reading {
            sn: fallback_sn,
            rules: None,
        };
        self.decode_with(payload, reading)
    }

    /// Decodes a payload that came on device `topic_sn`'s topic the way the service
    /// takes it: the frame belongs to the topic's device, so a frame whose header names
    /// another device is dropped ([`UpdateBuf::foreign_frames`], protocol §2), and
    /// `rules` add what absent fields mean (protocol §11: with `stream_zero_fill`, every
    /// power field a 96/33 frame leaves out reads 0 W, as an update like a decoded one).
    /// Like [`UpdateBuf::decode`], nothing is allocated per state once the buffer has grown.
    pub fn decode_from_device(
        &mut self,
        payload: &[u8],
        topic_sn: &str,
        rules: FieldRules,
    ) -> Result<(), DecodeError> {
        let reading = Reading {
            sn: topic_sn,
            rules: Some(rules),
        };
        self.decode_with(payload, reading)
    }

    fn decode_with(&mut self, payload: &[u8], reading: Reading<'_>) -> Result<(), DecodeError> {
        self.clear();
        let result = decode::decode_into(payload, reading, self);
        if result.is_err() {
            self.clear();
        }
        result
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        self.arenas.updates.clear();
        self.arenas.numbers.clear();
        self.arenas.text.clear();
        self.frames.clear();
        self.status = None;
        self.skipped.clear();
        self.errors.clear();
        self.settings = None;
        self.timer_tasks = None;
        self.timer_seq = None;
        self.foreign_frames = 0;
    }

    /// Starts a frame whose device is `device_sn`; returns its index.
    pub(crate) fn push_frame(&mut self, device_sn: &str) -> u32 {
        let span = self.arenas.text_with(|t| t.push_str(device_sn));
        self.frames.push(span);
        (self.frames.len() - 1) as u32
    }

    /// Every state decoded, frame by frame, in wire order (repeated fields last).
    #[inline]
    pub fn updates(&self) -> &[CompactUpdate] {
        &self.arenas.updates
    }

    /// The value of `update` (an update of this buffer).
    #[inline]
    pub fn value(&self, update: &CompactUpdate) -> ValueRef<'_> {
        match update.value {
            Repr::Number(n) => ValueRef::Number(n),
            Repr::Static(text) => ValueRef::Text(text),
            Repr::Text(span) => ValueRef::Text(self.text(span)),
            Repr::Array(span) => {
                ValueRef::Array(self.arenas.numbers.get(span.range()).unwrap_or_default())
            }
        }
    }

    /// The value of `update` as an owned [`Value`] (catalog texts are not copied).
    pub fn to_value(&self, update: &CompactUpdate) -> Value {
        match update.value {
            Repr::Number(n) => Value::Number(n),
            Repr::Static(text) => Value::Text(SmolStr::new_static(text)),
            Repr::Text(span) => Value::Text(SmolStr::new(self.text(span))),
            Repr::Array(_) => match self.value(update) {
                ValueRef::Array(items) => Value::Array(items.to_vec()),
                _ => Value::Array(Vec::new()),
            },
        }
    }

    #[inline]
    fn text(&self, span: Span) -> &str {
        self.arenas.text.get(span.range()).unwrap_or_default()
    }

    /// The device serial of the frame `update` came from.
    #[inline]
    pub fn device_sn_of(&self, update: &CompactUpdate) -> &str {
        self.frames
            .get(update.frame())
            .map_or("", |span| self.text(*span))
    }

    /// Device serial of the last frame (for status and skips).
    pub fn device_sn(&self) -> Option<&str> {
        self.frames.last().map(|span| self.text(*span))
    }

    /// `Online` once a report decoded; `Offline` for the offline frame; else `None`.
    pub fn status(&self) -> Option<DeviceStatus> {
        self.status
    }

    /// Frames (or parts of one) that yielded no states although well-formed.
    pub fn skipped(&self) -> &[FrameSkip] {
        &self.skipped
    }

    /// Frames whose pdata did not decode; other frames of the payload still count.
    pub fn errors(&self) -> &[DecodeError] {
        &self.errors
    }

    /// Number of frames in the payload (not counting foreign ones).
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Frames [`UpdateBuf::decode_from_device`] dropped because their header named
    /// another device than the topic's (protocol §2). Always 0 after [`UpdateBuf::decode`].
    pub fn foreign_frames(&self) -> usize {
        self.foreign_frames
    }

    /// Settings a 96/8 frame of the payload reported (not catalog states).
    pub fn settings(&self) -> Option<&DeviceSettings> {
        self.settings.as_ref()
    }

    /// Timer tasks a 96/10 or 96/127 frame of the payload reported (not catalog states).
    pub fn timer_tasks(&self) -> Option<&[TimerTask]> {
        self.timer_tasks.as_deref()
    }

    /// The buffer's content as a [`DecodedPayload`] of [`StateUpdate`]s.
    pub fn to_payload(&self) -> DecodedPayload {
        let mut sn: Option<(u32, SmolStr)> = None;
        let updates = self
            .updates()
            .iter()
            .map(|u| {
                let device_sn = match &sn {
                    Some((frame, s)) if *frame == u.frame => s.clone(),
                    _ => {
                        let s = SmolStr::new(self.device_sn_of(u));
                        sn = Some((u.frame, s.clone()));
                        s
                    }
                };
                let state = u.state();
                StateUpdate {
                    device_sn,
                    channel: state.channel,
                    state,
                    value: self.to_value(u),
                    out_of_range: u.out_of_range,
                }
            })
            .collect();
        DecodedPayload {
            updates,
            status: self.status,
            device_sn: self.device_sn().map(SmolStr::new),
            skipped: self.skipped.clone(),
            errors: self.errors.clone(),
            frames: self.frames(),
            settings: self.settings,
            timer_tasks: self.timer_tasks.clone(),
        }
    }
}
