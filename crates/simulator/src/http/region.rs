//! The other region's API (protocol §9): the account lives in one region, so here the app
//! login answers the wrong-region message and the open API 8513. Everything is counted in
//! `/sim/stats` (`accounts.<route>.wrong_region`).

use axum::Router;
use axum::http::StatusCode;
use axum::response::Json;
use axum::routing::{any, post};
use serde_json::Value as JsonValue;

use super::{Shared, envelope};
use crate::field::stats::{APP, OPEN};
use crate::stats::bump;

/// Code of the wrong-region login answer. No public source we found gives the cloud's
/// code, only its text (protocol §9), so the simulator reuses its unknown-account code: a
/// client cannot tell the two apart by code, as in the field.
pub const WRONG_REGION_CODE: &str = "2018";
/// Text of the wrong-region login answer (protocol §9).
pub const WRONG_REGION_MESSAGE: &str = "Account doesn't exist or incorrect password";

/// The other region's routes.
pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/auth/login",
            post(|st: axum::extract::State<Shared>| async move {
                st.delay().await;
                bump(&st.counters.logins_failed);
                st.field_log.wrong_region(APP);
                envelope(WRONG_REGION_CODE, WRONG_REGION_MESSAGE, JsonValue::Null)
            }),
        )
        .route(
            "/iot-auth/app/certification",
            any(|| async {
                envelope("401", "Login expired, please log in again", JsonValue::Null)
            }),
        )
        // The key is unknown in this region: 8513, as peers see on the wrong host
        // (tolwi/hassio-ecoflow-cloud issues #343, #884; evcc-io/evcc PR #28505).
        .route("/iot-open/{*rest}", any(open_wrong_region))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                envelope("404", "Not Found", JsonValue::Null),
            )
        })
        .with_state(state)
}

async fn open_wrong_region(st: axum::extract::State<Shared>) -> Json<JsonValue> {
    st.delay().await;
    bump(&st.counters.auth_rejected);
    st.field_log.wrong_region(OPEN);
    st.field_log.signing_error("8513");
    envelope("8513", "accessKey is invalid", JsonValue::Null)
}
