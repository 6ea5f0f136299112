//! The app route: e-mail/password login (a bearer token) and the MQTT certification the
//! app's token unlocks.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Json;
use base64::Engine;
use serde_json::{Value as JsonValue, json};

use super::{Shared, envelope, ok};
use crate::field::stats::APP;
use crate::stats::bump;

pub(super) async fn login(State(st): State<Shared>, body: Bytes) -> Json<JsonValue> {
    st.delay().await;
    let Ok(req) = serde_json::from_slice::<JsonValue>(&body) else {
        bump(&st.counters.logins_failed);
        return envelope("1001", "Parameter error", JsonValue::Null);
    };
    let email = req.get("email").and_then(JsonValue::as_str).unwrap_or("");
    let password = req
        .get("password")
        .and_then(JsonValue::as_str)
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .and_then(|p| String::from_utf8(p).ok());
    if !email.eq_ignore_ascii_case(&st.email) {
        bump(&st.counters.logins_failed);
        return envelope("2018", "The account does not exist", JsonValue::Null);
    }
    if password.as_deref() != Some(st.password.as_str()) {
        bump(&st.counters.logins_failed);
        return envelope("2026", "Incorrect password", JsonValue::Null);
    }
    let token = match st.new_token() {
        Ok(token) => token,
        Err(e) => {
            tracing::error!("login refused: {e}");
            return envelope("500", "Internal error", JsonValue::Null);
        }
    };
    bump(&st.counters.logins_ok);
    ok(json!({
        "user": {
            "userId": st.user_id,
            "email": st.email,
            "name": "EcoFlow User",
            "state": 0,
            "regtype": "email",
            "source": "IOT_APP",
            "administrator": false,
        },
        "token": token,
    }))
}

pub(super) async fn certification(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    st.delay().await;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !token.is_some_and(|t| st.token_valid(t)) {
        bump(&st.counters.auth_rejected);
        return envelope("401", "Login expired, please log in again", JsonValue::Null);
    }
    if query.get("userId").map(String::as_str) != Some(st.user_id.as_str()) {
        bump(&st.counters.auth_rejected);
        return envelope("1001", "Parameter error: userId", JsonValue::Null);
    }
    super::certification_answer(&st, APP)
}
