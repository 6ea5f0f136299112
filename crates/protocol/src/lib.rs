//! The PowerOcean Fit wire protocol, pure and I/O-free: bytes in, catalog states out.
//!
//! # Layout
//! - [`pb`]: prost types generated from `proto/poweroceanfit.proto` (used by the encoder
//!   and by anyone who wants typed messages) plus the generated per-message field tables.
//! - [`wire`]: a zero-copy protobuf wire reader that validates fields against those tables.
//! - [`dispatch`]: `(cmd_func, cmd_id)` → report message / catalog channel (protocol §4).
//! - [`schema`]: field number → catalog state, joined once from the proto and the catalog.
//! - [`value`]: the value rules (scaling, rounding, enum text, strings, arrays; protocol §6).
//! - [`decode`]: payload → frames → XOR → dispatch, offline detection; [`decode_payload`]
//!   returns owned [`StateUpdate`]s.
//! - [`compact`]: [`UpdateBuf`], the reusable buffer the decoder fills with compact
//!   updates (catalog index, value, flag): no allocation per state in steady state;
//!   [`PayloadView`], one read-only view of a buffer or a [`DecodedPayload`].
//! - [`encode`]: the reverse, for the simulator and round-trip tests, plus the frames a
//!   client publishes: get-all (§3) and the energy stream switch (§8).
//! - [`control`]: settings (protocol §10): [`SetRequest`] checks, the 96/98, 96/112 and
//!   96/101 set frames, and the 96/8 read-back as [`DeviceSettings`] (not catalog states).
//! - [`settings`]: settings by name, as people type them (CLI, REST, Home Assistant):
//!   one parser into a [`SetRequest`], and requests and read-backs written as text.
//! - [`timer`]: timer tasks (protocol §12, scheduled grid charge): [`TimerTask`] read
//!   from 96/10 and 96/127 (not catalog states), the 96/125 write recipes, the 96/127
//!   get-all request, and [`TimerRequest`] checks that plan the frames.
//! - [`field`]: what the field means beyond the frame (protocol §11): what an absent
//!   field means per report (the energy stream's power fields read 0 W), placeholder
//!   readings, and [`FieldRules`] for the service's decode path
//!   ([`UpdateBuf::decode_from_device`]).
//! - [`counters`]: which catalog states are lifetime or daily energy counters.
//! - [`modbus`]: the local Modbus TCP register map (protocol §14) as data: read plan,
//!   word codecs both ways, the stream twins and their signs, "not enabled" detection.
//! - [`topics`]: MQTT topic names of both routes, the serial they carry, and which
//!   decoder a topic needs.
//! - [`route`]: a payload through the decoder its topic needs ([`route::decode_raw`],
//!   and the pipeline's allocation-free [`route::decode_into`]).
//! - [`json`]: the flat `decode --json` object.
//! - [`open_api`]: open-API JSON: `a.b`/`a[0]` flattening (signing, quotas) and quota /
//!   status messages → [`StateUpdate`]s under the same value rules.
//! - [`error`]: [`DecodeError`], one variant per skip reason (these become metric labels).
//!
//! Nothing here touches sockets, files, clocks or config; any byte string is safe input.

pub mod compact;
pub mod control;
pub mod counters;
pub mod decode;
pub mod dispatch;
pub mod encode;
pub mod error;
pub mod field;
pub mod grid_charge;
pub mod json;
pub mod modbus;
pub mod open_api;
pub mod pb;
pub mod route;
pub mod schema;
pub mod settings;
pub mod timer;
pub mod topics;
pub mod value;
pub mod wire;

pub use compact::{CompactUpdate, PayloadView, UpdateBuf, UpdateRef, ValueRef};
pub use control::{DeviceSettings, FeedMode, SetContext, SetError, SetRequest, WorkMode};
pub use counters::{CounterKind, counter_kind};
pub use decode::{
    DecodedPayload, DeviceStatus, FrameSkip, SkipReason, StateUpdate, decode_payload,
};
pub use dispatch::{Report, dispatch};
pub use encode::{
    EncodeError, FrameSpec, encode_battery_packs, encode_frames, encode_report,
    energy_stream_switch, get_all_request, offline_payload,
};
pub use error::DecodeError;
pub use field::FieldRules;
pub use settings::{SetKind, Setting};
pub use timer::{TimerRequest, TimerTask};
pub use value::Value;

/// Payloads larger than this are refused before parsing (real frames are a few KB).
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
