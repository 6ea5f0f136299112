//! [`RawPayload`]: one MQTT message as received, and [`decode_raw`], which picks the
//! decoder by topic (protobuf frames on the app route, JSON on the open-API route).

use std::time::SystemTime;

use bytes::Bytes;
use protocol::open_api::{decode_quota, decode_status};
use protocol::{DecodeError, DecodedPayload};

/// One message from a source, untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPayload {
    pub topic: String,
    pub payload: Bytes,
    pub received_at: SystemTime,
    /// How it came: pushed by the device or fetched by a poll (protocol §8: only a push
    /// proves the device is alive).
    pub origin: Origin,
}

/// Where a payload's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An MQTT message: a device report or get-all answer (app route), an open-API
    /// `quota`/`status` message, a fleet broker's message (and a recorded push).
    #[default]
    Push,
    /// An HTTP quota poll (open API `quota/all`): the cloud's last known values, even for
    /// a device that has been offline for days; updates values, never freshness.
    Poll,
}

impl Origin {
    /// True for [`Origin::Push`] (record files write no `origin` for those).
    pub fn is_push(&self) -> bool {
        *self == Origin::Push
    }
}

/// Why a raw payload yielded nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// A protobuf payload that is not a `Frames` message (and similar).
    #[error(transparent)]
    Frames(#[from] DecodeError),
    /// An open-API message that is not JSON.
    #[error("open-API message is not JSON: {0}")]
    Json(String),
}

impl PayloadError {
    /// Short label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            PayloadError::Frames(e) => e.reason(),
            PayloadError::Json(_) => "bad_json",
        }
    }
}

/// Which decoder a topic needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// App route: protobuf `Frames`.
    Frames,
    /// Open API `/open/<acc>/<SN>/quota`: JSON values.
    Quota,
    /// Open API `/open/<acc>/<SN>/status`: JSON online/offline.
    Status,
    /// App route `.../thing/property/set`: a command to the device (our own energy
    /// stream switch echoed, or the app's), never a reading (protocol §2, §8).
    Command,
}

pub fn payload_kind(topic: &str) -> PayloadKind {
    if protocol::topics::is_set_topic(topic) {
        PayloadKind::Command
    } else if topic.starts_with("/open/") {
        if topic.ends_with("/status") {
            PayloadKind::Status
        } else {
            PayloadKind::Quota
        }
    } else {
        PayloadKind::Frames
    }
}

/// Decodes one raw payload; the topic's serial names the device when frames carry none.
pub fn decode_raw(topic: &str, payload: &[u8]) -> Result<DecodedPayload, PayloadError> {
    let sn = protocol::topics::device_sn_from_topic(topic).unwrap_or("");
    match payload_kind(topic) {
        PayloadKind::Frames => Ok(protocol::decode_payload(payload, sn)?),
        // Commands carry no readings: nothing is decoded, whatever the frames hold.
        PayloadKind::Command => Ok(DecodedPayload::default()),
        kind => {
            if payload.len() > protocol::MAX_PAYLOAD_BYTES {
                return Err(PayloadError::Frames(DecodeError::Oversized {
                    len: payload.len(),
                    max: protocol::MAX_PAYLOAD_BYTES,
                }));
            }
            let json: serde_json::Value =
                serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
            Ok(match kind {
                PayloadKind::Status => decode_status(&json, sn),
                _ => decode_quota(&json, sn),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_decoder_by_topic() {
        assert_eq!(payload_kind("/app/device/property/X"), PayloadKind::Frames);
        assert_eq!(payload_kind("/open/a/X/quota"), PayloadKind::Quota);
        assert_eq!(payload_kind("/open/a/X/status"), PayloadKind::Status);
        assert_eq!(
            payload_kind("/app/42/X/thing/property/set"),
            PayloadKind::Command
        );
        assert_eq!(
            payload_kind("/app/42/X/thing/property/set_reply"),
            PayloadKind::Frames
        );
        let d = decode_raw("/open/a/X/quota", br#"{"params":{"96_1.bpSoc":5}}"#).unwrap();
        assert_eq!(&*d.updates[0].device_sn, "X");
        assert_eq!(
            decode_raw("/open/a/X/quota", b"{oops")
                .unwrap_err()
                .reason(),
            "bad_json"
        );
        assert_eq!(
            decode_raw("/app/device/property/X", b"")
                .unwrap_err()
                .reason(),
            "empty"
        );
    }
}

#[cfg(test)]
mod set_topic_tests {
    use super::*;
    use catalog::Channel;
    use protocol::dispatch::MappedReport;
    use protocol::encode::{FrameSpec, encode_frames, encode_report};

    /// A genuine heartbeat report published on a `set` topic is not a reading (§2, g).
    #[test]
    fn frames_on_a_set_topic_are_never_readings() {
        let soc = catalog::find(Channel::EmsHeartbeatReport, "bpSoc").expect("catalog state");
        let pdata = encode_report(
            Channel::EmsHeartbeatReport,
            &[(soc, protocol::Value::Number(55.0))],
        )
        .expect("encodes");
        let payload = encode_frames(vec![FrameSpec::report(
            MappedReport::EmsHeartbeat,
            pdata,
            "X",
            1,
            false,
        )]);
        let as_report = decode_raw("/app/device/property/X", &payload).expect("decodes");
        assert_eq!(as_report.updates.len(), 1);
        let on_set = decode_raw("/app/42/X/thing/property/set", &payload).expect("ignored");
        assert!(on_set.updates.is_empty() && on_set.status.is_none());
        let switch = protocol::encode::energy_stream_switch(9);
        assert!(
            decode_raw("/app/42/X/thing/property/set", &switch)
                .unwrap()
                .updates
                .is_empty()
        );
    }
}
