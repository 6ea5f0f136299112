//! Two paths, one truth (docs/modbus.md): for each state the device's Modbus TCP reports
//! (protocol §14: load, grid, solar, battery power, SoC), the last number each path gave
//! and when. It decides which path's value becomes the latest one — the preferred path
//! while it is fresh, else whichever is fresh (failover) — and gives the difference
//! between the two while both are fresh. States no Modbus reading ever carried are not
//! tracked: the cloud alone costs nothing here.
//!
//! A cloud poll (protocol §8) is no proof of life: it never makes the cloud path fresh,
//! and it never replaces a fresh Modbus value.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use model::{PathRules, Provenance};

/// The last number of one path: the value and when it came.
type Last = Option<(f64, SystemTime)>;

#[derive(Debug, Default, Clone, Copy)]
struct Pair {
    cloud: Last,
    modbus: Last,
}

/// The two paths' values of the states both report.
#[derive(Debug, Default)]
pub(crate) struct Paths {
    rules: PathRules,
    by_state: HashMap<(Arc<str>, &'static str), Pair>,
}

/// One state both paths reported recently, and how far apart they are.
#[derive(Debug, Clone, PartialEq)]
pub struct PathDifference {
    pub device: Arc<str>,
    pub key: &'static str,
    pub cloud: f64,
    pub modbus: f64,
    /// `cloud - modbus`.
    pub difference: f64,
}

impl Paths {
    pub(crate) fn set_rules(&mut self, rules: PathRules) {
        self.rules = rules;
    }

    fn fresh(&self, last: Last, at: SystemTime) -> bool {
        last.is_some_and(|(_, t)| at.duration_since(t).unwrap_or_default() < self.rules.stale_after)
    }

    /// Notes a value arriving on `source`; `true` when it becomes the latest value.
    pub(crate) fn admit(
        &mut self,
        sn: &Arc<str>,
        key: &'static str,
        source: Provenance,
        number: Option<f64>,
        at: SystemTime,
    ) -> bool {
        if source == Provenance::Modbus {
            let pair = self.by_state.entry((sn.clone(), key)).or_default();
            pair.modbus = number.map(|n| (n, at));
            let pair = *pair;
            return self.rules.prefer_modbus || !self.fresh(pair.cloud, at);
        }
        if self.by_state.is_empty() {
            return true;
        }
        let Some(pair) = self.by_state.get_mut(&(sn.clone(), key)) else {
            return true;
        };
        if source == Provenance::CloudPush {
            pair.cloud = number.map(|n| (n, at));
        }
        let pair = *pair;
        let modbus_fresh = self.fresh(pair.modbus, at);
        match source {
            Provenance::CloudPush => !(self.rules.prefer_modbus && modbus_fresh),
            _ => !modbus_fresh,
        }
    }

    /// Every state a Modbus reading ever carried, by device (a few per device).
    pub(crate) fn tracked(&self) -> Vec<(Arc<str>, &'static str)> {
        let mut out: Vec<_> = self.by_state.keys().cloned().collect();
        out.sort();
        out
    }

    /// The states whose two paths are both fresh at `now`, with their difference.
    pub(crate) fn differences(&self, now: SystemTime) -> Vec<PathDifference> {
        let mut out: Vec<PathDifference> = self
            .by_state
            .iter()
            .filter(|(_, p)| self.fresh(p.cloud, now) && self.fresh(p.modbus, now))
            .filter_map(|((sn, key), p)| {
                let (cloud, _) = p.cloud?;
                let (modbus, _) = p.modbus?;
                Some(PathDifference {
                    device: sn.clone(),
                    key,
                    cloud,
                    modbus,
                    difference: cloud - modbus,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.device, a.key).cmp(&(&b.device, b.key)));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const KEY: &str = "EnergyStreamItem.pvPwr";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_preferred_path_wins_while_fresh_and_the_other_takes_over_when_it_is_stale() {
        let sn: Arc<str> = "SN1".into();
        let mut paths = Paths::default();
        use Provenance::*;
        // Cloud only: nothing tracked, every value goes through.
        assert!(paths.admit(&sn, KEY, CloudPush, Some(1.0), at(100)));
        // Modbus first: no fresh cloud value of this state yet, so it shows.
        assert!(paths.admit(&sn, KEY, Modbus, Some(2.0), at(100)));
        assert!(paths.admit(&sn, KEY, CloudPush, Some(1.5), at(101)));
        // Both fresh: the cloud is preferred by default.
        assert!(!paths.admit(&sn, KEY, Modbus, Some(2.0), at(102)));
        assert_eq!(paths.differences(at(103))[0].difference, -0.5);
        // The cloud goes quiet: past `stale_after` Modbus shows (failover).
        assert!(paths.admit(&sn, KEY, Modbus, Some(2.2), at(112)));
        assert!(paths.differences(at(112)).is_empty());
        // A poll never replaces a fresh Modbus value, nor makes the cloud fresh.
        assert!(!paths.admit(&sn, KEY, CloudPoll, Some(9.0), at(113)));
        assert!(paths.admit(&sn, KEY, Modbus, Some(2.3), at(114)));
        // The cloud pushes again: it is back at once.
        assert!(paths.admit(&sn, KEY, CloudPush, Some(2.0), at(115)));

        paths.set_rules(PathRules {
            prefer_modbus: true,
            ..PathRules::default()
        });
        assert!(paths.admit(&sn, KEY, Modbus, Some(2.4), at(116)));
        assert!(!paths.admit(&sn, KEY, CloudPush, Some(2.0), at(117)));
        assert!(paths.admit(&sn, KEY, CloudPush, Some(2.0), at(130)));
    }
}
