//! Unit tests of the report builders: every catalog state, in range, balanced, decodable.

use std::collections::HashSet;

use protocol::dispatch::MappedReport;

use super::*;
use crate::SIGNED_FLOWS;
use crate::physics::{FitModel, PhysicsConfig};

const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 00:00 local (UTC+1).
const MIDNIGHT: f64 = 1_717_196_400.0;

fn model(packs: usize, soc: f64) -> FitModel {
    FitModel::new(
        PhysicsConfig {
            packs,
            pv_peak_w: 8000.0,
            initial_soc: soc,
            seed: 5,
            utc_offset_s: 3600,
            outage: None,
        },
        MIDNIGHT,
    )
}

fn cx(m: &FitModel) -> Context<'static> {
    Context {
        sn: SN,
        epoch: m.now() as u64,
        utc_offset_minutes: 60,
        pv_peak_w: 8000.0,
    }
}

/// Every report of the model, framed (XOR on) and decoded again.
fn decode_all(m: &FitModel) -> Vec<protocol::StateUpdate> {
    let mut updates = Vec::new();
    for (seq, report) in MappedReport::ALL.into_iter().enumerate() {
        let pdata = encode(report, m, cx(m), 0, &mut |_, _| {}).unwrap();
        let frame = protocol::FrameSpec::report(report, pdata, SN, 7 + seq as i32, true);
        let payload = protocol::encode_frames(vec![frame]);
        let decoded = protocol::decode_payload(&payload, SN).unwrap();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
        updates.extend(decoded.updates);
    }
    updates
}

#[test]
fn a_full_report_set_covers_every_catalog_state() {
    let m = model(3, 50.0);
    let keys: HashSet<&str> = decode_all(&m).iter().map(|u| u.state.key).collect();
    assert_eq!(keys.len(), catalog::STATES.len());
    let m = model(1, 50.0);
    let keys: HashSet<&str> = decode_all(&m).iter().map(|u| u.state.key).collect();
    assert_eq!(keys.len(), catalog::STATES.len() - 2 * 25);
}

#[test]
fn values_stay_in_catalog_ranges_and_flows_balance_all_day() {
    for packs in 1..=3 {
        let mut m = model(packs, 30.0);
        for quarter_hour in 1..(4 * 24) {
            m.advance_to(MIDNIGHT + f64::from(quarter_hour) * 900.0);
            let updates = decode_all(&m);
            for u in &updates {
                if SIGNED_FLOWS.contains(&u.state.key) {
                    let v = u.value.as_number().unwrap();
                    assert!(v.abs() <= u.state.max.unwrap(), "{} = {v}", u.state.key);
                } else {
                    assert!(!u.out_of_range, "{} = {:?}", u.state.key, u.value);
                }
            }
            let get = |key: &str| {
                updates
                    .iter()
                    .find(|u| u.state.key == key)
                    .and_then(|u| u.value.as_number())
                    .unwrap()
            };
            let supply = get("EnergyStreamItem.gridPwr")
                + get("EnergyStreamItem.pvPwr")
                + get("EnergyStreamItem.bpPwr");
            let demand = get("EnergyStreamItem.loadPwr")
                + get("EnergyStreamItem.heatingPower")
                + get("EnergyStreamItem.bpHeatingPower");
            assert!(
                (supply - demand).abs() <= 0.01 * demand,
                "{supply} vs {demand}"
            );
            let day_supply = get("EMSHeartbeatReport.gridInDayEnergy")
                - get("EMSHeartbeatReport.gridOutDayEnergy")
                + get("EMSHeartbeatReport.pvInDayEnergy")
                + get("EMSHeartbeatReport.bpOutDayEnergy")
                - get("EMSHeartbeatReport.bpInDayEnergy");
            let day_load = get("EMSHeartbeatReport.loadDayEnergy");
            assert!((day_supply - day_load).abs() <= 0.01 * day_load + 3.0);
        }
    }
}

#[test]
fn quota_json_uses_the_open_api_key_form_and_raw_values() {
    let m = model(2, 50.0);
    let q = quota_json(&m, cx(&m));
    assert!(q["96_1.bpSoc"].is_number());
    assert!(q["96_108.bpInfo[1].bpSoc"].is_number());
    assert!(!q.contains_key("96_108.bpInfo[2].bpSoc"));
    // Diagnostics carry their code, strings stay strings.
    assert_eq!(q["96_111.bmsRunSta"], serde_json::json!(1));
    assert_eq!(q["96_111.bpSn"], serde_json::json!(pack_serial(SN, 0)));
    // Mult is undone: bp1SocCoefficient 50 % travels as 0.5.
    assert_eq!(q["96_1.bp1SocCoefficient"], serde_json::json!(0.5));
}

#[test]
fn timezone_is_hours_and_minutes() {
    assert_eq!(timezone(60), 100.0);
    assert_eq!(timezone(330), 530.0);
    assert_eq!(timezone(-300), -500.0);
}
