//! PowerOcean's local Modbus TCP interface (protocol §14; PowerOcean family, unconfirmed
//! on the Fit), pure: the register map as data and everything that follows from it —
//! the read plan, the word codecs in both directions, what a poll means for the catalog.
//! No sockets: the simulator's device and the bridge's Modbus client and server bring
//! their own (tokio-modbus) and use this for the bytes.
//!
//! Transport facts a user of this module needs (§14): port 502, unit id 1, function 03
//! to read (≤ [`MAX_READ_WORDS`] registers a request), 06/16 to write; one client at a
//! time (a second is held off); set-points act only while 40608 was written within 60 s.
//!
//! # Layout
//! - [`map`]: [`REGISTERS`], one row per register (address, [`Kind`], unit, [`Access`]),
//!   and [`Point`], its name in code; the status bits; [`Product`].
//! - [`words`]: words ↔ numbers and text: 32-bit values low word first when read, high
//!   word first when written; ASCII NUL-padded.
//! - [`values`]: [`Values`] (a poll's values, filled block by block) and [`Image`] (the
//!   words a server holds, encoded from [`Values`]) — one table, both directions.
//! - [`plan`]: [`read_plan`], the fewest requests covering every readable register.
//! - [`control`]: writes: [`decode_write`] / [`encode_write`], the control command
//!   ([`parse_command`]: bits 0 and 1 are refused).
//! - [`reading`]: [`health`] of a poll (rated power 0 → no readings), the stream twins and
//!   their signs ([`STREAM_TWINS`], [`stream_updates`]), [`extras`], [`identity`],
//!   [`EnableWatch`] ("not enabled" vs a spike); the way back for a re-serving server
//!   ([`set_stream_state`], [`set_extra`]).

pub mod control;
pub mod map;
pub mod plan;
pub mod reading;
pub mod values;
pub mod words;

pub use control::{
    CommandError, ControlMethod, WriteError, decode_write, encode_write, parse_command,
};
pub use map::{Access, Kind, Point, Product, REGISTERS, Register};
pub use plan::{Block, MAX_READ_WORDS, ReadError, check_read, read_plan};
pub use reading::{
    EnableWatch, Extra, Health, Identity, STREAM_TWINS, Sign, Twin, Verdict, extras, health,
    identity, set_extra, set_stream_state, stream_updates, twin_of,
};
pub use values::{Image, RegValue, Values};
pub use words::WordOrder;

/// The Modbus TCP port the device listens on.
pub const DEFAULT_PORT: u16 = 502;
/// The unit id the device answers as (peers report it answers any).
pub const DEFAULT_UNIT: u8 = 1;
/// Heartbeat rule: set-points act only while 40608 was written within this many seconds.
pub const HEARTBEAT_WINDOW_SECS: u64 = 60;

#[cfg(test)]
mod tests;
