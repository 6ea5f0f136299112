//! The presentation table against the catalog and the docs: a row for every state and no
//! other, names unique on each HA device, plain English (no spec typos, no abbreviations),
//! decimals for every number, and the docs' list of entities on by default up to date.

use std::collections::BTreeSet;

use catalog::{Kind, STATES};

use super::*;

/// Misspellings in the spec's names (each checked to be there, so the list is real).
const MISSPELLINGS: &[&str] = &[
    "cpapcity",
    "temparature",
    "tremperatures",
    "baattery",
    "eclound",
    "aplication",
    "dicharge",
];

/// The spec's abbreviations, which a display name spells out.
const ABBREVIATIONS: &[&str] = &[
    "pwr", "vol", "amp", "chg", "dsg", "sta", "stat", "bp", "watth", "soc", "soh", "sop", "sys",
    "err", "netif", "ctrl", "inv", "pv", "pva", "lv", "hv", "lv1", "lv2", "accu", "cap", "temp",
    "env", "diff", "ver", "sw", "apl", "en", "chgsop", "dsgsop",
];

fn rows() -> Rows {
    parse(TABLE).expect("entities.txt parses")
}

#[test]
fn every_catalog_state_has_exactly_one_row() {
    let rows = rows();
    let keys: BTreeSet<String> = STATES.iter().map(row_key).collect();
    let missing: Vec<&String> = keys.iter().filter(|k| !rows.contains_key(*k)).collect();
    assert!(missing.is_empty(), "no row for {missing:?}");
    let unknown: Vec<&String> = rows.keys().filter(|k| !keys.contains(*k)).collect();
    assert!(unknown.is_empty(), "rows for no catalog state: {unknown:?}");
    // 141 states of the PowerOcean and 25 of each pack, sharing one row each.
    assert_eq!(rows.len(), 141 + 25);
}

#[test]
fn the_table_refuses_bad_rows() {
    for (text, why) in [
        ("a.b | main | - ", "expected"),
        ("a.b | shown | - | Name", "main, diagnostic or disabled"),
        ("a.b | main | x | Name", "precision"),
        ("a.b | main | - | Name\na.b | main | - | Name", "second row"),
    ] {
        let e = parse(text).expect_err(text).to_string();
        assert!(e.contains(why) && e.contains("line"), "{text}: {e}");
    }
}

#[test]
fn names_are_unique_on_each_device() {
    for pack in [None, Some(0)] {
        let mut seen = BTreeSet::new();
        for state in STATES.iter().filter(|s| s.channel.pack_index() == pack) {
            let name = of(state).name;
            assert!(seen.insert(name.clone()), "{name:?} twice ({})", state.key);
        }
        // The PowerOcean's own entities beside the catalog's.
        if pack.is_none() {
            assert!(seen.insert(crate::home_assistant::grid::NAME.to_string()));
        }
    }
}

#[test]
fn names_are_plain_english_without_the_specs_typos() {
    for typo in MISSPELLINGS {
        assert!(
            STATES
                .iter()
                .any(|s| s.human_name.to_lowercase().contains(typo)),
            "{typo} is not in the spec (update the list)"
        );
    }
    for state in STATES.iter() {
        let name = of(state).name;
        let first = name.chars().next().expect("a name");
        assert!(first.is_uppercase() || first.is_ascii_digit(), "{name}");
        assert!(!name.contains('_') && !name.contains("  "), "{name}");
        let lower = name.to_lowercase();
        for typo in MISSPELLINGS {
            assert!(!lower.contains(typo), "{name} ({})", state.key);
        }
        for word in lower.split(|c: char| !c.is_alphanumeric()) {
            assert!(!ABBREVIATIONS.contains(&word), "{word:?} in {name:?}");
        }
        // camelCase left over from a state key (the maker's name aside).
        assert!(
            !name
                .replace("EcoFlow", "Ecoflow")
                .as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase()),
            "{name}"
        );
    }
    let name = |key: &str| of(catalog::by_key(key).expect("in catalog")).name;
    assert_eq!(name("CloudBmsInfoReport.bpDesignCap"), "Design capacity");
    assert_eq!(
        name("CloudBmsInfoReport.bpCellMaxVol"),
        "Battery cell max voltage"
    );
    assert_eq!(
        name("CloudBmsInfoReport.bpLvMosTemp"),
        "Low-voltage MOS temperature"
    );
}

#[test]
fn numbers_get_decimals_and_the_rest_none() {
    for state in STATES.iter() {
        let p = of(state);
        match state.kind {
            Kind::Number if !display_unit(state).is_empty() => {
                assert!(p.precision.is_some(), "{}", state.key)
            }
            Kind::Number => {}
            _ => assert_eq!(p.precision, None, "{}", state.key),
        }
    }
    let precision = |key: &str| of(catalog::by_key(key).expect("in catalog")).precision;
    assert_eq!(precision("CloudBmsInfoReport.bpCellMinVol"), Some(2));
    assert_eq!(precision("EMSHeartbeatReport.meterAVoltage"), Some(1));
    assert_eq!(precision("EnergyStreamItem.pvPwr"), Some(0));
}

#[test]
fn the_daily_view_is_small_and_internals_are_off() {
    let count = |shown: Shown, pack: Option<usize>| {
        STATES
            .iter()
            .filter(|s| s.channel.pack_index() == pack && of(s).shown == shown)
            .count()
    };
    // Most of the 141 are internals: what is on stays readable on one device page.
    assert!(count(Shown::Disabled, None) > 90);
    assert!(count(Shown::Main, None) + count(Shown::Diagnostic, None) < 50);
    for (key, shown) in [
        ("CloudBmsInfoReport.bpMaxCellTemp", Shown::Disabled),
        ("CloudBmsInfoReport.bpHvMosTemp", Shown::Disabled),
        ("CloudBmsInfoReport.bpBusVol", Shown::Disabled),
        ("CloudBmsInfoReport.bpErrCode", Shown::Disabled),
        ("EMSHeartbeatReport.emsErrCode", Shown::Disabled),
        ("CloudBmsInfoReport.moduleAplSwVer", Shown::Disabled),
        ("bpInfo1.bpBusAmp", Shown::Disabled),
        ("CloudBmsInfoReport.bpSoh", Shown::Diagnostic),
        ("EnergyStreamItem.pvPwr", Shown::Main),
        ("EnergyStreamItem.bpSoc", Shown::Main),
        ("EMSHeartbeatReport.gridInDayEnergy", Shown::Main),
        ("bpInfo2.bpSoc", Shown::Main),
    ] {
        let state = catalog::by_key(key).expect("in catalog");
        assert_eq!(of(state).shown, shown, "{key}");
    }
}

/// The docs' list of the entities on by default, as made from the table.
fn default_on_list() -> String {
    // The grid presence first: not a catalog state, derived from the meter's phase
    // voltages (protocol §13).
    let mut out = format!(
        "| Entity | State | Where |\n|---|---|---|\n\
         | {} | derived from the phase voltages (binary sensor) | device page |\n",
        crate::home_assistant::grid::NAME
    );
    let mut on = |pack: Option<usize>, device: &str| {
        for shown in [Shown::Main, Shown::Diagnostic] {
            for state in STATES.iter().filter(|s| s.channel.pack_index() == pack) {
                let p = of(state);
                if p.shown != shown {
                    continue;
                }
                let key = row_key(state);
                let place = match shown {
                    Shown::Main => "device page",
                    _ => "Diagnostic card",
                };
                out.push_str(&format!("| {device}{} | `{key}` | {place} |\n", p.name));
            }
        }
    };
    on(None, "");
    on(Some(0), "Battery pack: ");
    let off = |pack: Option<usize>| {
        STATES
            .iter()
            .filter(|s| s.channel.pack_index() == pack && of(s).shown == Shown::Disabled)
            .count()
    };
    out.push_str(&format!(
        "\nOff by default: {} more per PowerOcean and {} per battery pack.\n",
        off(None),
        off(Some(0))
    ));
    out
}

/// The list in docs/home-assistant.md between its markers must be [`default_on_list`].
#[test]
fn the_docs_list_the_entities_on_by_default() {
    crate::doc_blocks::check("home-assistant.md", "entities", &default_on_list());
}
