//! [`ChannelSlots`]: one device's per-state storage, indexed by catalog state and
//! allocated a channel at a time on that channel's first report, so memory follows what a
//! device sends (a fleet member that only sends energy streams costs ten slots, not 216).

use std::sync::LazyLock;

use catalog::{Channel, StateDef};

/// Index in `STATES` of each channel's first state, in `Channel::ALL` order.
static CHANNEL_START: LazyLock<[usize; 6]> = LazyLock::new(|| {
    Channel::ALL.map(|c| catalog::channel_states(c).first().map_or(0, |s| s.index))
});

/// Position of `channel` in `Channel::ALL`: its declaration order (tested below).
#[inline]
pub(crate) fn channel_slot(channel: Channel) -> usize {
    channel as usize
}

/// `(channel slot, offset within the channel)` of a state.
#[inline]
fn slot_of(state: &StateDef) -> (usize, usize) {
    let channel = channel_slot(state.channel);
    (channel, state.index.saturating_sub(CHANNEL_START[channel]))
}

/// A value per catalog state of one device, by channel.
#[derive(Debug)]
pub(crate) struct ChannelSlots<T> {
    channels: [Option<Box<[Option<T>]>>; 6],
}

impl<T> Default for ChannelSlots<T> {
    fn default() -> Self {
        ChannelSlots {
            channels: Default::default(),
        }
    }
}

impl<T> ChannelSlots<T> {
    #[inline]
    pub(crate) fn get(&self, state: &StateDef) -> Option<&T> {
        let (channel, offset) = slot_of(state);
        self.channels[channel].as_ref()?.get(offset)?.as_ref()
    }

    /// The slot of `state`, allocating its channel's slots on first use.
    #[inline]
    pub(crate) fn slot_mut(&mut self, state: &StateDef) -> Option<&mut Option<T>> {
        let (channel, offset) = slot_of(state);
        self.channels[channel]
            .get_or_insert_with(|| {
                (0..catalog::channel_states(state.channel).len())
                    .map(|_| None)
                    .collect()
            })
            .get_mut(offset)
    }

    /// Every stored value, in catalog order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.channels
            .iter()
            .flatten()
            .flat_map(|c| c.iter().flatten())
    }

    /// Slots allocated per channel (for tests of the memory layout).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> Vec<usize> {
        self.channels
            .iter()
            .map(|c| c.as_ref().map_or(0, |c| c.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_slots_follow_channel_all() {
        for (i, channel) in Channel::ALL.into_iter().enumerate() {
            assert_eq!(channel_slot(channel), i);
        }
    }

    #[test]
    fn each_state_has_its_own_slot() {
        let mut slots = ChannelSlots::default();
        for state in &catalog::STATES {
            *slots.slot_mut(state).expect("slot") = Some(state.index);
        }
        for state in &catalog::STATES {
            assert_eq!(slots.get(state), Some(&state.index));
        }
        assert_eq!(slots.values().count(), catalog::STATE_COUNT);
        assert_eq!(slots.allocated(), [64, 67, 10, 25, 25, 25]);
    }
}
