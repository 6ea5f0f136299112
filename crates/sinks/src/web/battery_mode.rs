//! The battery-mode door for optimisers (docs/optimisers.md): a thin adapter over
//! [`ControlPort::battery_mode`], reading the same payloads as the MQTT door
//! ([`ModeCommand::parse`]).
//!
//! - `GET /api/devices/{sn}/battery-mode`: requested and applied mode, the lease's end,
//!   the last refusal.
//! - `POST /api/devices/{sn}/battery-mode`: `{"mode": 2 | "hold", "power_w": …, "lease":
//!   900 | "15m"}` (or a bare evcc integer); the write rules and token of every write
//!   ([`super::guard`], [`super::auth`]). 200 with the outcome when carried out, 422 when
//!   refused, 403 when battery modes are off or no token is configured, 400 for a body
//!   that is no command, 404 for a device the bridge has not heard of.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{ModeCommand, Origin, SetOutcome};

use super::AppState;
use super::api::ApiError;
use super::control::{not_found, read_body, refused};

const OFF: &str =
    "battery modes are off ([control] enabled and [control] optimiser must both be true)";

pub async fn get_mode(State(app): State<AppState>, Path(sn): Path<String>) -> Response {
    if app.store.device(&sn).is_none() {
        return not_found(&sn);
    }
    match app
        .control
        .as_ref()
        .and_then(|p| p.battery_mode_status(&sn))
    {
        Some(status) => Json(status).into_response(),
        None => refused(StatusCode::FORBIDDEN, OFF),
    }
}

pub async fn post_mode(
    State(app): State<AppState>,
    Path(sn): Path<String>,
    body: Body,
) -> Response {
    // A port without battery modes has no status for any device.
    let Some(port) = app
        .control
        .clone()
        .filter(|p| p.battery_mode_status(&sn).is_some())
    else {
        return refused(StatusCode::FORBIDDEN, OFF);
    };
    if app.token.is_none() {
        return refused(
            StatusCode::FORBIDDEN,
            "battery-mode commands over the web API need a dashboard token ([web] token)",
        );
    }
    let body = match read_body(&app, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let command = match ModeCommand::parse(&body) {
        Ok(c) => c,
        Err(e) => {
            return ApiError(
                StatusCode::BAD_REQUEST,
                format!("not a battery-mode command ({e}); expected e.g. {{\"mode\": \"hold\", \"lease\": \"15m\"}}"),
            )
            .into_response();
        }
    };
    let Some(device) = app.store.device(&sn) else {
        return not_found(&sn);
    };
    // Its own task: a client that hangs up must not cut a command short between its
    // frame and the read-back.
    let sn = device.device_sn;
    let task = tokio::spawn(async move { port.battery_mode(&sn, command, Origin::Web).await });
    let Ok(done) = task.await else {
        return ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the battery-mode command failed inside the bridge; see its log".into(),
        )
        .into_response();
    };
    let status = match done.outcome {
        SetOutcome::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, Json(done)).into_response()
}
