//! What the field means beyond what a frame carries (protocol §11): what an *absent*
//! field means per report (zero, keep the last value, or a delta), which readings are
//! placeholders rather than readings, and [`FieldRules`], the switches of the service's
//! decode path ([`crate::UpdateBuf::decode_from_device`]).
//!
//! Rule 1 of §6 (a state only for a field present) stays the decoder's rule: `decode
//! --json` and the test vectors show exactly what a payload carries. The service applies
//! this module on top, so its store sees what the device means.

use std::sync::LazyLock;

use catalog::{Channel, StateDef};

use crate::counters::{CounterKind, counter_kind};
use crate::dispatch::MappedReport;
use crate::schema::tables;

/// What a field left out of a report means (protocol §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// The value is 0: the report is a full snapshot and proto3 leaves zeros out.
    Zero,
    /// Not reported: the last value stands.
    Keep,
    /// The report is a delta of what changed: the last value stands.
    Delta,
}

/// One row of the §11 table: in the report `cmd`, the fields `fields` (empty: every
/// other field of the report) mean `absence` when left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsenceRow {
    pub cmd: (i32, i32),
    pub fields: &'static [u32],
    pub absence: Absence,
}

/// The §11 table, row for row. Only the first row changes anything: the others say
/// what the store does anyway (an absent field updates nothing).
pub const ABSENCE_RULES: [AbsenceRow; 6] = [
    // 96/33 power fields: grid_pwr 1, dcdc_pwr 2, bp_pwr 3, pv_pwr 4, load_pwr 8,
    // bp_heating_power 9, heating_power 10. At night `pv_pwr` is simply missing.
    AbsenceRow {
        cmd: (96, 33),
        fields: &[1, 2, 3, 4, 8, 9, 10],
        absence: Absence::Zero,
    },
    // 96/33 timestamp 5, timezone 6, bp_soc 7: neither peer fills them.
    AbsenceRow {
        cmd: (96, 33),
        fields: &[],
        absence: Absence::Keep,
    },
    // The Fit sends explicit zeros in its heartbeat, pack and BMS reports.
    AbsenceRow {
        cmd: (96, 1),
        fields: &[],
        absence: Absence::Keep,
    },
    AbsenceRow {
        cmd: (96, 108),
        fields: &[],
        absence: Absence::Keep,
    },
    AbsenceRow {
        cmd: (96, 111),
        fields: &[],
        absence: Absence::Keep,
    },
    // 96/8 EmsChangeReport (settings read-back): a delta of what changed.
    AbsenceRow {
        cmd: (96, 8),
        fields: &[],
        absence: Absence::Delta,
    },
];

/// What leaving field `field` out of report `cmd` means (`None`: a report §11 does not
/// cover, e.g. an unknown pair).
pub fn absence_of(cmd: (i32, i32), field: u32) -> Option<Absence> {
    let rows = ABSENCE_RULES.iter().filter(|r| r.cmd == cmd);
    let mut fallback = None;
    for row in rows {
        if row.fields.contains(&field) {
            return Some(row.absence);
        }
        if row.fields.is_empty() {
            fallback = Some(row.absence);
        }
    }
    fallback
}

/// A state that reads 0 when its report leaves it out: its field's bit in the decoder's
/// set of fields seen, and the state.
pub(crate) type ZeroFill = (u128, &'static StateDef);

/// Per channel, the states that [`Absence::Zero`] fills (only the energy stream has any).
static ZERO_FILL: LazyLock<[Vec<ZeroFill>; 6]> = LazyLock::new(|| {
    Channel::ALL.map(|channel| {
        let cmd = MappedReport::for_channel(channel).cmd();
        let table = tables().channel(channel);
        ABSENCE_RULES
            .iter()
            .filter(|r| r.cmd == cmd && r.absence == Absence::Zero)
            .flat_map(|r| r.fields)
            .filter_map(|&number| {
                let state = table.fields.get(number)?.state?;
                Some((1u128.checked_shl(number).unwrap_or(0), state))
            })
            .collect()
    })
});

/// The states of `channel` that read 0 when absent, with their field bits.
pub(crate) fn zero_fill(channel: Channel) -> &'static [ZeroFill] {
    &ZERO_FILL[channel as usize]
}

/// The highest integer a uint32 field can carry: what a device sends for "no reading"
/// in a percentage (protocol §11).
pub const UINT32_PLACEHOLDER: f64 = u32::MAX as f64;

/// True when `value` (after Mult, as decoded) is a placeholder, not a reading (protocol
/// §11): a percentage of 4294967295 (UINT32 max) or more, or a lifetime energy or
/// charge counter of exactly 0. Such values are dropped and counted, never published.
///
/// The percentage is checked before Mult: every uint32 percentage has Mult 1, so it reads
/// the same after, while a float percentage with Mult 100 (the SoC coefficients) would
/// show 429496729500. A float cannot hold 4294967295 exactly (it rounds to 2^32), hence
/// "or more". No real percentage comes near either.
pub fn is_placeholder(state: &StateDef, value: f64) -> bool {
    match PLACEHOLDER[state.index] {
        Placeholder::Never => false,
        Placeholder::Uint32Max => value / state.mult >= UINT32_PLACEHOLDER,
        Placeholder::Zero => value == 0.0,
    }
}

/// Which placeholder a state can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Never,
    /// A percentage: UINT32 max.
    Uint32Max,
    /// A lifetime energy or charge counter: exactly 0.
    Zero,
}

/// Units of energy or charge: a lifetime counter in one of these never reads 0 (a pack's
/// cycle count may: a new pack has done none).
const ENERGY_UNITS: [&str; 4] = ["Wh", "kWh", "mAh", "Ah"];

static PLACEHOLDER: LazyLock<Vec<Placeholder>> = LazyLock::new(|| {
    catalog::STATES
        .iter()
        .map(|s| match (s.unit, counter_kind(s)) {
            ("%", _) => Placeholder::Uint32Max,
            (unit, CounterKind::Lifetime | CounterKind::PackLifetime)
                if ENERGY_UNITS.contains(&unit) =>
            {
                Placeholder::Zero
            }
            _ => Placeholder::Never,
        })
        .collect()
});

/// The service's decode rules on top of the decoder's (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRules {
    /// §11, first row: a 96/33 frame without a power field sets that state to 0 W.
    /// Default on; off only to diagnose (`[pipeline] stream_zero_fill = false`).
    pub stream_zero_fill: bool,
}

impl Default for FieldRules {
    fn default() -> FieldRules {
        FieldRules {
            stream_zero_fill: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &StateDef) -> &'static str {
        s.key
    }

    #[test]
    fn the_stream_power_fields_and_nothing_else_read_zero_when_absent() {
        let stream: Vec<_> = zero_fill(Channel::EnergyStreamItem)
            .iter()
            .map(|(_, s)| key(s))
            .collect();
        assert_eq!(
            stream,
            [
                "EnergyStreamItem.gridPwr",
                "EnergyStreamItem.dcdcPwr",
                "EnergyStreamItem.bpPwr",
                "EnergyStreamItem.pvPwr",
                "EnergyStreamItem.loadPwr",
                "EnergyStreamItem.bpHeatingPower",
                "EnergyStreamItem.heatingPower",
            ]
        );
        for (_, s) in zero_fill(Channel::EnergyStreamItem) {
            assert_eq!(s.unit, "W", "{}", s.key);
        }
        for channel in Channel::ALL {
            if channel != Channel::EnergyStreamItem {
                assert!(zero_fill(channel).is_empty(), "{channel:?}");
            }
        }
    }

    #[test]
    fn absence_follows_the_section_11_table() {
        assert_eq!(absence_of((96, 33), 4), Some(Absence::Zero));
        assert_eq!(absence_of((96, 33), 10), Some(Absence::Zero));
        for keep in [5, 6, 7] {
            assert_eq!(absence_of((96, 33), keep), Some(Absence::Keep), "{keep}");
        }
        assert_eq!(absence_of((96, 1), 13), Some(Absence::Keep));
        assert_eq!(absence_of((96, 108), 1), Some(Absence::Keep));
        assert_eq!(absence_of((96, 111), 10), Some(Absence::Keep));
        assert_eq!(absence_of((96, 8), 16), Some(Absence::Delta));
        assert_eq!(absence_of((96, 115), 2), None, "96/115 is no report");
    }

    #[test]
    fn placeholders_are_uint32_max_percentages_and_zero_energy_counters() {
        let state = |key| catalog::by_key(key).expect("catalog key");
        let soc = state("EMSHeartbeatReport.bpSoc");
        assert!(is_placeholder(soc, 4_294_967_295.0));
        assert!(!is_placeholder(soc, 4_294_967_294.0));
        assert!(!is_placeholder(soc, 100.0));
        assert!(!is_placeholder(soc, 0.0), "a percentage of 0 is a reading");
        // A float percentage with Mult 100: UINT32 max as an f32 is 2^32, times 100.
        let coeff = state("EMSHeartbeatReport.bp1SocCoefficient");
        assert_eq!(coeff.mult, 100.0);
        let (scaled, _) = crate::value::float_scaled(coeff, u32::MAX as f32);
        assert!(is_placeholder(coeff, scaled));
        assert!(!is_placeholder(coeff, 100.0));
        let charged = state("CloudBmsInfoReport.bpAccuChgCap");
        assert!(is_placeholder(charged, 0.0));
        assert!(!is_placeholder(charged, 0.001));
        assert!(!is_placeholder(
            state("CloudBmsInfoReport.bpAccuDsgCap"),
            12.5
        ));
        assert!(is_placeholder(
            state("CloudBmsInfoReport.bpAccuDsgCap"),
            0.0
        ));
        // A new pack has done no cycle; a day starts at 0 Wh; a power of 0 W is real.
        assert!(!is_placeholder(state("CloudBmsInfoReport.bpCycles"), 0.0));
        assert!(!is_placeholder(
            state("EMSHeartbeatReport.pvInDayEnergy"),
            0.0
        ));
        assert!(!is_placeholder(state("EnergyStreamItem.pvPwr"), 0.0));
        let with_placeholders: Vec<_> = catalog::STATES
            .iter()
            .filter(|s| PLACEHOLDER[s.index] == Placeholder::Zero)
            .map(key)
            .collect();
        assert_eq!(
            with_placeholders,
            [
                "CloudBmsInfoReport.bpAccuChgCap",
                "CloudBmsInfoReport.bpAccuDsgCap"
            ]
        );
    }
}
