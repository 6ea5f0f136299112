//! The PowerOcean Fit state catalog: the 216 states of `spec/poweroceanfit-states-1.4.0.md`.
//!
//! # Layout
//! - `build/` (build script) parses the spec markdown into a static table at build time.
//! - [`StateDef`]: one state — channel, name, kind, unit, mult, range, human name, enum map.
//! - [`Channel`]: the six channels (report messages, and one per battery pack).
//! - [`STATES`], [`find`], [`by_key`], [`channel_states`]: lookups used by every other crate.
//!
//! Everything here is `'static`: the hot path hands out `&'static StateDef` and never
//! allocates a state name.

mod channel;
mod state;

pub use channel::Channel;
pub use state::{Kind, StateDef};

include!(concat!(env!("OUT_DIR"), "/catalog_generated.rs"));

/// Number of states in the catalog (216 for spec 1.4.0).
pub const STATE_COUNT: usize = STATES.len();

/// The state `name` of `channel`, if the catalog has it.
pub fn find(channel: Channel, name: &str) -> Option<&'static StateDef> {
    channel_states(channel).iter().find(|s| s.name == name)
}

/// The state with key `"<Channel>.<state>"` (e.g. `"bpInfo1.bpSoc"`).
pub fn by_key(key: &str) -> Option<&'static StateDef> {
    let (channel, name) = key.split_once('.')?;
    find(Channel::from_name(channel)?, name)
}

/// All states of one channel, in spec order (a contiguous slice of [`STATES`]).
pub fn channel_states(channel: Channel) -> &'static [StateDef] {
    let start = STATES.iter().position(|s| s.channel == channel);
    match start {
        Some(start) => {
            let len = STATES[start..]
                .iter()
                .take_while(|s| s.channel == channel)
                .count();
            &STATES[start..start + len]
        }
        None => &[],
    }
}
