//! MQTT topic names of both routes (protocol §2: the app route's `/app/...`, the open
//! API's `/open/...`), the serial they carry, and which decoder a topic needs
//! ([`payload_kind`]; [`crate::route`] applies it).

/// Device reports: `/app/device/property/<SN>`.
pub fn property_topic(sn: &str) -> String {
    format!("/app/device/property/{sn}")
}

/// Get-all requests are published here: `/app/<userId>/<SN>/thing/property/get`.
pub fn get_topic(user_id: &str, sn: &str) -> String {
    format!("/app/{user_id}/{sn}/thing/property/get")
}

/// Answers to get-all: `/app/<userId>/<SN>/thing/property/get_reply`.
pub fn get_reply_topic(user_id: &str, sn: &str) -> String {
    format!("/app/{user_id}/{sn}/thing/property/get_reply")
}

/// Commands to a device (the energy stream switch of §8, the set frames of §10):
/// `/app/<userId>/<SN>/thing/property/set`. Frames seen here are requests, never readings.
pub fn set_topic(user_id: &str, sn: &str) -> String {
    format!("/app/{user_id}/{sn}/thing/property/set")
}

/// Open API values: `/open/<account>/<SN>/quota` (JSON, protocol §2).
pub fn open_quota_topic(account: &str, sn: &str) -> String {
    format!("/open/{account}/{sn}/quota")
}

/// Open API online/offline: `/open/<account>/<SN>/status` (JSON, protocol §2).
pub fn open_status_topic(account: &str, sn: &str) -> String {
    format!("/open/{account}/{sn}/status")
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

/// The decoder `topic` needs (protocol §2).
pub fn payload_kind(topic: &str) -> PayloadKind {
    if is_set_topic(topic) {
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

/// True for a `set` topic (protocol §2): what is published there is a command (ours
/// echoed, or the app's), never a device reading.
pub fn is_set_topic(topic: &str) -> bool {
    topic.starts_with("/app/") && topic.ends_with("/thing/property/set")
}

/// The device serial a topic is about, for the app and open-API routes.
pub fn device_sn_from_topic(topic: &str) -> Option<&str> {
    // Every known topic has at most 7 parts; split into a fixed array (no allocation:
    // this runs for every payload).
    let mut parts = [""; 8];
    let mut n = 0;
    for part in topic.split('/') {
        *parts.get_mut(n)? = part;
        n += 1;
    }
    match &parts[..n] {
        ["", "app", "device", "property", sn] => Some(sn),
        ["", "app", _user, sn, "thing", "property", _] => Some(sn),
        ["", "open", _account, sn, _] => Some(sn),
        _ => None,
    }
    .copied()
    .filter(|sn| !sn.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_each_topic_kind() {
        assert_eq!(device_sn_from_topic(&property_topic("HJ31")), Some("HJ31"));
        assert_eq!(
            device_sn_from_topic(&get_reply_topic("42", "HJ31")),
            Some("HJ31")
        );
        assert_eq!(device_sn_from_topic("/open/acc/HJ31/quota"), Some("HJ31"));
        assert_eq!(device_sn_from_topic("/app/device/property/"), None);
        assert_eq!(device_sn_from_topic("garbage"), None);
        assert_eq!(device_sn_from_topic(&set_topic("42", "HJ31")), Some("HJ31"));
        assert!(is_set_topic(&set_topic("42", "HJ31")));
        assert!(!is_set_topic(&get_reply_topic("42", "HJ31")));
        assert!(!is_set_topic("/app/42/HJ31/thing/property/set_reply"));
        assert_eq!(
            device_sn_from_topic(&open_quota_topic("acc", "HJ31")),
            Some("HJ31")
        );
        assert_eq!(
            device_sn_from_topic(&open_status_topic("acc", "HJ31")),
            Some("HJ31")
        );
    }

    #[test]
    fn picks_decoder_by_topic() {
        assert_eq!(payload_kind("/app/device/property/X"), PayloadKind::Frames);
        assert_eq!(
            payload_kind(&open_quota_topic("a", "X")),
            PayloadKind::Quota
        );
        assert_eq!(
            payload_kind(&open_status_topic("a", "X")),
            PayloadKind::Status
        );
        assert_eq!(payload_kind(&set_topic("42", "X")), PayloadKind::Command);
        assert_eq!(
            payload_kind("/app/42/X/thing/property/set_reply"),
            PayloadKind::Frames
        );
    }
}
