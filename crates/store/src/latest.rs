//! The in-memory latest values: per device, per state, with per-channel update times,
//! stages ([`crate::stage`]), the online/offline status the device last reported and its
//! grid presence; at most `max_devices` devices. What it shows: [`crate::snapshot`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use catalog::{Channel, StateDef};
use protocol::{DeviceSettings, DeviceStatus, ValueRef};
use tokio::time::Instant;

use crate::grid::{GridInputs, PHASE_VOLTAGE_KEYS, derive};
use crate::slots::{ChannelSlots, channel_slot};
use crate::stage::{Arrival, Deadlines, DeviceClocks, StageChange, StageCtx, StageTimes};
use model::unix_ms;
use model::{GridState, Stage};

pub use crate::snapshot::{ChannelSnapshot, DeviceSnapshot, LatestState};

/// The phase voltages' catalog states (protocol §13).
static PHASE_VOLTAGES: std::sync::LazyLock<[Option<&'static StateDef>; 3]> =
    std::sync::LazyLock::new(|| PHASE_VOLTAGE_KEYS.map(catalog::by_key));

/// One device: its latest values (see [`ChannelSlots`] for the memory layout), when each
/// channel last reported, and its online status.
#[derive(Debug)]
pub(crate) struct DeviceEntry {
    sn: Arc<str>,
    values: ChannelSlots<LatestState>,
    channel_updates: [Option<SystemTime>; 6],
    clocks: DeviceClocks,
    status: Option<(DeviceStatus, SystemTime)>,
    /// Settings merged from every 96/8 report, and when the last one arrived.
    settings: Option<(DeviceSettings, SystemTime)>,
    /// Grid presence as last announced ([`model::StoreEvent::Grid`]).
    grid: GridState,
}

/// All devices' latest values and stage deadlines (kept behind the store's lock).
#[derive(Debug)]
pub(crate) struct Latest {
    devices: BTreeMap<Arc<str>, DeviceEntry>,
    deadlines: Deadlines,
    /// At most this many devices (`[store] max_devices`); a report of any other device
    /// finds no room.
    max_devices: usize,
}

impl Default for Latest {
    fn default() -> Latest {
        Latest::new(crate::StoreConfig::default().max_devices)
    }
}

impl Latest {
    pub(crate) fn new(max_devices: usize) -> Latest {
        Latest {
            devices: BTreeMap::new(),
            deadlines: Deadlines::default(),
            max_devices: max_devices.max(1),
        }
    }

    /// Devices held.
    pub(crate) fn len(&self) -> usize {
        self.devices.len()
    }

    /// The entry of device `sn`, created on its first report; `None` when the store
    /// already holds `max_devices` others. Called once per device and payload, not per
    /// state; a known device's serial is not copied.
    pub(crate) fn device(&mut self, sn: &str) -> Option<&mut DeviceEntry> {
        if !self.devices.contains_key(sn) {
            if self.devices.len() >= self.max_devices {
                return None;
            }
            let sn: Arc<str> = sn.into();
            let entry = DeviceEntry {
                sn: sn.clone(),
                values: ChannelSlots::default(),
                channel_updates: [None; 6],
                clocks: DeviceClocks::default(),
                status: None,
                settings: None,
                grid: GridState::default(),
            };
            self.devices.insert(sn, entry);
        }
        self.devices.get_mut(sn)
    }

    /// Records one value (restoring from history).
    pub(crate) fn set(&mut self, state: LatestState) {
        if let Some(device) = self.device(&state.device_sn) {
            let value = ValueRef::from(&state.value);
            device.update(
                state.state,
                value,
                state.out_of_range,
                state.updated_at,
                state.source,
            );
        }
    }

    pub(crate) fn latest(&self, sn: &str) -> Vec<LatestState> {
        self.devices
            .get(sn)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn settings(&self, sn: &str) -> Option<DeviceSettings> {
        self.devices.get(sn)?.settings()
    }

    pub(crate) fn get(&self, sn: &str, state: &StateDef) -> Option<LatestState> {
        self.devices.get(sn)?.values.get(state).cloned()
    }

    pub(crate) fn snapshots(
        &self,
        now: SystemTime,
        mono: Instant,
        times: StageTimes,
    ) -> Vec<DeviceSnapshot> {
        self.devices
            .values()
            .map(|d| d.snapshot(now, mono, times))
            .collect()
    }

    pub(crate) fn snapshot(
        &self,
        sn: &str,
        now: SystemTime,
        mono: Instant,
        times: StageTimes,
    ) -> Option<DeviceSnapshot> {
        Some(self.devices.get(sn)?.snapshot(now, mono, times))
    }

    /// New values arrived for the channels in `channels` (bit = channel slot) of device
    /// `sn`; stage transitions go to `changes`. True when a deadline was scheduled that
    /// the stage timer may not know yet.
    pub(crate) fn arrived(
        &mut self,
        sn: &str,
        channels: u8,
        arrival: Arrival,
        times: StageTimes,
        changes: &mut Vec<StageChange>,
    ) -> bool {
        let Some(device) = self.devices.get_mut(sn) else {
            return false;
        };
        let mut ctx = StageCtx {
            sn: &device.sn,
            times,
            deadlines: &mut self.deadlines,
            changes,
            rescheduled: false,
        };
        for slot in (0..6).filter(|slot| channels & (1 << slot) != 0) {
            device.clocks.arrived(slot, arrival, &mut ctx);
        }
        ctx.rescheduled
    }

    /// After restoring from history: every restored channel continues from its last
    /// update as if that had been a push (values restored an hour old are unavailable).
    pub(crate) fn restore_clocks(&mut self, now: SystemTime, mono: Instant, times: StageTimes) {
        let mut changes = Vec::new();
        for device in self.devices.values_mut() {
            let mut ctx = StageCtx {
                sn: &device.sn,
                times,
                deadlines: &mut self.deadlines,
                changes: &mut changes,
                rescheduled: false,
            };
            for (slot, update) in device.channel_updates.iter().enumerate() {
                if let Some(at) = update {
                    let age = now.duration_since(*at).unwrap_or(Duration::ZERO);
                    device.clocks.restored(slot, mono, age, *at, &mut ctx);
                }
            }
            // Announced as restored: the first change after this is an event.
            let heartbeat = device.clocks.channels[HEARTBEAT].stage;
            device.grid = derive(&device.grid_inputs(heartbeat, device.clocks.stage()));
        }
    }

    /// Moves every channel whose deadline is due at `now` to its next stage; returns the
    /// next deadline, if any.
    pub(crate) fn expire_due(
        &mut self,
        now: Instant,
        times: StageTimes,
        changes: &mut Vec<StageChange>,
    ) -> Option<Instant> {
        while let Some((due, sn, slot)) = self.deadlines.pop_due(now) {
            let Some(device) = self.devices.get_mut(&sn) else {
                continue;
            };
            let mut ctx = StageCtx {
                sn: &device.sn,
                times,
                deadlines: &mut self.deadlines,
                changes,
                rescheduled: false,
            };
            device.clocks.expire(slot, due, now, &mut ctx);
        }
        self.deadlines.next()
    }

    /// Re-derives device `sn`'s grid presence from its values, status and stages (the
    /// clocks' view, kept current by arrivals and the stage timer); returns it when it
    /// changed since it was last announced (a new presence counts from `at`).
    pub(crate) fn refresh_grid(
        &mut self,
        sn: &str,
        at: SystemTime,
    ) -> Option<(Arc<str>, GridState)> {
        let device = self.devices.get_mut(sn)?;
        let grid = derive(&device.grid_inputs(
            device.clocks.channels[HEARTBEAT].stage,
            device.clocks.stage(),
        ))
        .after(&device.grid, Some(unix_ms(at)));
        (!grid.same_reading(&device.grid)).then(|| {
            device.grid = grid;
            (device.sn.clone(), grid)
        })
    }

    #[cfg(test)]
    pub(crate) fn pending_deadlines(&self) -> usize {
        self.deadlines.len()
    }
}

/// The heartbeat's channel slot (the phase voltages' channel).
const HEARTBEAT: usize = Channel::EmsHeartbeatReport as usize;

impl DeviceEntry {
    /// The device's serial, shared by everything that names the device.
    pub(crate) fn sn(&self) -> &Arc<str> {
        &self.sn
    }

    /// The number the device last published for `state`, if any.
    pub(crate) fn number(&self, state: &StateDef) -> Option<f64> {
        self.values.get(state)?.value.as_number()
    }

    /// When `channel` last had an update (any origin).
    pub(crate) fn channel_update(&self, channel: Channel) -> Option<SystemTime> {
        self.channel_updates[channel_slot(channel)]
    }

    /// A report of `channel` arrived whose value was held back: the channel reported,
    /// though no value of it changed.
    pub(crate) fn touch(&mut self, channel: Channel, at: SystemTime) {
        let update = &mut self.channel_updates[channel_slot(channel)];
        if update.is_none_or(|t| t < at) {
            *update = Some(at);
        }
    }

    /// What the grid derivation looks at, with the given stages.
    fn grid_inputs(&self, heartbeat: Option<Stage>, device: Option<Stage>) -> GridInputs {
        GridInputs {
            voltages: PHASE_VOLTAGES.map(|state| state.and_then(|s| self.number(s))),
            online: self.status.map(|(s, _)| s == DeviceStatus::Online),
            heartbeat,
            device,
        }
    }

    /// Merges a settings report (fields it leaves out keep their last value); returns
    /// the device's settings after the merge.
    pub(crate) fn set_settings(
        &mut self,
        reported: &DeviceSettings,
        at: SystemTime,
    ) -> DeviceSettings {
        let mut merged = self.settings.map(|(s, _)| s).unwrap_or_default();
        merged.merge(reported);
        self.settings = Some((merged, at));
        merged
    }

    pub(crate) fn settings(&self) -> Option<DeviceSettings> {
        self.settings.map(|(s, _)| s)
    }

    /// Records an online/offline report; true when the status changed.
    pub(crate) fn set_status(&mut self, status: DeviceStatus, at: SystemTime) -> bool {
        let changed = self.status.map(|(s, _)| s) != Some(status);
        self.status = Some((status, at));
        changed
    }

    /// Records one value: the state's slot takes it (in place: an unchanged value is not
    /// copied again) and its channel's update time moves forward.
    pub(crate) fn update(
        &mut self,
        state: &'static StateDef,
        value: ValueRef<'_>,
        out_of_range: bool,
        at: SystemTime,
        source: model::Provenance,
    ) {
        self.touch(state.channel, at);
        let Some(slot) = self.values.slot_mut(state) else {
            return;
        };
        match slot {
            Some(latest) => {
                value.assign_to(&mut latest.value);
                latest.out_of_range = out_of_range;
                latest.updated_at = at;
                latest.source = source;
            }
            None => {
                *slot = Some(LatestState {
                    device_sn: self.sn.clone(),
                    state,
                    value: value.to_value(),
                    out_of_range,
                    updated_at: at,
                    source,
                })
            }
        }
    }

    /// Every stored value, in catalog order.
    fn values(&self) -> impl Iterator<Item = &LatestState> {
        self.values.values()
    }

    /// The device at `now` (wall clock, for ages) and `mono` (monotonic, for stages: a
    /// snapshot is always current even between the stage timer's transitions).
    fn snapshot(&self, now: SystemTime, mono: Instant, times: StageTimes) -> DeviceSnapshot {
        let mut channels = Vec::new();
        let mut packs = Vec::new();
        let age = |at: SystemTime| now.duration_since(at).unwrap_or(Duration::ZERO);
        for ((channel, update), clock) in Channel::ALL
            .iter()
            .zip(self.channel_updates)
            .zip(&self.clocks.channels)
        {
            let Some(at) = update else { continue };
            if let Some(p) = channel.pack_index() {
                packs.push(p);
            }
            let silence = clock
                .last_push
                .map(|pushed| mono.saturating_duration_since(pushed));
            let stage = times.stage(*channel, silence);
            let wall_push = clock.last_push_wall;
            channels.push(ChannelSnapshot {
                channel: channel.as_str(),
                pack: channel.pack_index(),
                last_update_ms: Some(unix_ms(at)),
                age_secs: Some(age(at).as_secs_f64()),
                last_push_ms: wall_push.map(unix_ms),
                push_age_secs: wall_push.map(|w| age(w).as_secs_f64()),
                stage,
                stale: stage != Stage::Fresh,
            });
        }
        let heartbeat = channels
            .iter()
            .find(|c| c.channel == Channel::EmsHeartbeatReport.as_str())
            .map(|c| c.stage);
        let stage = crate::stage::device_stage(channels.iter().map(|c| c.stage));
        DeviceSnapshot {
            // Between the stage timer's transitions a snapshot may be ahead of the
            // announced presence: then it is new, since a moment not yet announced.
            grid: derive(&self.grid_inputs(heartbeat, stage)).after(&self.grid, None),
            device_sn: self.sn.to_string(),
            online: self.status.map(|(s, _)| s == DeviceStatus::Online),
            status_ms: self.status.map(|(_, at)| unix_ms(at)),
            last_update_ms: self
                .channel_updates
                .iter()
                .flatten()
                .max()
                .map(|t| unix_ms(*t)),
            stage,
            channels,
            packs,
            state_count: self.values().count(),
            settings: self.settings.map(|(s, _)| s),
            settings_ms: self.settings.map(|(_, at)| unix_ms(at)),
        }
    }
}

#[cfg(test)]
#[path = "latest_tests.rs"]
mod tests;
