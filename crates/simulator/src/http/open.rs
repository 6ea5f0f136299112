//! The developer open API: every request signed (HMAC-SHA256 over the parameters, the
//! access key, a nonce and a fresh timestamp) and checked as strictly as the real cloud
//! (protocol §9); certification, device list, all quotas.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Json;
use serde_json::{Value as JsonValue, json};
use tokio::time::Instant;

use super::{HttpState, Shared, envelope, ok};
use crate::field::stats::OPEN;
use crate::open_api;
use crate::stats::bump;

/// 8521, the cloud's answer to every signing mistake (protocol §9).
fn wrong_signature() -> Json<JsonValue> {
    envelope("8521", "signature is wrong", JsonValue::Null)
}

/// A fraction-`p` coin from the OS generator (false when it fails: no error injected).
fn coin(p: f64) -> bool {
    let mut b = [0u8; 4];
    p > 0.0
        && getrandom::fill(&mut b).is_ok()
        && f64::from(u32::from_le_bytes(b)) < p * 4_294_967_296.0
}

/// Checks the open-API headers and signature; `Err` is the answer to send. With
/// `field.strict_signing` (protocol §9): a `Content-Type` on a GET, a stale timestamp, a
/// missing or reused nonce all answer 8521; without it the lax checks of before (8524 for
/// a bad timestamp or nonce). A correct request may still get 8521 now and then
/// (`field.intermittent_8521`). An unknown access key answers 8513.
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
    let strict = st.field.strict_signing;
    if strict && headers.contains_key(header::CONTENT_TYPE) {
        return Err(wrong_signature());
    }
    let window_ms = st.field.timestamp_window.as_millis() as i128;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128);
    let fresh = timestamp
        .parse::<i128>()
        .is_ok_and(|ts| (ts - now_ms).abs() <= window_ms);
    if nonce.is_empty() || !fresh {
        return Err(if strict {
            wrong_signature()
        } else {
            envelope("8524", "timestamp or nonce is invalid", JsonValue::Null)
        });
    }
    let params: Vec<(String, String)> = query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !open_api::verify(&params, access_key, &st.secret_key, nonce, timestamp, sign) {
        return Err(wrong_signature());
    }
    if strict && !remember_nonce(st, nonce) {
        return Err(wrong_signature());
    }
    if coin(st.field.intermittent_8521) {
        return Err(wrong_signature());
    }
    Ok(())
}

/// Records `nonce`; false when it was already used within the timestamp window.
fn remember_nonce(st: &HttpState, nonce: &str) -> bool {
    let mut nonces = st
        .nonces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let window = st.field.timestamp_window;
    nonces.retain(|_, seen| now.duration_since(*seen) < window);
    nonces.insert(nonce.to_string(), now).is_none()
}

/// The answer's code when it is an error, for the `/sim/stats` record.
fn code_of(answer: &Json<JsonValue>) -> &str {
    answer
        .0
        .get("code")
        .and_then(JsonValue::as_str)
        .unwrap_or("?")
}

macro_rules! signed {
    ($st:ident, $headers:ident, $query:ident) => {
        $st.delay().await;
        if let Err(answer) = check_signature(&$st, &$headers, &$query) {
            bump(&$st.counters.auth_rejected);
            $st.field_log.signing_error(code_of(&answer));
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
    super::certification_answer(&st, OPEN)
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

/// `quota/all`: every current value of a device linked to the key — for an offline device
/// its last values, as the real cloud answers (protocol §8). An unknown or unlinked
/// device gets 1006 (protocol §9).
pub(super) async fn quota_all(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    let sn = query.get("sn").map(String::as_str).unwrap_or("");
    let linked = !st.field.unlinked_devices.iter().any(|u| u == sn);
    match st.devices.iter().find(|d| d.sn() == sn).filter(|_| linked) {
        Some(d) => ok(JsonValue::Object(d.quota())),
        None => {
            st.field_log.signing_error("1006");
            envelope(
                "1006",
                "current device is not allowed to get device info",
                JsonValue::Null,
            )
        }
    }
}
