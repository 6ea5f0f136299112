//! The settings API (protocol §10, docs/control.md): what a device reports for its settings,
//! changing them, and the audit of every attempt.
//!
//! - `GET /api/devices/{sn}/settings`: the device's read-back settings (96/8) and its
//!   scheduled grid charge (the timer-task list, §12), whether control is on and whether
//!   this server accepts changes.
//! - `POST /api/devices/{sn}/settings`: a setting by name and its value, as the CLI and
//!   Home Assistant take them (`{"setting": "feed_power_cap", "value": 800}`,
//!   `{"setting": "grid_charge", "value": "1500W 22:00-05:30 daily"}`; names and
//!   values as `protocol::settings` reads them; 422 when they make no request), or a
//!   [`SetRequest`] as JSON (`{"setting": "work_mode", "mode": "backup"}`, `{"setting": "battery_limits", "backup_reserve":
//!   20, "surplus_threshold": 80}`, `{"setting": "feed_in", "mode": "limited", "cap_w":
//!   800}`), carried out by the [`ControlPort`]; answers the [`SetOutcome`] JSON. Accepted
//!   only with a dashboard token configured (a write must never be open to anyone who can
//!   reach the port), as `Content-Type: application/json` from this dashboard's own origin
//!   (the write rules of [`super::guard`]: 415, 403). Status: 200 for applied, not applied and dry run (the request was
//!   carried out; the body says how it ended), 422 when refused (validation, rate limit),
//!   403 when control is off or no token is configured (a refused outcome too), 400 for a
//!   body that is no request, 404 for a device the bridge has not heard of.
//! - `GET /api/control/audit?device=&limit=`: the newest audit rows, newest first.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{ControlPort, Origin, SetOutcome};
use protocol::control::{GRID_CHARGE_SLOT, MAX_FEED_POWER_W};
use protocol::grid_charge::{grid_charge_value, window_text};
use protocol::settings::request_for;
use protocol::timer::{self, Repeat, TimerTask};
use protocol::{DeviceSettings, FeedMode, SetError, SetRequest, WorkMode};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use super::AppState;
use super::api::ApiError;

/// Rows `GET /api/control/audit` returns without `limit`.
const DEFAULT_AUDIT_ROWS: usize = 100;

/// The read-back settings as the API shows them: mode names (with the raw codes, which
/// may be modes users cannot set), percentages, watts; `null` until reported.
pub fn settings_json(s: &DeviceSettings) -> JsonValue {
    json!({
        "work_mode": s.work_mode.and_then(WorkMode::from_code).map(WorkMode::as_str),
        "work_mode_code": s.work_mode,
        "backup_reserve": s.backup_reserve,
        "surplus_threshold": s.surplus_threshold,
        "charge_upper_limit": s.charge_upper_limit,
        "feed_mode": s.feed_mode.and_then(FeedMode::from_code).map(FeedMode::as_str),
        "feed_mode_code": s.feed_mode,
        "feed_power_cap_w": s.feed_power_cap_w,
    })
}

/// The scheduled grid charge as read back from the timer-task list (§12, slot 1):
/// `{"armed", "running", "power_w", "window", "repeat", "date", "text"}`; `null` fields
/// when the device reports no such slot.
pub fn grid_charge_json(tasks: &[TimerTask]) -> JsonValue {
    let Some(task) = timer::find(tasks, GRID_CHARGE_SLOT) else {
        return JsonValue::Null;
    };
    let window = task.set_windows().next();
    let (repeat, date) = match task.repeat {
        Repeat::Daily => ("daily", None),
        Repeat::Once { date } => ("once", Some(date.to_string())),
        Repeat::Unknown { .. } => ("unknown", None),
    };
    json!({
        "armed": task.armed,
        "running": task.running,
        "power_w": task.power_w,
        "window": window.map(window_text),
        "repeat": repeat,
        "date": date,
        "text": grid_charge_value(tasks),
    })
}

pub(super) fn not_found(sn: &str) -> Response {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("unknown device {sn:?}: the bridge has not heard of it"),
    )
    .into_response()
}

/// The port when this server accepts writes: control on and a token configured.
fn writable(app: &AppState) -> Option<&Arc<dyn ControlPort>> {
    app.control.as_ref().filter(|_| app.token.is_some())
}

pub async fn get_settings(State(app): State<AppState>, Path(sn): Path<String>) -> Response {
    let Some(device) = app.store.device(&sn) else {
        return not_found(&sn);
    };
    let modes = |all: &[&str]| json!(all);
    Json(json!({
        "device": device.device_sn,
        "control_enabled": app.control.is_some(),
        "writable": writable(&app).is_some(),
        "settings": device.settings.as_ref().map(settings_json),
        "reported_ms": device.settings_ms,
        "grid_charge": device.timer_tasks.as_deref().map(grid_charge_json),
        "timer_tasks": device.timer_tasks,
        "options": {
            "work_mode": modes(&WorkMode::ALL.map(WorkMode::as_str)),
            "feed_mode": modes(&FeedMode::ALL.map(FeedMode::as_str)),
            "feed_power_cap_w": {"min": 1, "max": MAX_FEED_POWER_W},
            "grid_charge_w": {"step": timer::plan::POWER_STEP_W},
        },
    }))
    .into_response()
}

/// An outcome as the answer: its JSON with the status the module doc lists.
fn outcome_response(status: StatusCode, outcome: &SetOutcome) -> Response {
    (status, Json(outcome)).into_response()
}

pub(super) fn refused(status: StatusCode, reason: &str) -> Response {
    outcome_response(
        status,
        &SetOutcome::Refused {
            reason: reason.into(),
        },
    )
}

pub async fn post_settings(
    State(app): State<AppState>,
    Path(sn): Path<String>,
    body: Body,
) -> Response {
    let Some(port) = app.control.clone() else {
        return refused(
            StatusCode::FORBIDDEN,
            "control is off ([control] enabled = false)",
        );
    };
    if app.token.is_none() {
        return refused(
            StatusCode::FORBIDDEN,
            "changing settings over the web API needs a dashboard token ([web] token)",
        );
    }
    let body = match read_body(&app, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let body = match SettingsBody::parse(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "not a settings request ({e}); expected e.g. {{\"setting\": \"work_mode\", \"value\": \"backup\"}} or {{\"setting\": \"work_mode\", \"mode\": \"backup\"}}"
                ),
            )
            .into_response();
        }
    };
    let Some(device) = app.store.device(&sn) else {
        return not_found(&sn);
    };
    let request = match body.request(device.settings.as_ref()) {
        Ok(r) => r,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    // Its own task: a client that hangs up must not cut a write short between sending
    // and its read-back (the controller audits the outcome either way).
    let device_sn = device.device_sn;
    let task = tokio::spawn(async move { port.set(&device_sn, request, Origin::Web).await });
    let outcome = match task.await {
        Ok(o) => o,
        Err(_) => {
            return ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the settings change failed inside the bridge; see its log".into(),
            )
            .into_response();
        }
    };
    let status = match outcome {
        SetOutcome::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        SetOutcome::Applied | SetOutcome::NotApplied { .. } | SetOutcome::DryRun { .. } => {
            StatusCode::OK
        }
    };
    outcome_response(status, &outcome)
}

/// A write's body: it must arrive in time and be small, so a client that sends its
/// headers and then trickles (or never sends) the body does not hold the connection.
pub(super) async fn read_body(app: &AppState, body: Body) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(
        app.body_timeout,
        axum::body::to_bytes(body, super::MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a request body is at most {} bytes", super::MAX_BODY_BYTES),
        )
        .into_response()),
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time".into(),
        )
        .into_response()),
    }
}

/// A `POST` body: a setting by name and its value as people write it (`{"setting":
/// "feed_power_cap", "value": 800}`, parsed by `protocol::settings` like the CLI's and
/// Home Assistant's), or a whole [`SetRequest`].
#[derive(Debug)]
enum SettingsBody {
    Named { setting: String, value: String },
    Request(SetRequest),
}

impl SettingsBody {
    fn parse(body: &[u8]) -> Result<SettingsBody, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Text(String),
            Number(serde_json::Number),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Named {
            setting: String,
            value: Text,
        }
        let json: JsonValue = serde_json::from_slice(body)?;
        if json.get("value").is_some() {
            let named: Named = serde_json::from_value(json)?;
            let value = match named.value {
                Text::Text(t) => t,
                Text::Number(n) => n.to_string(),
            };
            return Ok(SettingsBody::Named {
                setting: named.setting,
                value,
            });
        }
        serde_json::from_value(json).map(SettingsBody::Request)
    }

    /// The request, the partner value of a named setting read from `current` (§10).
    fn request(self, current: Option<&DeviceSettings>) -> Result<SetRequest, SetError> {
        match self {
            SettingsBody::Named { setting, value } => request_for(&setting, &value, current),
            SettingsBody::Request(r) => Ok(r),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub device: Option<String>,
    pub limit: Option<usize>,
}

pub async fn audit(State(app): State<AppState>, Query(q): Query<AuditQuery>) -> Response {
    let store = app.store.clone();
    let limit = q.limit.unwrap_or(DEFAULT_AUDIT_ROWS);
    let device = q.device.filter(|d| !d.is_empty());
    let device_for_query = device.clone();
    let rows =
        tokio::task::spawn_blocking(move || store.audit(device_for_query.as_deref(), limit)).await;
    match rows {
        Ok(Ok(rows)) => Json(json!({
            "control_enabled": app.control.is_some(),
            "device": device,
            "rows": rows,
        }))
        .into_response(),
        Ok(Err(e)) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(_) => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit query failed".into(),
        )
        .into_response(),
    }
}
