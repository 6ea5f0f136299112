//! Which catalog states are energy counters: values that only grow — over the device's
//! life, or over a day (reset at local midnight) — as opposed to readings that go up and
//! down. Home Assistant's Energy dashboard sums counters forever, so the store guards
//! them against backward steps, and the sinks announce them as totals.
//!
//! One table, by catalog key: every state not in it is not a counter. From the catalog
//! (spec 1.4.0): the heartbeat's six `*DayEnergy` (Wh) count today's energy. The BMS's
//! accumulated charge and discharge (`bpAccuChgCap`, `bpAccuDsgCap`, mAh) and its cycle
//! count grow for a pack's life, but the 96/111 report describes the packs in turn under
//! these same states (`bpSn` names the pack), so each of them reads 40, 47, 40, 47… on a
//! two-pack system: one pack's counter, not one series. They are [`CounterKind::PackLifetime`]:
//! their placeholders are dropped (protocol §11), but no backward step is held and no
//! sink announces them as totals. Not counters although they look alike: design and full
//! capacity (`bpDesignCap`, `bpFullCap`: the pack's size, which ageing lowers) and the
//! remaining energy (`bpRemainWatth`: a level, like the SoC).
use std::sync::LazyLock;

use catalog::StateDef;

/// How a state's value evolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterKind {
    /// Not a counter: a reading that may go up and down.
    NotACounter,
    /// Grows for the device's life and never resets: one series.
    Lifetime,
    /// Grows over a day and falls back to 0 at local midnight: one series.
    Daily,
    /// Grows for a battery pack's life, but the report takes the packs in turn under the
    /// same state: not one series (see the module doc).
    PackLifetime,
}

impl CounterKind {
    /// Short name (`none`, `lifetime`, `daily`, `pack_lifetime`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CounterKind::NotACounter => "none",
            CounterKind::Lifetime => "lifetime",
            CounterKind::Daily => "daily",
            CounterKind::PackLifetime => "pack_lifetime",
        }
    }

    /// A counter of any kind (its placeholders are dropped).
    pub const fn is_counter(self) -> bool {
        !matches!(self, CounterKind::NotACounter)
    }

    /// One series that only grows (apart from a daily reset): what the store guards
    /// against backward steps and the sinks announce as a total.
    pub const fn is_series(self) -> bool {
        matches!(self, CounterKind::Lifetime | CounterKind::Daily)
    }
}

/// Every counter of the catalog, by key.
pub const COUNTERS: [(&str, CounterKind); 9] = [
    ("CloudBmsInfoReport.bpAccuChgCap", CounterKind::PackLifetime),
    ("CloudBmsInfoReport.bpAccuDsgCap", CounterKind::PackLifetime),
    ("CloudBmsInfoReport.bpCycles", CounterKind::PackLifetime),
    ("EMSHeartbeatReport.pvInDayEnergy", CounterKind::Daily),
    ("EMSHeartbeatReport.bpInDayEnergy", CounterKind::Daily),
    ("EMSHeartbeatReport.bpOutDayEnergy", CounterKind::Daily),
    ("EMSHeartbeatReport.gridInDayEnergy", CounterKind::Daily),
    ("EMSHeartbeatReport.gridOutDayEnergy", CounterKind::Daily),
    ("EMSHeartbeatReport.loadDayEnergy", CounterKind::Daily),
];

/// [`COUNTERS`] by catalog index (looked up per decoded state, so an array).
static BY_INDEX: LazyLock<Vec<CounterKind>> = LazyLock::new(|| {
    catalog::STATES
        .iter()
        .map(|s| {
            COUNTERS
                .iter()
                .find(|(key, _)| *key == s.key)
                .map_or(CounterKind::NotACounter, |(_, kind)| *kind)
        })
        .collect()
});

/// The counter kind of a catalog state.
#[inline]
pub fn counter_kind(state: &StateDef) -> CounterKind {
    BY_INDEX
        .get(state.index)
        .copied()
        .unwrap_or(CounterKind::NotACounter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::Kind;

    #[test]
    fn every_counter_is_a_catalog_number() {
        for (key, _) in COUNTERS {
            let state = catalog::by_key(key).unwrap_or_else(|| panic!("{key} not in catalog"));
            assert_eq!(state.kind, Kind::Number, "{key}");
        }
    }

    #[test]
    fn the_counters_are_exactly_these_and_no_other_state_is_one() {
        let of = |kind| -> Vec<&str> {
            catalog::STATES
                .iter()
                .filter(|s| counter_kind(s) == kind)
                .map(|s| s.key)
                .collect()
        };
        assert!(of(CounterKind::Lifetime).is_empty());
        assert_eq!(
            of(CounterKind::PackLifetime),
            [
                "CloudBmsInfoReport.bpCycles",
                "CloudBmsInfoReport.bpAccuChgCap",
                "CloudBmsInfoReport.bpAccuDsgCap",
            ]
        );
        assert_eq!(
            of(CounterKind::Daily),
            [
                "EMSHeartbeatReport.pvInDayEnergy",
                "EMSHeartbeatReport.bpInDayEnergy",
                "EMSHeartbeatReport.bpOutDayEnergy",
                "EMSHeartbeatReport.gridInDayEnergy",
                "EMSHeartbeatReport.gridOutDayEnergy",
                "EMSHeartbeatReport.loadDayEnergy",
            ]
        );
        assert_eq!(
            of(CounterKind::NotACounter).len(),
            catalog::STATE_COUNT - 9,
            "every other state is not a counter"
        );
        // The look-alikes that are levels or sizes, not counters.
        for key in [
            "CloudBmsInfoReport.bpDesignCap",
            "CloudBmsInfoReport.bpFullCap",
            "CloudBmsInfoReport.bpRemainWatth",
            "EMSHeartbeatReport.bpRemainWatth",
            "bpInfo0.bpRemainWatth",
            "EnergyStreamItem.pvPwr",
        ] {
            let state = catalog::by_key(key).expect("catalog key");
            assert!(!counter_kind(state).is_counter(), "{key}");
        }
        // Every Wh / mAh state is either a counter or one of those look-alikes.
        for s in catalog::STATES
            .iter()
            .filter(|s| ["Wh", "mAh"].contains(&s.unit))
        {
            let lookalike = s.name == "bpRemainWatth"
                || (s.name.ends_with("Cap") && !s.name.starts_with("bpAccu"));
            assert!(
                counter_kind(s).is_counter() != lookalike,
                "{} ({})",
                s.key,
                s.unit
            );
        }
    }
}
