//! The `decode --json` shape: one object keyed `<Channel>.<state>` plus `info.status` (rule 7).

use serde_json::{Map, Value as Json};

use crate::decode::DecodedPayload;

/// Key under which the online/offline status appears.
pub const STATUS_KEY: &str = "info.status";

/// Renders a decoded payload as the flat JSON object of rule 7.
pub fn to_json_object(decoded: &DecodedPayload) -> Map<String, Json> {
    let mut map = Map::with_capacity(decoded.updates.len() + 1);
    for u in &decoded.updates {
        map.insert(
            u.state.key.to_string(),
            serde_json::to_value(&u.value).unwrap_or(Json::Null),
        );
    }
    if let Some(status) = decoded.status {
        map.insert(STATUS_KEY.to_string(), Json::from(status.as_str()));
    }
    map
}
