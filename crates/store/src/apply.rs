//! [`StateStore::apply`] and [`StateStore::apply_polled`]: one decoded payload into the
//! latest values, the stages, the history and the events — after the guard
//! ([`crate::guard`]) held back placeholders and backward counter steps, and only for
//! devices the store has room for (`[store] max_devices`). What was held back comes back
//! as [`Held`], for the pipeline to count.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use protocol::{DeviceSettings, DeviceStatus, PayloadView, ValueRef};
use tokio::time::Instant;

use crate::guard::{Held, Verdict, judge};
use crate::history::HistorySample;
use crate::slots::channel_slot;
use crate::stage::Arrival;
use crate::state_store::{StateStore, lock, write};
use model::{Provenance, StateChange, StoreEvent};

/// The payload's updates as runs of consecutive updates of one device (a payload
/// normally is one run: one device).
fn device_runs(decoded: &impl PayloadView) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = decoded.update(start)?.device_sn;
        let end = (start + 1..decoded.len())
            .find(|&i| decoded.update(i).is_none_or(|u| u.device_sn != first))
            .unwrap_or(decoded.len());
        let run = start..end;
        start = end;
        Some(run)
    })
}

/// Serials a payload found no room for, each counted once.
#[derive(Default)]
struct Refused<'a>(Vec<&'a str>);

impl<'a> Refused<'a> {
    fn add(&mut self, sn: &'a str) {
        if !self.0.contains(&sn) {
            self.0.push(sn);
        }
    }
}

impl StateStore {
    /// Applies one decoded payload that the device *pushed* (an MQTT report or get-all
    /// answer) — a [`protocol::DecodedPayload`] or the pipeline's [`protocol::UpdateBuf`]:
    /// latest values, status, history queue, and an event; its channels become fresh.
    /// Returns what was held back (placeholders, backward counter steps, devices past
    /// `max_devices`), which reached nothing.
    ///
    /// Each device is looked up once per payload, values are updated in place, and the
    /// event is only built when someone subscribed, so a steady stream of reports
    /// allocates per payload, not per state (history samples aside: a changed value is
    /// copied into its sample).
    pub fn apply(&self, decoded: &impl PayloadView, received_at: SystemTime) -> Held {
        self.apply_from(
            decoded,
            received_at,
            Arrival::Pushed(Instant::now(), received_at),
            Provenance::CloudPush,
        )
    }

    /// Applies one reading of the device's own Modbus TCP interface (protocol §14): a
    /// live reading like a push (its channels become fresh), its values marked `modbus`
    /// and shown by the path rules ([`StateStore::set_path_rules`]).
    pub fn apply_modbus(&self, decoded: &impl PayloadView, received_at: SystemTime) -> Held {
        self.apply_from(
            decoded,
            received_at,
            Arrival::Pushed(Instant::now(), received_at),
            Provenance::Modbus,
        )
    }

    /// Like [`StateStore::apply`] for values an HTTP quota poll returned: they update the
    /// latest values and history, but prove nothing about the device (protocol §8: the
    /// cloud answers with the last known values even for a device offline for days), so
    /// no channel becomes fresh; a channel seen only through polls is unavailable.
    pub fn apply_polled(&self, decoded: &impl PayloadView, received_at: SystemTime) -> Held {
        self.apply_from(decoded, received_at, Arrival::Polled, Provenance::CloudPoll)
    }

    fn apply_from(
        &self,
        decoded: &impl PayloadView,
        received_at: SystemTime,
        arrival: Arrival,
        source: Provenance,
    ) -> Held {
        let inner = &self.inner;
        let mut held = Held::default();
        let mut refused = Refused::default();
        let mut grids = Vec::new();
        if let (Some(status), Some(sn)) = (decoded.status(), decoded.device_sn()) {
            let changed = {
                let mut latest = write(&inner.latest);
                let changed = latest
                    .device(sn)
                    .map(|d| (d.sn().clone(), d.set_status(status, received_at)));
                grids.extend(latest.refresh_grid(sn, received_at));
                changed
            };
            match changed {
                None => refused.add(sn),
                Some((device_sn, changed)) if changed || status == DeviceStatus::Offline => {
                    let _ = inner.events.send(Arc::new(StoreEvent::Status {
                        device_sn,
                        status,
                        at: received_at,
                    }));
                }
                Some(_) => {}
            }
        }
        if let (Some(reported), Some(sn)) = (decoded.settings(), decoded.device_sn())
            && !self.apply_settings(sn, reported, received_at)
        {
            refused.add(sn);
        }
        // Updates the guard held back, by index (in order; usually none).
        let mut rejected: Vec<usize> = Vec::new();
        let mut stage_changes = Vec::new();
        let runs = {
            let mut latest = write(&inner.latest);
            let mut paths = lock(&inner.paths);
            let mut runs: Vec<(Arc<str>, Range<usize>)> = Vec::with_capacity(1);
            let mut rescheduled = false;
            for range in device_runs(decoded) {
                let Some(first) = decoded.update(range.start) else {
                    continue;
                };
                let Some(device) = latest.device(first.device_sn) else {
                    refused.add(first.device_sn);
                    continue;
                };
                // How long each channel had been quiet before this payload (the guard's
                // missed-midnight rule).
                let quiet = catalog::Channel::ALL.map(|c| {
                    device
                        .channel_update(c)
                        .map(|t| received_at.duration_since(t).unwrap_or(Duration::ZERO))
                });
                let mut channels = 0u8;
                let sn = device.sn().clone();
                for i in range.clone() {
                    let Some(u) = decoded.update(i) else { continue };
                    let slot = channel_slot(u.state.channel);
                    channels |= 1 << slot;
                    match judge(u.state, u.value, || device.number(u.state), quiet[slot]) {
                        Verdict::Publish => {
                            let number = match u.value {
                                ValueRef::Number(n) => Some(n),
                                _ => None,
                            };
                            if paths.admit(&sn, u.state.key, source, number, received_at) {
                                device.update(
                                    u.state,
                                    u.value,
                                    u.out_of_range,
                                    received_at,
                                    source,
                                );
                            } else {
                                // The other path's fresh value stands (docs/modbus.md).
                                device.touch(u.state.channel, received_at);
                                rejected.push(i);
                            }
                        }
                        verdict => {
                            if verdict == Verdict::Placeholder {
                                held.placeholder += 1;
                            } else {
                                held.counter_backwards += 1;
                            }
                            device.touch(u.state.channel, received_at);
                            rejected.push(i);
                        }
                    }
                }
                let sn = device.sn().clone();
                rescheduled |=
                    latest.arrived(&sn, channels, arrival, inner.times, &mut stage_changes);
                grids.extend(latest.refresh_grid(&sn, received_at));
                runs.push((sn, range));
            }
            if rescheduled {
                inner.stage_timer.notify_one();
            }
            runs
        };
        held.device_limit = refused.0.len() as u64;
        let published = |range: &Range<usize>| {
            range
                .clone()
                .filter(|i| rejected.binary_search(i).is_err())
                .filter_map(|i| decoded.update(i))
        };
        // Stage changes first: a subscriber marks a channel available before its values.
        self.send_stage_changes(stage_changes, received_at);
        let samples: Vec<HistorySample> = {
            let mut filter = lock(&inner.filter);
            let mut samples = Vec::new();
            for (sn, range) in &runs {
                let mut device = filter.device(sn);
                for u in published(range) {
                    if device.admit(u.state, u.value, received_at) {
                        samples.push(HistorySample {
                            device_sn: sn.clone(),
                            state: u.state,
                            at: received_at,
                            value: u.value.to_value(),
                        });
                    }
                }
            }
            samples
        };
        if !samples.is_empty() {
            self.feed_taps(&samples);
            for s in samples {
                inner.history.push(s);
            }
        }
        // One event per device in the payload (payloads normally carry one device); with
        // nobody subscribed there is nothing to build.
        if inner.events.receiver_count() > 0 {
            let mut by_device: Vec<(Arc<str>, Vec<StateChange>)> = Vec::new();
            for (sn, range) in &runs {
                let changes = published(range).map(|u| StateChange {
                    state: u.state,
                    value: u.value.to_value(),
                    out_of_range: u.out_of_range,
                });
                match by_device.iter_mut().find(|(d, _)| Arc::ptr_eq(d, sn)) {
                    Some((_, all)) => all.extend(changes),
                    None => by_device.push((sn.clone(), changes.collect())),
                }
            }
            for (device_sn, changes) in by_device.into_iter().filter(|(_, c)| !c.is_empty()) {
                let _ = inner.events.send(Arc::new(StoreEvent::States {
                    device_sn,
                    at: received_at,
                    changes,
                    source,
                }));
            }
        }
        self.send_grid_changes(grids, received_at);
        held
    }

    /// A 96/8 settings report (protocol §10): merged into the device's settings and
    /// announced as [`StoreEvent::Settings`]. Not a catalog channel: no stage, no history.
    /// False when the store has no room for the device.
    fn apply_settings(&self, sn: &str, reported: &DeviceSettings, at: SystemTime) -> bool {
        let merged = {
            let mut latest = write(&self.inner.latest);
            latest
                .device(sn)
                .map(|d| (d.sn().clone(), d.set_settings(reported, at)))
        };
        let Some((device_sn, settings)) = merged else {
            return false;
        };
        let _ = self.inner.events.send(Arc::new(StoreEvent::Settings {
            device_sn,
            settings,
        }));
        true
    }
}
