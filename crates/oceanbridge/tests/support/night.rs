//! What the field-night proofs start, read and compare: a bridge on the simulator, both bridges' `pvPwr` sampled through a
//! night and the night as the wire had it (the last 96/33 with `pv_pwr`, the first
//! without, the first with it again; protocol §11), grid presence in `/api/devices` and
//! the heartbeats whose meter phase voltages say the grid is up or down (§13), and the
//! daily counters a heartbeat carried.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use catalog::Channel;
use serde_json::Value as Json;
use simulator::field::glitch::DAY_COUNTERS;

use simulator::Simulator;

use super::wire::Heard;
use super::{Bridge, source_section, state_row, write_ca};

/// `[source]` for the simulator's app route, `extra` sections, and a dashboard.
pub fn bridge_config(sim: &Simulator, sn: &str, dir: &Path, extra: &str) -> String {
    let ca = write_ca(sim, dir);
    format!(
        "{}\n{extra}[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(sim, &[sn], Some(&ca))
    )
}

/// The bridge on the simulator (app route) and its directory (removed when dropped).
pub fn start_bridge(
    sn: &str,
    name: &str,
    sim: &Simulator,
    extra: &str,
) -> (Bridge, testkit::TempDir) {
    let dir = testkit::temp_dir(name);
    let config = bridge_config(sim, sn, dir.path(), extra);
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    (bridge, dir)
}

/// The numeric value of `key` and the age of its channel's last frame, on `bridge`
/// (for device `sn`).
pub async fn read(bridge: &Bridge, sn: &str, key: &str) -> (Option<f64>, Option<f64>) {
    let states = bridge
        .get_json(&format!("/api/states?device={sn}"), None)
        .await;
    let row = state_row(&states, key);
    let value = row.as_ref().and_then(|r| r["value"].as_f64());
    let age = row.as_ref().and_then(|r| r["age_secs"].as_f64());
    (value, age)
}

/// One look at both bridges.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub filled: Option<f64>,
    pub kept: Option<f64>,
    /// The age of the zero-filling bridge's `pvPwr`: the time since its last 96/33.
    pub filled_age: Option<f64>,
}

/// The night on the wire: the last 96/33 with `pv_pwr`, the first without, the first
/// with it again, and the frames in between.
pub struct Night {
    pub last_light: Heard,
    pub sunset: Heard,
    pub sunrise: Heard,
    pub frames: usize,
}

pub fn night_on_the_wire(stream: &[Heard], pv: &str) -> Option<Night> {
    let dark = stream
        .iter()
        .position(|h| !h.numbers.contains_key(pv))
        .filter(|&i| i > 0)?;
    let light_again = dark
        + stream[dark..]
            .iter()
            .position(|h| h.numbers.contains_key(pv))?;
    Some(Night {
        last_light: stream[dark - 1].clone(),
        sunset: stream[dark].clone(),
        sunrise: stream[light_again].clone(),
        frames: light_again - dark,
    })
}

/// What one bridge showed between `from` and `until`: the samples, how many read `want`,
/// the longest time between two of them.
pub fn held(
    samples: &[Sample],
    from: Instant,
    until: Instant,
    pick: impl Fn(&Sample) -> Option<f64>,
    want: f64,
) -> (usize, usize, Duration) {
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= from && s.at < until)
        .collect();
    let matching = window
        .iter()
        .filter(|s| pick(s).is_some_and(|v| (v - want).abs() < 1e-6))
        .count();
    let gap = window
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .max()
        .unwrap_or_default();
    (window.len(), matching, gap)
}

/// `sn`'s grid presence in `/api/devices`.
pub async fn presence(bridge: &Bridge, sn: &str) -> Option<String> {
    let devices: Json = bridge.get_json("/api/devices", None).await;
    devices["devices"]
        .as_array()?
        .iter()
        .find(|d| d["device_sn"] == sn)?["grid"]["presence"]
        .as_str()
        .map(str::to_string)
}

/// Polls `/api/devices` until the presence reads `want`; when it first did.
pub async fn until_presence(bridge: &Bridge, sn: &str, want: &str, deadline: Instant) -> Instant {
    loop {
        let seen = presence(bridge, sn).await;
        if seen.as_deref() == Some(want) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "grid presence {seen:?}, never {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first heartbeat from `from` on whose meter phase voltages say `up` (any above
/// 50 V, docs/field-behaviour.md) or not.
pub fn heartbeat_where(heard: &[Heard], from: Instant, up: bool) -> Option<Instant> {
    const PHASES: [&str; 3] = [
        "EMSHeartbeatReport.meterAVoltage",
        "EMSHeartbeatReport.meterBVoltage",
        "EMSHeartbeatReport.meterCVoltage",
    ];
    heard
        .iter()
        .filter(|h| h.at >= from && h.has(Channel::EmsHeartbeatReport))
        .find(|h| {
            let volts: Vec<f64> = PHASES
                .iter()
                .filter_map(|k| h.numbers.get(k))
                .copied()
                .collect();
            !volts.is_empty() && volts.iter().any(|v| *v > 50.0) == up
        })
        .map(|h| h.at)
}

/// The six daily counters of one wire heartbeat that carried any of them.
pub fn day_counters(h: &Heard) -> Option<BTreeMap<&'static str, f64>> {
    let values: BTreeMap<_, _> = DAY_COUNTERS
        .iter()
        .filter_map(|k| Some((*k, *h.numbers.get(k)?)))
        .collect();
    (!values.is_empty()).then_some(values)
}
