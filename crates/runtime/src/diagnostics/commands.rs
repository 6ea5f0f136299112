//! `commands.json` of the bundle: every frame the capture saw on a device's `set` topic
//! (protocol §2) — the EcoFlow app changing a setting, another client, or the bridge's
//! own frames echoed back — listed with what it is, so a user who changed a setting in
//! the app can point at the frame that did it (the frame itself is in `capture/`).
//!
//! Who sent it: MQTT does not say (a subscriber never learns the publisher), and the
//! bridge's frames are the app's byte for byte (§8). A settings frame is matched against
//! the running bridge's audit log (a write it made at that time, for that device and
//! setting); the energy stream switch is sent by both the bridge and the app (§8).

use std::time::Duration;

use model::unix_ms;
use prost::Message as _;
use protocol::{FeedMode, SetRequest, WorkMode, pb};
use serde_json::{Value, json};
use sources::RawPayload;
use store::{AuditEntry, StateStore};

use super::mask::Masker;

/// An audit row this close to a captured frame is the bridge's own write.
const SAME_WRITE: Duration = Duration::from_secs(30);
/// Audit rows looked at per device.
const AUDIT_ROWS: usize = 1000;

/// The settings (§10) by their `cmd_id`, as the protocol crate names them.
fn setting_name(cmd_func: i32, cmd_id: i32) -> Option<&'static str> {
    if cmd_func != protocol::control::CMD_FUNC {
        return None;
    }
    [
        SetRequest::WorkMode {
            mode: WorkMode::ALL[0],
        },
        SetRequest::BatteryLimits {
            backup_reserve: 0,
            surplus_threshold: 0,
        },
        SetRequest::FeedIn {
            mode: FeedMode::ALL[0],
            cap_w: None,
        },
    ]
    .into_iter()
    .find(|r| r.cmd_id() == cmd_id)
    .map(|r| r.name())
}

/// The `commands.json` body: one entry per frame of each captured command, oldest first;
/// `store` is the running bridge's (its audit log tells the bridge's own writes), `None`
/// for a bundle built from the files.
pub fn summary(payloads: &[&RawPayload], masker: &Masker, store: Option<&StateStore>) -> Value {
    let mut entries = Vec::new();
    for raw in payloads {
        if !protocol::topics::is_set_topic(&raw.topic) {
            continue;
        }
        let sn = protocol::topics::device_sn_from_topic(&raw.topic).unwrap_or("");
        let at_ms = unix_ms(raw.received_at);
        let time = humantime::format_rfc3339_millis(raw.received_at).to_string();
        let headers = pb::Frames::decode(&raw.payload[..])
            .map(|f| f.header)
            .unwrap_or_default();
        if headers.is_empty() {
            entries.push(json!({
                "time": time,
                "topic": masker.text(&raw.topic),
                "what": "not a Frames message (kept as it came in capture/)",
            }));
        }
        for h in headers {
            let (func, id) = (h.cmd_func.unwrap_or(0), h.cmd_id.unwrap_or(0));
            let (what, by) = match (func, id, setting_name(func, id)) {
                (96, 97, _) => (
                    "energy stream switch (protocol §8)".to_string(),
                    "oceanbridge or the EcoFlow app: both send this frame, byte for byte"
                        .to_string(),
                ),
                (_, _, Some(setting)) => (
                    format!("settings write: {setting} (protocol §10)"),
                    who_wrote(store, sn, setting, at_ms),
                ),
                _ => (
                    format!("command {func}/{id} (not one oceanbridge sends)"),
                    "not oceanbridge: the EcoFlow app or another client".to_string(),
                ),
            };
            entries.push(json!({
                "time": time,
                "topic": masker.text(&raw.topic),
                "cmd": format!("{func}/{id}"),
                "what": what,
                "by": by,
            }));
        }
    }
    json!({
        "note": "Frames published on a device's set topic: commands, never readings. The frames \
                 themselves are the capture/ lines marked \"kind\":\"command\".",
        "commands": entries,
    })
}

/// Whether the bridge's audit log has this write (same device and setting, within
/// [`SAME_WRITE`]).
fn who_wrote(store: Option<&StateStore>, sn: &str, setting: &str, at_ms: i64) -> String {
    let Some(store) = store else {
        return "unknown (bundle built from the files: the running bridge's audit log tells its own writes)".into();
    };
    let window = SAME_WRITE.as_millis() as i64;
    let ours: Option<AuditEntry> = store
        .audit(Some(sn), AUDIT_ROWS)
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.setting == setting && (e.at_ms - at_ms).abs() <= window);
    match ours {
        Some(e) => format!("oceanbridge ({} write, {})", e.origin, e.outcome),
        None => {
            "not oceanbridge (no such write in its audit log): the EcoFlow app or another client"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_is_named_by_its_cmd_id() {
        for request in [
            SetRequest::WorkMode {
                mode: WorkMode::ALL[1],
            },
            SetRequest::FeedIn {
                mode: FeedMode::ALL[1],
                cap_w: Some(800),
            },
        ] {
            assert_eq!(
                setting_name(96, request.cmd_id()),
                Some(request.name()),
                "{request:?}"
            );
        }
        assert_eq!(setting_name(96, 97), None);
        assert_eq!(setting_name(20, 98), None);
    }
}
