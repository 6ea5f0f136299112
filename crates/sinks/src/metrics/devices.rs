//! The health set per device: online, state count, out-of-range count, last-update age,
//! stage and grid presence; per channel stale flag, stage, last-update and last-push ages.

use std::time::SystemTime;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use model::GridPresence;

use super::{FloatGauge, Labels};

/// The health set: per device online, state count, out-of-range count, last-update age,
/// stage and grid presence; per channel stale flag, stage, last-update and last-push ages.
pub(super) fn device_health(
    registry: &mut Registry,
    devices: &[store::DeviceSnapshot],
    out_of_range: &[usize],
    now: SystemTime,
) {
    let online = Family::<Labels, FloatGauge>::default();
    let states = Family::<Labels, Gauge>::default();
    let oor = Family::<Labels, Gauge>::default();
    let last = Family::<Labels, FloatGauge>::default();
    let device_stage = Family::<Labels, FloatGauge>::default();
    let stale = Family::<Labels, FloatGauge>::default();
    let stage = Family::<Labels, FloatGauge>::default();
    let age = Family::<Labels, FloatGauge>::default();
    let push_age = Family::<Labels, FloatGauge>::default();
    let now_ms = model::unix_ms(now);
    for (d, n_oor) in devices.iter().zip(out_of_range) {
        let device = vec![("device", d.device_sn.clone())];
        if let Some(on) = d.online {
            online
                .get_or_create(&device)
                .set(if on { 1.0 } else { 0.0 });
        }
        states
            .get_or_create(&device)
            .set(i64::try_from(d.state_count).unwrap_or(i64::MAX));
        oor.get_or_create(&device)
            .set(i64::try_from(*n_oor).unwrap_or(i64::MAX));
        if let Some(ms) = d.last_update_ms {
            last.get_or_create(&device)
                .set(now_ms.saturating_sub(ms).max(0) as f64 / 1000.0);
        }
        if let Some(s) = d.stage {
            device_stage
                .get_or_create(&device)
                .set(f64::from(s.level()));
        }
        for c in &d.channels {
            let l = vec![
                ("device", d.device_sn.clone()),
                ("channel", c.channel.to_string()),
            ];
            stale.get_or_create(&l).set(if c.stale { 1.0 } else { 0.0 });
            stage.get_or_create(&l).set(f64::from(c.stage.level()));
            if let Some(a) = c.age_secs {
                age.get_or_create(&l).set(a);
            }
            if let Some(a) = c.push_age_secs {
                push_age.get_or_create(&l).set(a);
            }
        }
    }
    registry.register(
        "device_online",
        "1 when the device last reported online, 0 offline",
        online,
    );
    registry.register(
        "device_states",
        "How many of the 216 catalog states of the device have a value",
        states,
    );
    registry.register(
        "device_states_out_of_range",
        "How many of the device's latest values lie outside the catalog range",
        oor,
    );
    registry.register_with_unit(
        "device_last_update_age",
        "Time since the device last reported any state",
        Unit::Seconds,
        last,
    );
    registry.register(
        "device_stage",
        "Stage of the device's freshest channel: 0 fresh, 1 stale, 2 unavailable",
        device_stage,
    );
    registry.register(
        "channel_stage",
        "Stage of the channel: 0 fresh, 1 stale (no pushed report for stale_after_cadences cadences), 2 unavailable (none for unavailable_after)",
        stage,
    );
    registry.register_with_unit(
        "channel_last_push_age",
        "Time since the device last pushed a report of the channel (quota polls do not count)",
        Unit::Seconds,
        push_age,
    );
    registry.register(
        "channel_stale",
        "1 when a channel is stale or unavailable (no pushed report for stale_after_cadences times its cadence)",
        stale,
    );
    registry.register_with_unit(
        "channel_last_update_age",
        "Time since the channel last reported",
        Unit::Seconds,
        age,
    );
    grid(registry, devices);
}

/// Grid presence (protocol §13): `grid_present` 1 present / 0 lost, absent while
/// unknown — an alert on `== 0` fires on a loss, never on a device that says nothing —
/// and `grid_known` 1 / 0, always there for every device (an absent series is hard to
/// alert on; Prometheus's advice: export what you know, 0 included).
fn grid(registry: &mut Registry, devices: &[store::DeviceSnapshot]) {
    let present = Family::<Labels, Gauge>::default();
    let known = Family::<Labels, Gauge>::default();
    for d in devices {
        let device = vec![("device", d.device_sn.clone())];
        let presence = d.grid.presence;
        known
            .get_or_create(&device)
            .set(i64::from(presence != GridPresence::Unknown));
        let value = match presence {
            GridPresence::Present => Some(1),
            GridPresence::Lost => Some(0),
            GridPresence::Unknown => None,
        };
        if let Some(v) = value {
            present.get_or_create(&device).set(v);
        }
    }
    registry.register(
        "grid_present",
        "1 while the grid is present, 0 while it is lost, absent while unknown (from the meter's phase voltages, protocol §13; low confidence on the Fit)",
        present,
    );
    registry.register(
        "grid_known",
        "1 while the device's grid presence is known, 0 while it is unknown (no phase voltage, or the device is offline or silent)",
        known,
    );
}
