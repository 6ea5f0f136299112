//! A payload decoded by the decoder its topic needs ([`crate::topics::payload_kind`]):
//! protobuf frames on the app route, JSON on the open API's, nothing from a command on
//! a `set` topic (protocol §2). The one place that routes a topic to a decoder: the
//! service's pipeline ([`decode_into`], no allocation per state) and the tools
//! ([`decode_raw`], owned states) both go through it.

use crate::open_api::{decode_quota, decode_status};
use crate::topics::{PayloadKind, device_sn_from_topic, payload_kind};
use crate::{DecodeError, DecodedPayload, FieldRules, MAX_PAYLOAD_BYTES, UpdateBuf};

/// Why a payload yielded nothing.
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

/// What [`decode_into`] made of a payload.
#[derive(Debug)]
pub enum Routed<'a> {
    /// Protobuf frames, decoded into the caller's buffer.
    Frames(&'a UpdateBuf),
    /// Open-API JSON (quota or status), decoded into owned states.
    Json(DecodedPayload),
    /// A command on a `set` topic: carries no readings, whatever its frames hold.
    Command,
}

/// Decodes `payload` from `topic` as coming from device `sn` (the topic's serial, which
/// the caller has checked): frames into `buf` under `rules` (kept between payloads, so
/// steady state allocates nothing per state), JSON into owned states.
pub fn decode_into<'a>(
    buf: &'a mut UpdateBuf,
    topic: &str,
    payload: &[u8],
    sn: &str,
    rules: FieldRules,
) -> Result<Routed<'a>, PayloadError> {
    match payload_kind(topic) {
        PayloadKind::Command => Ok(Routed::Command),
        PayloadKind::Frames => {
            buf.decode_from_device(payload, sn, rules)?;
            Ok(Routed::Frames(buf))
        }
        kind => decode_json(kind, payload, sn).map(Routed::Json),
    }
}

/// Decodes one payload into owned states; the topic's serial names the device when
/// frames carry none.
pub fn decode_raw(topic: &str, payload: &[u8]) -> Result<DecodedPayload, PayloadError> {
    let sn = device_sn_from_topic(topic).unwrap_or("");
    match payload_kind(topic) {
        PayloadKind::Frames => Ok(crate::decode_payload(payload, sn)?),
        PayloadKind::Command => Ok(DecodedPayload::default()),
        kind => decode_json(kind, payload, sn),
    }
}

/// An open-API `quota` or `status` message (JSON; size-checked first).
fn decode_json(
    kind: PayloadKind,
    payload: &[u8],
    sn: &str,
) -> Result<DecodedPayload, PayloadError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::Frames(DecodeError::Oversized {
            len: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        }));
    }
    let json: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| PayloadError::Json(e.to_string()))?;
    Ok(match kind {
        PayloadKind::Status => decode_status(&json, sn),
        _ => decode_quota(&json, sn),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PayloadView as _;
    use crate::dispatch::MappedReport;
    use crate::encode::{FrameSpec, encode_frames, encode_report};
    use catalog::Channel;

    #[test]
    fn decodes_by_topic() {
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

    /// A genuine heartbeat report published on a `set` topic is not a reading (§2, g).
    #[test]
    fn frames_on_a_set_topic_are_never_readings() {
        let soc = catalog::find(Channel::EmsHeartbeatReport, "bpSoc").expect("catalog state");
        let pdata = encode_report(
            Channel::EmsHeartbeatReport,
            &[(soc, crate::Value::Number(55.0))],
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
        let switch = crate::encode::energy_stream_switch(9);
        assert!(
            decode_raw("/app/42/X/thing/property/set", &switch)
                .unwrap()
                .updates
                .is_empty()
        );
        // The pipeline's path agrees.
        let mut buf = UpdateBuf::new();
        let rules = FieldRules::default();
        let routed = decode_into(
            &mut buf,
            "/app/42/X/thing/property/set",
            &payload,
            "X",
            rules,
        );
        assert!(matches!(routed, Ok(Routed::Command)));
        let routed = decode_into(&mut buf, "/app/device/property/X", &payload, "X", rules);
        assert!(
            matches!(routed, Ok(Routed::Frames(b)) if b.len() == 1),
            "{routed:?}"
        );
    }
}
