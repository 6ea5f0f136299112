//! Three stages per device and channel (protocol §8, "Staleness"): fresh → stale →
//! unavailable, driven by the time since the channel's last *pushed* report (an MQTT
//! report or get-all answer), never by an HTTP quota poll (the cloud answers a poll with
//! the last known values even for a device that has been offline for days).
//!
//! The numbers (defaults, `[store]`):
//! - **stale** after `stale_after_cadences` (2) × the channel's cadence
//!   ([`crate::cadence`]): the energy stream (96/33, every 3–5 s while switched on)
//!   after 10 s, the slow channels (heartbeat 96/1, BMS 96/111, packs 96/108, every
//!   30–60 s) after 120 s — one missed report plus slack, not yet a lost device.
//! - **unavailable** after `unavailable_after` (10 min, the best peer's figure in §8),
//!   for every channel.
//!
//! A device's stage is the stage of its *freshest* channel: a device is stale only when
//! every channel it has reported is stale (the whole device is silent), unavailable only
//! when all are. Not the worst channel: a Fit whose energy stream stopped still sends its
//! heartbeat, and its heartbeat values are as good as ever; the stream's own channel says
//! that the stream is stale.
//!
//! Cost at 10 000 devices: a pushed report only stores its arrival time (no heap work
//! while a channel stays fresh). Each channel has at most one live deadline in a
//! [`Deadlines`] heap; when it comes due the channel's stage is recomputed from its last
//! push and the next deadline is scheduled — one heap operation per channel per stale
//! interval, and none for unavailable channels. Nothing scans all devices on a tick.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::Channel;
use tokio::time::Instant;

use crate::config::{StoreConfig, cadence};
use model::Stage;

/// When a channel turns stale and unavailable (from [`StoreConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTimes {
    pub stale_after_cadences: u32,
    pub unavailable_after: Duration,
}

impl StageTimes {
    pub fn from_config(config: &StoreConfig) -> StageTimes {
        StageTimes {
            stale_after_cadences: config.stale_after_cadences,
            unavailable_after: config.unavailable_after,
        }
    }

    /// Silence after which `channel` is stale (at least one cadence).
    pub fn stale_after(&self, channel: Channel) -> Duration {
        cadence(channel).saturating_mul(self.stale_after_cadences.max(1))
    }

    /// Silence after which `channel` is unavailable (never before it is stale).
    pub fn unavailable_after(&self, channel: Channel) -> Duration {
        self.unavailable_after.max(self.stale_after(channel))
    }

    /// The stage of a channel silent for `silence` (`None`: never pushed).
    pub fn stage(&self, channel: Channel, silence: Option<Duration>) -> Stage {
        match silence {
            Some(s) if s < self.stale_after(channel) => Stage::Fresh,
            Some(s) if s < self.unavailable_after(channel) => Stage::Stale,
            _ => Stage::Unavailable,
        }
    }

    /// When a channel last pushed at `pushed` leaves `stage` (`None`: it stays).
    fn next_deadline(&self, channel: Channel, pushed: Instant, stage: Stage) -> Option<Instant> {
        match stage {
            Stage::Fresh => pushed.checked_add(self.stale_after(channel)),
            Stage::Stale => pushed.checked_add(self.unavailable_after(channel)),
            Stage::Unavailable => None,
        }
    }
}

/// The device rule (see the module doc): the freshest channel's stage.
pub fn device_stage(channels: impl IntoIterator<Item = Stage>) -> Option<Stage> {
    channels.into_iter().min()
}

/// One stage transition, as the store reports it ([`model::StoreEvent::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageChange {
    pub device_sn: Arc<str>,
    /// `None`: the device as a whole.
    pub channel: Option<Channel>,
    pub stage: Stage,
}

/// One channel's pushes and stage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PushClock {
    /// The last pushed report on the monotonic clock (drives the stage; `None` for a
    /// restored time further back than the monotonic clock reaches: unavailable).
    pub(crate) last_push: Option<Instant>,
    /// The last pushed report's wall time (shown).
    pub(crate) last_push_wall: Option<SystemTime>,
    /// The stage last reported; `None` while the channel has no values at all.
    pub(crate) stage: Option<Stage>,
    /// The deadline of this channel's live heap entry (older entries are ignored).
    due: Option<Instant>,
}

/// Pending stage deadlines, earliest first: `(when, device, channel slot)`.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, Arc<str>, usize)>>,
}

impl Deadlines {
    /// The earliest pending deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Arc<str>, usize)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// The six channels' clocks of one device plus its aggregate stage.
#[derive(Debug, Default)]
pub(crate) struct DeviceClocks {
    pub(crate) channels: [PushClock; 6],
    stage: Option<Stage>,
}

/// Where a channel's new values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// A pushed report at (monotonic, wall) time.
    Pushed(Instant, SystemTime),
    /// A quota poll: values, but no proof of life.
    Polled,
}

/// What a clock operation needs besides the clock itself.
pub(crate) struct StageCtx<'a> {
    pub(crate) sn: &'a Arc<str>,
    pub(crate) times: StageTimes,
    pub(crate) deadlines: &'a mut Deadlines,
    pub(crate) changes: &'a mut Vec<StageChange>,
    /// Set when a deadline earlier than all others may have been scheduled.
    pub(crate) rescheduled: bool,
}

impl StageCtx<'_> {
    fn change(&mut self, channel: Option<Channel>, stage: Stage) {
        self.changes.push(StageChange {
            device_sn: self.sn.clone(),
            channel,
            stage,
        });
    }

    fn schedule(&mut self, clock: &mut PushClock, slot: usize, at: Instant) {
        if clock.due.is_some_and(|due| due <= at) {
            return;
        }
        clock.due = Some(at);
        if self.deadlines.next().is_none_or(|next| at < next) {
            self.rescheduled = true;
        }
        self.deadlines
            .heap
            .push(Reverse((at, self.sn.clone(), slot)));
    }
}

impl DeviceClocks {
    /// The device's stage as last reported (`None` before any channel had values).
    pub(crate) fn stage(&self) -> Option<Stage> {
        self.stage
    }

    /// New values arrived for the channel in `slot`.
    pub(crate) fn arrived(&mut self, slot: usize, arrival: Arrival, ctx: &mut StageCtx<'_>) {
        let channel = Channel::ALL[slot];
        let clock = &mut self.channels[slot];
        let stage = match arrival {
            Arrival::Pushed(now, wall) => {
                clock.last_push = Some(now);
                clock.last_push_wall = Some(wall);
                if let Some(deadline) = ctx.times.next_deadline(channel, now, Stage::Fresh) {
                    ctx.schedule(clock, slot, deadline);
                }
                Stage::Fresh
            }
            // A poll changes nothing but a channel's first appearance (unavailable).
            Arrival::Polled => clock.stage.unwrap_or(Stage::Unavailable),
        };
        if clock.stage != Some(stage) {
            clock.stage = Some(stage);
            ctx.change(Some(channel), stage);
        }
        self.update_device(ctx);
    }

    /// A channel restored from history, last updated `age` ago (wall clock) at `wall`:
    /// it continues from there as if that had been a push.
    pub(crate) fn restored(
        &mut self,
        slot: usize,
        now: Instant,
        age: Duration,
        wall: SystemTime,
        ctx: &mut StageCtx<'_>,
    ) {
        let channel = Channel::ALL[slot];
        let clock = &mut self.channels[slot];
        clock.last_push = now.checked_sub(age);
        clock.last_push_wall = Some(wall);
        let stage = ctx.times.stage(channel, clock.last_push.map(|_| age));
        clock.stage = Some(stage);
        if let Some(pushed) = clock.last_push
            && let Some(deadline) = ctx.times.next_deadline(channel, pushed, stage)
        {
            ctx.schedule(clock, slot, deadline);
        }
        self.stage = device_stage(self.channels.iter().filter_map(|c| c.stage));
    }

    /// The heap entry `(due, slot)` came due at `now`: recompute the stage, schedule the next.
    pub(crate) fn expire(&mut self, slot: usize, due: Instant, now: Instant, ctx: &mut StageCtx) {
        let channel = Channel::ALL[slot];
        let clock = &mut self.channels[slot];
        if clock.due != Some(due) {
            return; // superseded by an earlier entry for the same channel
        }
        clock.due = None;
        let Some(pushed) = clock.last_push else {
            return;
        };
        let stage = ctx
            .times
            .stage(channel, Some(now.saturating_duration_since(pushed)));
        if clock.stage != Some(stage) {
            clock.stage = Some(stage);
            ctx.change(Some(channel), stage);
        }
        if let Some(deadline) = ctx.times.next_deadline(channel, pushed, stage) {
            ctx.schedule(clock, slot, deadline);
        }
        self.update_device(ctx);
    }

    fn update_device(&mut self, ctx: &mut StageCtx<'_>) {
        let stage = device_stage(self.channels.iter().filter_map(|c| c.stage));
        if stage != self.stage {
            self.stage = stage;
            if let Some(stage) = stage {
                ctx.change(None, stage);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times() -> StageTimes {
        StageTimes::from_config(&StoreConfig::default())
    }

    #[test]
    fn documented_numbers() {
        let t = times();
        assert_eq!(
            t.stale_after(Channel::EnergyStreamItem),
            Duration::from_secs(10)
        );
        assert_eq!(
            t.stale_after(Channel::EmsHeartbeatReport),
            Duration::from_secs(120)
        );
        assert_eq!(
            t.unavailable_after(Channel::BpInfo1),
            Duration::from_secs(600)
        );
        let s = |secs| t.stage(Channel::EnergyStreamItem, Some(Duration::from_secs(secs)));
        assert_eq!(
            [s(0), s(9), s(10), s(599), s(600)],
            [
                Stage::Fresh,
                Stage::Fresh,
                Stage::Stale,
                Stage::Stale,
                Stage::Unavailable
            ]
        );
        assert_eq!(t.stage(Channel::BpInfo0, None), Stage::Unavailable);
        let short = StageTimes {
            stale_after_cadences: 2,
            unavailable_after: Duration::from_secs(1),
        };
        assert_eq!(
            short.unavailable_after(Channel::EmsHeartbeatReport),
            Duration::from_secs(120),
            "never unavailable before stale"
        );
    }

    #[test]
    fn device_is_as_fresh_as_its_freshest_channel() {
        assert_eq!(device_stage([]), None);
        assert_eq!(
            device_stage([Stage::Unavailable, Stage::Fresh, Stage::Stale]),
            Some(Stage::Fresh)
        );
        assert_eq!(
            device_stage([Stage::Unavailable, Stage::Stale]),
            Some(Stage::Stale)
        );
    }
}
