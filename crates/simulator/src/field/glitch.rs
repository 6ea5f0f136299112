//! Bad samples the devices send now and then (protocol §11, last paragraph), injected into
//! single reports at a configured rate with a seeded generator (the same seed and the same
//! reports give the same injections):
//! - a placeholder that is not a reading: a percentage of 4294967295 (UINT32 max), or a
//!   lifetime counter of exactly 0;
//! - a counter that dips: it reads 1 less (in its catalog unit) than the report before.
//!
//! Each lasts one report; the next carries the truth again. What was injected is returned
//! so the device can count it by kind in `/sim/stats`.

use std::collections::HashMap;

use catalog::{Kind, StateDef};
use protocol::Value;
use protocol::pb::ProtoType;

use crate::physics::profile::Noise;
use crate::reports::States;

/// Lifetime counters: they only ever grow (the BMS's charge and discharge throughput, its
/// cycle count).
pub const LIFETIME_COUNTERS: [&str; 3] = [
    "CloudBmsInfoReport.bpAccuChgCap",
    "CloudBmsInfoReport.bpAccuDsgCap",
    "CloudBmsInfoReport.bpCycles",
];

/// The lifetime counters that can read a placeholder 0 (§11: a lifetime *energy* counter
/// of exactly 0). A cycle count of 0 is a new pack's true reading, so the bridge takes it
/// as one; injecting it would be a value the field does not send.
pub const ZERO_PLACEHOLDER_COUNTERS: [&str; 2] = [
    "CloudBmsInfoReport.bpAccuChgCap",
    "CloudBmsInfoReport.bpAccuDsgCap",
];

/// Daily counters: they grow through the day and reset at local midnight.
pub const DAY_COUNTERS: [&str; 6] = [
    "EMSHeartbeatReport.pvInDayEnergy",
    "EMSHeartbeatReport.bpInDayEnergy",
    "EMSHeartbeatReport.bpOutDayEnergy",
    "EMSHeartbeatReport.gridInDayEnergy",
    "EMSHeartbeatReport.gridOutDayEnergy",
    "EMSHeartbeatReport.loadDayEnergy",
];

/// What a percentage placeholder reads on the wire: UINT32 max.
pub const PERCENT_PLACEHOLDER: u32 = u32::MAX;

/// A kind of injected bad sample; [`BadSample::as_str`] is its `/sim/stats` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSample {
    /// A percentage read 4294967295.
    PercentPlaceholder,
    /// A lifetime counter read 0.
    CounterZero,
    /// A counter read 1 less than in the report before.
    CounterDip,
}

impl BadSample {
    pub fn as_str(self) -> &'static str {
        match self {
            BadSample::PercentPlaceholder => "placeholder_percent",
            BadSample::CounterZero => "placeholder_counter_zero",
            BadSample::CounterDip => "counter_dip",
        }
    }
}

fn is_counter(key: &str) -> bool {
    LIFETIME_COUNTERS.contains(&key) || DAY_COUNTERS.contains(&key)
}

/// A percentage the wire carries as uint32 (the only kind that can read UINT32 max).
fn is_uint32_percent(s: &StateDef) -> bool {
    s.kind == Kind::Number
        && s.unit == "%"
        && protocol::schema::tables()
            .channel(s.channel)
            .field_for(s)
            .is_some_and(|f| f.ty == ProtoType::Uint32 && !f.repeated)
}

/// The injector of one device.
#[derive(Debug, Clone)]
pub struct Glitches {
    placeholder_rate: f64,
    dip_rate: f64,
    rng: Noise,
    /// Per (slot, counter): what the report before carried, when that was the true
    /// value. The slot tells apart the packs the BMS reports in turn (each has its own
    /// lifetime counters under the same state).
    last_true: HashMap<(usize, &'static str), f64>,
}

impl Glitches {
    pub fn new(placeholder_rate: f64, dip_rate: f64, seed: u64) -> Glitches {
        Glitches {
            placeholder_rate,
            dip_rate,
            // Its own stream: the weather and the load stay what they are without faults.
            rng: Noise::new(seed.rotate_left(17) ^ 0x0BAD_5A3B),
            last_true: HashMap::new(),
        }
    }

    /// A draw against `rate` (none at all when off, so switching one kind off does not
    /// change where the other falls).
    fn hit(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.uniform() < rate
    }

    fn pick(&mut self, n: usize) -> usize {
        ((self.rng.uniform() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// Injects into one report as it goes on the wire — `slot` names whose values it
    /// carries (the pack, for the BMS report; 0 elsewhere) — and returns each injection
    /// with the state's key.
    pub(crate) fn inject(
        &mut self,
        states: &mut States,
        slot: usize,
    ) -> Vec<(BadSample, &'static str)> {
        let mut out = Vec::new();
        let mut touched = Vec::new();
        let placeholders: Vec<usize> = (0..states.len())
            .filter(|&i| {
                let s = states[i].0;
                ZERO_PLACEHOLDER_COUNTERS.contains(&s.key) || is_uint32_percent(s)
            })
            .collect();
        if !placeholders.is_empty() && self.hit(self.placeholder_rate) {
            let i = placeholders[self.pick(placeholders.len())];
            let (s, v) = &mut states[i];
            let kind = if ZERO_PLACEHOLDER_COUNTERS.contains(&s.key) {
                *v = Value::Number(0.0);
                BadSample::CounterZero
            } else {
                *v = Value::Number(f64::from(PERCENT_PLACEHOLDER) * s.mult);
                BadSample::PercentPlaceholder
            };
            out.push((kind, s.key));
            touched.push(i);
        }
        // A dip needs a true value in the report before, at least 1, that the counter has
        // not fallen below since (a midnight reset is no place for a dip).
        let dips: Vec<(usize, f64)> = (0..states.len())
            .filter(|i| !touched.contains(i))
            .filter_map(|i| {
                let (s, v) = &states[i];
                let now = v.as_number()?;
                let before = *self.last_true.get(&(slot, s.key))?;
                (before >= 1.0 && now >= before).then_some((i, before))
            })
            .collect();
        let counters = states.iter().any(|(s, _)| is_counter(s.key));
        if counters && self.hit(self.dip_rate) && !dips.is_empty() {
            let (i, before) = dips[self.pick(dips.len())];
            let (s, v) = &mut states[i];
            *v = Value::Number(before - 1.0);
            out.push((BadSample::CounterDip, s.key));
            touched.push(i);
        }
        for (i, (s, v)) in states.iter().enumerate() {
            if !is_counter(s.key) {
                continue;
            }
            match v.as_number() {
                Some(n) if !touched.contains(&i) => {
                    self.last_true.insert((slot, s.key), n);
                }
                _ => {
                    self.last_true.remove(&(slot, s.key));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::Channel;

    fn bms(accu: f64, cycles: f64, soc: f64) -> States {
        [
            ("bpAccuChgCap", accu),
            ("bpCycles", cycles),
            ("bpDownLimitSoc", soc),
            ("bpVol", 52.1),
        ]
        .iter()
        .map(|(n, v)| {
            (
                catalog::find(Channel::CloudBmsInfoReport, n).unwrap(),
                Value::Number(*v),
            )
        })
        .collect()
    }

    #[test]
    fn percent_candidates_are_the_uint32_percentages() {
        let key = |c, n| catalog::find(c, n).unwrap();
        assert!(is_uint32_percent(key(Channel::EnergyStreamItem, "bpSoc")));
        assert!(is_uint32_percent(key(Channel::EmsHeartbeatReport, "bpSoc")));
        // A float percentage or a uint32 that is no percentage is not one.
        assert!(!is_uint32_percent(key(Channel::BpInfo0, "bpSoc")));
        assert!(!is_uint32_percent(key(
            Channel::EmsHeartbeatReport,
            "bpDsgTime"
        )));
    }

    #[test]
    fn off_injects_nothing_and_rate_one_always_injects() {
        let mut off = Glitches::new(0.0, 0.0, 7);
        for i in 0..100 {
            let mut s = bms(1000.0 + f64::from(i), 40.0, 10.0);
            assert!(off.inject(&mut s, 0).is_empty());
        }
        let mut always = Glitches::new(1.0, 1.0, 7);
        let mut first = bms(1000.0, 40.0, 10.0);
        let got = always.inject(&mut first, 0);
        // No dip without a report before.
        assert_eq!(got.len(), 1, "{got:?}");
        let mut kinds = std::collections::BTreeMap::new();
        for i in 1..200 {
            let mut s = bms(1000.0 + f64::from(i / 3), 40.0, 10.0);
            let truth = s.clone();
            let got = always.inject(&mut s, 0);
            assert!(!got.is_empty());
            for (kind, key) in got {
                *kinds.entry(kind.as_str()).or_insert(0) += 1;
                let (def, v) = s.iter().find(|(d, _)| d.key == key).unwrap();
                let true_v = truth.iter().find(|(d, _)| d.key == key).unwrap().1.clone();
                match kind {
                    BadSample::CounterZero => {
                        assert_eq!(v, &Value::Number(0.0));
                        assert_ne!(def.name, "bpCycles", "a cycle count of 0 is a reading");
                    }
                    BadSample::PercentPlaceholder => {
                        assert_eq!(def.name, "bpDownLimitSoc");
                        assert_eq!(v, &Value::Number(4_294_967_295.0));
                    }
                    BadSample::CounterDip => {
                        let dipped = v.as_number().unwrap();
                        assert!(dipped < true_v.as_number().unwrap(), "{key}");
                    }
                }
            }
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }

    #[test]
    fn a_dip_is_one_below_the_report_before_and_never_at_a_reset() {
        let mut g = Glitches::new(0.0, 1.0, 3);
        let mut before = bms(500.0, 40.0, 10.0);
        assert!(g.inject(&mut before, 0).is_empty());
        // Another pack's report is no report before.
        assert!(g.inject(&mut bms(501.0, 41.0, 10.0), 1).is_empty());
        let mut next = bms(500.0, 40.0, 10.0);
        let got = g.inject(&mut next, 0);
        let (_, key) = got[0];
        let v = next
            .iter()
            .find(|(d, _)| d.key == key)
            .unwrap()
            .1
            .as_number();
        assert!(v == Some(499.0) || v == Some(39.0), "{key} {v:?}");
        // Fallen below the report before (a reset): no dip there.
        let mut g = Glitches::new(0.0, 1.0, 3);
        g.inject(&mut bms(500.0, 40.0, 10.0), 0);
        let mut reset = bms(2.0, 0.0, 10.0);
        assert!(g.inject(&mut reset, 0).is_empty());
    }

    #[test]
    fn the_same_seed_injects_the_same() {
        let run = |seed| {
            let mut g = Glitches::new(0.3, 0.3, seed);
            (0..100)
                .flat_map(|i| g.inject(&mut bms(100.0 + f64::from(i), 40.0, 10.0), 0))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
