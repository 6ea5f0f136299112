//! The open-API JSON quota form of a device's current values (what `quota/all` answers
//! and the `/open/<account>/<SN>/quota` route carries): the same states as the reports.

use catalog::{Kind, StateDef};
use protocol::Value;
use serde_json::{Map, Value as Json};

use super::{Context, States, battery_packs, cloud_bms, energy_stream, heartbeat};
use crate::physics::FitModel;

/// The open-API JSON quota form of every current value: keys `96_<id>.<state>` and
/// `96_108.bpInfo[i].<state>`, values as the device sends them (before Mult, codes for
/// diagnostics).
pub(crate) fn quota_json(m: &FitModel, cx: Context<'_>) -> Map<String, Json> {
    let mut out = Map::new();
    let mut put = |prefix: String, states: &States| {
        for (s, v) in states {
            out.insert(format!("{prefix}.{}", s.name), raw_json(s, v));
        }
    };
    put("96_1".into(), &heartbeat(m, cx));
    put("96_33".into(), &energy_stream(m, cx));
    for (i, pack) in battery_packs(m, cx).iter().enumerate() {
        put(format!("96_108.bpInfo[{i}]"), pack);
    }
    put("96_111".into(), &cloud_bms(m, cx, 0));
    out
}

fn raw_json(s: &StateDef, v: &Value) -> Json {
    match (s.kind, v) {
        (Kind::Number, Value::Number(n)) => {
            let raw = n / s.mult;
            let raw = (raw * 1e6).round() / 1e6;
            serde_json::Number::from_f64(raw).map_or(Json::Null, Json::Number)
        }
        (Kind::Diagnostic, Value::Text(t)) => s
            .enum_code(t)
            .map(Json::from)
            .or_else(|| {
                t.strip_suffix(" not part of array")
                    .and_then(|c| c.parse::<u64>().ok())
                    .map(Json::from)
            })
            .unwrap_or_else(|| Json::String(t.to_string())),
        (_, Value::Text(t)) => Json::String(t.to_string()),
        (_, Value::Number(n)) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        (_, Value::Array(items)) => Json::Array(
            items
                .iter()
                .filter_map(|x| serde_json::Number::from_f64(*x).map(Json::Number))
                .collect(),
        ),
    }
}
