//! The generated catalog against the spec text: counts per channel and spot checks.

use catalog::{Channel, Kind, STATES, by_key, channel_states, find};

const SPEC: &str = include_str!("../../../spec/poweroceanfit-states-1.4.0.md");

#[test]
fn exactly_216_states_in_six_channels() {
    assert_eq!(STATES.len(), 216);
    let counts: Vec<(Channel, usize)> = Channel::ALL
        .iter()
        .map(|&c| (c, channel_states(c).len()))
        .collect();
    assert_eq!(
        counts,
        [
            (Channel::CloudBmsInfoReport, 64),
            (Channel::EmsHeartbeatReport, 67),
            (Channel::EnergyStreamItem, 10),
            (Channel::BpInfo0, 25),
            (Channel::BpInfo1, 25),
            (Channel::BpInfo2, 25),
        ]
    );
    for (i, s) in STATES.iter().enumerate() {
        assert_eq!(s.index, i, "index of {}", s.key);
        assert_eq!(s.key, format!("{}.{}", s.channel, s.name));
    }
}

#[test]
fn kinds_per_channel_match_the_spec_sections() {
    let count = |c: Channel, k: Kind| channel_states(c).iter().filter(|s| s.kind == k).count();
    assert_eq!(count(Channel::CloudBmsInfoReport, Kind::Number), 40);
    assert_eq!(count(Channel::CloudBmsInfoReport, Kind::Array), 2);
    assert_eq!(count(Channel::CloudBmsInfoReport, Kind::Diagnostic), 15);
    assert_eq!(count(Channel::CloudBmsInfoReport, Kind::Text), 7);
    assert_eq!(count(Channel::EmsHeartbeatReport, Kind::Diagnostic), 20);
    assert_eq!(count(Channel::EmsHeartbeatReport, Kind::Number), 35);
    assert_eq!(count(Channel::EmsHeartbeatReport, Kind::Text), 9);
    assert_eq!(count(Channel::EmsHeartbeatReport, Kind::Array), 3);
    assert_eq!(count(Channel::BpInfo2, Kind::Diagnostic), 10);
}

#[test]
fn spot_checks_against_the_spec() {
    let s = find(Channel::CloudBmsInfoReport, "bpCellMaxVol").expect("bpCellMaxVol");
    assert_eq!(
        (s.kind, s.unit, s.mult, s.min, s.max),
        (Kind::Number, "V", 0.01, Some(0.0), Some(60.0))
    );
    assert_eq!(s.human_name, "bp cell max vol");

    let s = by_key("CloudBmsInfoReport.bpCycles").expect("bpCycles");
    assert_eq!(
        (s.min, s.max, s.unit),
        (Some(0.0), None, ""),
        "n/a max means unbounded"
    );

    let s = by_key("CloudBmsInfoReport.bpAccuChgCap").expect("bpAccuChgCap");
    assert_eq!((s.mult, s.max, s.unit), (0.001, Some(7_500_000.0), "mAh"));

    let s = by_key("EnergyStreamItem.timezone").expect("timezone");
    assert_eq!((s.min, s.max, s.unit), (Some(-1200.0), Some(1200.0), "h"));

    let s = by_key("EMSHeartbeatReport.bp1SocCoefficient").expect("coefficient");
    assert_eq!(s.mult, 100.0);

    let s = by_key("CloudBmsInfoReport.bmsChgDsgSta").expect("bmsChgDsgSta");
    assert_eq!(
        s.enum_map,
        &[
            (0, "PB_STANDBY_STATE"),
            (1, "PB_DSG_STATE"),
            (2, "PB_CHG_STATE")
        ]
    );

    let s = by_key("CloudBmsInfoReport.bpPtcExitEvent").expect("bpPtcExitEvent");
    assert_eq!(s.enum_map.len(), 20);
    assert_eq!(s.enum_text(13), Some("HEAT_EVENT_FTOP_FAULT"));

    let s = by_key("bpInfo1.bpModSta").expect("bpModSta");
    assert_eq!(s.enum_map, &[(0, "OK ?")], "enum texts are trimmed");

    let s = by_key("CloudBmsInfoReport.bpAcRechargeFlag").expect("flag");
    assert_eq!(s.enum_text(0), Some("no AC recharge"));

    assert!(by_key("bpInfo3.bpSoc").is_none());
    assert!(by_key("EMSHeartbeatReport.sysRateCtrlTime").is_none());
}

#[test]
fn every_state_has_a_row_in_its_spec_section() {
    for s in &STATES {
        let section = SPEC
            .split("\n## ")
            .find(|sec| sec.starts_with(&format!("{}\n", s.channel)))
            .unwrap_or_else(|| panic!("no section for {}", s.channel));
        let row = format!("\n|{}|", s.name);
        assert!(
            section.contains(&row),
            "{} not found in the spec section {}",
            s.name,
            s.channel
        );
        if s.kind == Kind::Number {
            let line = section
                .lines()
                .find(|l| l.starts_with(&row[1..]))
                .expect("row");
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(cells[4], s.unit, "unit of {} in {line}", s.key);
            assert_eq!(
                cells[5].parse::<f64>().ok(),
                Some(s.mult),
                "mult of {} in {line}",
                s.key
            );
        }
    }
}

#[test]
fn shipped_spec_matches_the_shared_copy() {
    let shared = testkit::require!(testkit::services::shared_dir())
        .join("spec/poweroceanfit-states-1.4.0.md");
    let text = std::fs::read_to_string(&shared)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", shared.display()));
    assert_eq!(
        text, SPEC,
        "spec/ differs from ../shared/spec; copy the new spec in"
    );
}
