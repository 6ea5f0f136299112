//! The developer open API: every request signed (HMAC-SHA256 over the parameters, the
//! access key, a nonce and a fresh timestamp); certification, device list, all quotas.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Json;
use serde_json::{Value as JsonValue, json};

use super::{HttpState, Shared, certification_data, envelope, ok};
use crate::open_api;
use crate::stats::bump;

/// Largest accepted clock skew of an open-API request's `timestamp`.
const MAX_SKEW_MS: i128 = 15 * 60 * 1000;

/// Checks the open-API headers and signature; `Err` is the answer to send.
fn check_signature(
    st: &HttpState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Json<JsonValue>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (access_key, nonce, timestamp, sign) = (
        header("accessKey"),
        header("nonce"),
        header("timestamp"),
        header("sign"),
    );
    if access_key != st.access_key {
        return Err(envelope("8513", "accessKey is invalid", JsonValue::Null));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128);
    let fresh = timestamp
        .parse::<i128>()
        .is_ok_and(|ts| (ts - now_ms).abs() <= MAX_SKEW_MS);
    if nonce.is_empty() || !fresh {
        return Err(envelope(
            "8524",
            "timestamp or nonce is invalid",
            JsonValue::Null,
        ));
    }
    let params: Vec<(String, String)> = query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !open_api::verify(&params, access_key, &st.secret_key, nonce, timestamp, sign) {
        return Err(envelope("8521", "signature is wrong", JsonValue::Null));
    }
    Ok(())
}

macro_rules! signed {
    ($st:ident, $headers:ident, $query:ident) => {
        $st.delay().await;
        if let Err(answer) = check_signature(&$st, &$headers, &$query) {
            bump(&$st.counters.auth_rejected);
            return answer;
        }
    };
}

pub(super) async fn certification(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    bump(&st.counters.certifications);
    ok(certification_data(&st.open_mqtt))
}

pub(super) async fn device_list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    let list: Vec<JsonValue> = st
        .devices
        .iter()
        .map(|d| {
            json!({
                "sn": d.sn(),
                "deviceName": format!("PowerOcean Fit-{}", &d.sn()[d.sn().len().saturating_sub(4)..]),
                "online": u8::from(d.online()),
                "productName": "PowerOcean Fit",
            })
        })
        .collect();
    ok(JsonValue::Array(list))
}

pub(super) async fn quota_all(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    let sn = query.get("sn").map(String::as_str).unwrap_or("");
    match st.devices.iter().find(|d| d.sn() == sn) {
        Some(d) => ok(JsonValue::Object(d.quota())),
        None => envelope("1006", "device not found", JsonValue::Null),
    }
}
