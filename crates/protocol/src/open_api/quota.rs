//! Open-API JSON (protocol §1b) → catalog states: `96_1.bpSoc`, `96_108.bpInfo[0].bpSoc`.
//! Keys whose `cmdFunc_cmdId` prefix maps to a catalog channel become [`StateUpdate`]s
//! with the same value rules as the protobuf route; every other key is a counted skip.
//!
//! No zero-fill here (protocol §11's first row is about the 96/33 *frame*, a full
//! snapshot): the peers that read open-API quota pushes merge them key by key into what
//! they hold, and the Fit's key set is unconfirmed (§1b), so a key a message leaves out
//! means "not in this message", not 0. The placeholder and counter rules do apply (the
//! store applies them to every route).

use catalog::{Channel, Kind, StateDef};
use serde_json::Value as Json;

use super::flatten::{Arrays, flatten};
use crate::decode::{DecodedPayload, DeviceStatus, FrameSkip, SkipReason, StateUpdate};
use crate::dispatch::{MappedReport, Report, dispatch};
use crate::value::{self as rules, Value};

/// Decodes a quota object (`{"params": {...}}`, or the bare object of `quota/all`).
pub fn decode_quota(json: &Json, device_sn: &str) -> DecodedPayload {
    let params = json.get("params").unwrap_or(json);
    let leaves = flatten(params, Arrays::ObjectsIndexed);
    let mut out = DecodedPayload {
        device_sn: Some(device_sn.into()),
        frames: 1,
        ..Default::default()
    };
    for (key, value) in leaves {
        match map_key(&key) {
            Ok((channel, def)) => match json_value(def, value) {
                Some((value, out_of_range)) => out.updates.push(StateUpdate {
                    device_sn: device_sn.into(),
                    channel,
                    state: def,
                    value,
                    out_of_range,
                }),
                None => out.skipped.push(skip_of(&key, SkipReason::WrongValueType)),
            },
            Err(reason) => out.skipped.push(skip_of(&key, reason)),
        }
    }
    if !out.updates.is_empty() {
        out.status = Some(DeviceStatus::Online);
    }
    out
}

/// Decodes a status message (`{"params": {"status": 1}}`; 1 = online, 0 = offline).
pub fn decode_status(json: &Json, device_sn: &str) -> DecodedPayload {
    let params = json.get("params").unwrap_or(json);
    let status = match params.get("status") {
        Some(Json::Number(n)) => match n.as_i64() {
            Some(1) => Some(DeviceStatus::Online),
            Some(0) => Some(DeviceStatus::Offline),
            _ => None,
        },
        Some(Json::String(s)) if s == "online" || s == "1" => Some(DeviceStatus::Online),
        Some(Json::String(s)) if s == "offline" || s == "0" => Some(DeviceStatus::Offline),
        Some(Json::Bool(b)) => Some(if *b {
            DeviceStatus::Online
        } else {
            DeviceStatus::Offline
        }),
        _ => None,
    };
    DecodedPayload {
        status,
        device_sn: Some(device_sn.into()),
        frames: 1,
        ..Default::default()
    }
}

fn skip_of(key: &str, reason: SkipReason) -> FrameSkip {
    let (cmd_func, cmd_id) = prefix_pair(key).unwrap_or((0, 0));
    FrameSkip {
        cmd_func,
        cmd_id,
        reason,
    }
}

fn prefix_pair(key: &str) -> Option<(i32, i32)> {
    let prefix = key.split('.').next()?;
    let (f, i) = prefix.split_once('_')?;
    Some((f.parse().ok()?, i.parse().ok()?))
}

/// `96_1.bpSoc` → (EMSHeartbeatReport, bpSoc); `96_108.bpInfo[1].bpSoc` → (bpInfo1, bpSoc).
fn map_key(key: &str) -> Result<(Channel, &'static StateDef), SkipReason> {
    let Some((cmd_func, cmd_id)) = prefix_pair(key) else {
        return Err(SkipReason::UnknownCmdPair);
    };
    let rest = key.split_once('.').map(|(_, r)| r).unwrap_or("");
    let report = match dispatch(cmd_func, cmd_id) {
        Report::Mapped(r) => r,
        // Settings keys are kept as extra values like other non-catalog keys.
        Report::Settings => return Err(SkipReason::UnmappedCmdPair("EmsChangeReport")),
        Report::TimerTasks => return Err(SkipReason::UnmappedCmdPair("EmsAllTimerTaskReport")),
        Report::KnownUnmapped(name) => return Err(SkipReason::UnmappedCmdPair(name)),
        Report::Unknown => return Err(SkipReason::UnknownCmdPair),
    };
    let (channel, field) = if report == MappedReport::BatteryPacks {
        let Some(after) = rest.strip_prefix("bpInfo[") else {
            return Err(SkipReason::NonCatalogField);
        };
        let Some((index, field)) = after.split_once("].") else {
            return Err(SkipReason::NonCatalogField);
        };
        let index: usize = index.parse().map_err(|_| SkipReason::NonCatalogField)?;
        match Channel::battery_pack(index) {
            Some(c) => (c, field),
            None => return Err(SkipReason::ExtraBatteryPack { index }),
        }
    } else {
        (report.channel(), rest)
    };
    catalog::find(channel, field)
        .map(|def| (channel, def))
        .ok_or(SkipReason::NonCatalogField)
}

/// Applies the value rules of protocol §6 to a plain JSON value.
fn json_value(def: &'static StateDef, value: &Json) -> Option<(Value, bool)> {
    let as_f64 = |v: &Json| match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let as_code = |v: &Json| match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match def.kind {
        Kind::Number => as_f64(value).map(|n| rules::number(def, n)),
        Kind::Diagnostic => match value {
            Json::Array(items) => {
                let codes: Option<Vec<u64>> = items.iter().map(as_code).collect();
                codes.map(|c| (rules::diagnostic_list(def, &c), false))
            }
            other => as_code(other).map(|c| (rules::diagnostic(def, c), false)),
        },
        Kind::Text => match value {
            Json::String(s) => Some((Value::Text(s.as_str().into()), false)),
            Json::Number(n) => {
                let text = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i.to_string(),
                    (_, Some(u), _) => u.to_string(),
                    (_, _, Some(f)) => format!("{f}"),
                    _ => return None,
                };
                Some((Value::Text(text.into()), false))
            }
            _ => None,
        },
        Kind::Array => match value {
            Json::Array(items) => {
                let nums: Option<Vec<f64>> = items.iter().map(as_f64).collect();
                nums.map(|n| (Value::Array(n), false))
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sn() -> &'static str {
        "HJ31"
    }

    #[test]
    fn maps_prefixed_keys_to_catalog_states() {
        let d = decode_quota(
            &json!({"params": {
                "96_1.bpSoc": 55,
                "96_108.bpInfo[1].bpSoc": 60,
                "96_111.bpTemp": [20.5, 21],
                "96_1.sysWorkSta": 99999,
            }}),
            sn(),
        );
        let get = |key: &str| {
            d.updates
                .iter()
                .find(|u| u.state.key == key)
                .map(|u| u.value.clone())
        };
        assert_eq!(get("EMSHeartbeatReport.bpSoc"), Some(Value::Number(55.0)));
        assert_eq!(get("bpInfo1.bpSoc"), Some(Value::Number(60.0)));
        assert_eq!(
            get("CloudBmsInfoReport.bpTemp"),
            Some(Value::Array(vec![20.5, 21.0]))
        );
        assert_eq!(
            get("EMSHeartbeatReport.sysWorkSta"),
            Some(Value::Text("99999 not part of array".into()))
        );
        assert_eq!(d.status, Some(DeviceStatus::Online));
        assert!(d.skipped.is_empty(), "{:?}", d.skipped);
    }

    #[test]
    fn nested_objects_and_arrays_of_packs() {
        let d = decode_quota(
            &json!({"96_108": {"bpInfo": [{"bpSoc": 10}, {"bpSoc": 20}, {"bpSoc": 30}, {"bpSoc": 40}]}}),
            sn(),
        );
        assert_eq!(d.updates.len(), 3);
        assert_eq!(d.updates[2].channel, Channel::BpInfo2);
        assert_eq!(d.skipped.len(), 1);
        assert_eq!(
            d.skipped[0].reason,
            SkipReason::ExtraBatteryPack { index: 3 }
        );
    }

    #[test]
    fn other_keys_are_counted_skips_not_errors() {
        let d = decode_quota(
            &json!({"params": {"96_3.errCode": 1, "7_7.x": 1, "plain": 2,
                               "96_1.notAState": 3, "96_1.bpSoc": "abc"}}),
            sn(),
        );
        assert!(d.updates.is_empty());
        let labels: Vec<&str> = d.skipped.iter().map(|s| s.reason.label()).collect();
        assert_eq!(labels.len(), 5, "{labels:?}");
        assert!(labels.contains(&"unknown_cmd_pair"));
        assert!(labels.contains(&"unmapped_cmd_pair"));
        // Each skip under its own reason: "plain" and 7_7 are unknown pairs, 96_3 a report
        // without catalog states, notAState no catalog state, "abc" not a number.
        let count = |label: &str| labels.iter().filter(|l| **l == label).count();
        assert_eq!(count("unknown_cmd_pair"), 2, "{labels:?}");
        assert_eq!(count("unmapped_cmd_pair"), 1, "{labels:?}");
        assert_eq!(count("non_catalog_field"), 1, "{labels:?}");
        assert_eq!(count("wrong_value_type"), 1, "{labels:?}");
        assert_eq!(d.status, None);
    }

    #[test]
    fn status_messages() {
        assert_eq!(
            decode_status(&json!({"params": {"status": 0}}), sn()).status,
            Some(DeviceStatus::Offline)
        );
        assert_eq!(
            decode_status(&json!({"params": {"status": 1}}), sn()).status,
            Some(DeviceStatus::Online)
        );
        assert_eq!(decode_status(&json!({"x": 1}), sn()).status, None);
    }
}
