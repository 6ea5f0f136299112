//! The JSON API: devices, all 216 states, history of one state (also the CSV export's:
//! [`window_points`]).

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::StateDef;
use model::{Stage, from_unix_ms, unix_ms};
use protocol::Value;
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::{ChannelSnapshot, LatestState, StateStore};

use super::AppState;
use crate::units::display_unit;

/// Default history window when `from` is missing.
const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

/// An error answer: status and message (as `{"error": ...}`).
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// The device a request means: `device=` or the first one the store knows.
pub(super) fn pick_device(store: &StateStore, device: Option<String>) -> Option<String> {
    device
        .filter(|d| !d.is_empty())
        .or_else(|| store.devices().into_iter().next().map(|d| d.device_sn))
}

pub async fn devices(State(app): State<AppState>) -> Response {
    let devices = app.store.devices();
    // Each device's battery mode while optimisers may set one (docs/optimisers.md).
    let battery_modes: serde_json::Map<String, serde_json::Value> = app
        .control
        .as_ref()
        .map(|port| {
            devices
                .iter()
                .filter_map(|d| {
                    let status = port.battery_mode_status(&d.device_sn)?;
                    Some((d.device_sn.clone(), serde_json::to_value(status).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({
        "now_ms": unix_ms(SystemTime::now()),
        "devices": devices,
        "battery_modes": battery_modes,
        "stats": app.stats.snapshot(),
        "history": app.store.history_stats(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    pub device: Option<String>,
}

/// One row of the states table.
#[derive(Debug, Serialize)]
pub struct StateRow {
    pub key: &'static str,
    pub channel: &'static str,
    pub name: &'static str,
    pub human_name: &'static str,
    pub kind: &'static str,
    pub unit: &'static str,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub value: Option<Value>,
    pub out_of_range: bool,
    pub updated_ms: Option<i64>,
    pub age_secs: Option<f64>,
    /// The path the value came on: `cloud_push`, `cloud_poll`, `modbus`, `history`.
    pub source: Option<&'static str>,
    /// The stage of the state's channel (`None` while it has no value; `docs/stages.md`).
    pub stage: Option<Stage>,
}

fn row(
    state: &'static StateDef,
    latest: Option<&LatestState>,
    channels: &[ChannelSnapshot],
    now: SystemTime,
) -> StateRow {
    StateRow {
        key: state.key,
        channel: state.channel.as_str(),
        name: state.name,
        human_name: state.human_name.trim(),
        kind: state.kind.as_str(),
        unit: display_unit(state),
        min: state.min,
        max: state.max,
        value: latest.map(|l| l.value.clone()),
        out_of_range: latest.is_some_and(|l| l.out_of_range),
        updated_ms: latest.map(|l| unix_ms(l.updated_at)),
        age_secs: latest.map(|l| {
            now.duration_since(l.updated_at)
                .unwrap_or_default()
                .as_secs_f64()
        }),
        source: latest.map(|l| l.source.as_str()),
        stage: latest.and_then(|_| {
            channels
                .iter()
                .find(|c| c.channel == state.channel.as_str())
                .map(|c| c.stage)
        }),
    }
}

/// All catalog states of a device, with values where known, and its channels' stages.
pub async fn states(State(app): State<AppState>, Query(q): Query<DeviceQuery>) -> Response {
    let now = SystemTime::now();
    let device = pick_device(&app.store, q.device);
    let latest = device
        .as_deref()
        .map(|d| app.store.latest(d))
        .unwrap_or_default();
    let channels = device
        .as_deref()
        .and_then(|d| app.store.device(d))
        .map(|d| d.channels)
        .unwrap_or_default();
    let rows: Vec<StateRow> = catalog::STATES
        .iter()
        .map(|s| {
            let l = latest.iter().find(|l| l.state.index == s.index);
            row(s, l, &channels, now)
        })
        .collect();
    Json(json!({"device": device, "now_ms": unix_ms(now), "channels": channels, "states": rows}))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Catalog key, e.g. `EnergyStreamItem.pvPwr`.
    pub state: Option<String>,
    pub device: Option<String>,
    /// Start of the window ([`parse_time`]); default one hour before `to`.
    pub from: Option<String>,
    /// End of the window ([`parse_time`]); default now.
    pub to: Option<String>,
}

/// A `from`/`to` value: milliseconds since 1970 (what the dashboard sends; negative
/// values mean 1970) or a UTC time like `2026-11-25T13:05:00Z` (parsed by humantime).
pub fn parse_time(name: &str, text: &str) -> Result<SystemTime, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(from_unix_ms(ms));
    }
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        bad_request(format!(
            "{name}={text:?}: {e}; expected milliseconds since 1970 or a UTC time like 2026-11-25T13:05:00Z"
        ))
    })
}

pub(super) struct Window {
    pub state: &'static StateDef,
    pub device: Option<String>,
    pub from: SystemTime,
    pub to: SystemTime,
}

fn window(app: &AppState, q: HistoryQuery) -> Result<Window, ApiError> {
    let key = q
        .state
        .ok_or_else(|| bad_request("missing state=<Channel.state>"))?;
    let state =
        catalog::by_key(&key).ok_or_else(|| bad_request(format!("unknown state {key:?}")))?;
    let to = match q.to {
        Some(text) => parse_time("to", &text)?,
        None => SystemTime::now(),
    };
    let from = match q.from {
        Some(text) => parse_time("from", &text)?,
        None => to.checked_sub(DEFAULT_WINDOW).unwrap_or(to),
    };
    if from > to {
        return Err(bad_request("from is after to"));
    }
    Ok(Window {
        state,
        device: pick_device(&app.store, q.device),
        from,
        to,
    })
}

async fn load(app: &AppState, w: &Window) -> Result<Vec<(SystemTime, f64)>, ApiError> {
    let Some(device) = w.device.clone() else {
        return Ok(Vec::new());
    };
    let store = app.store.clone();
    let (key, from, to) = (w.state.key, w.from, w.to);
    let result = tokio::task::spawn_blocking(move || store.history(&device, key, from, to)).await;
    match result {
        Ok(Ok(points)) => Ok(points),
        Ok(Err(e)) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(_) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "history query failed".into(),
        )),
    }
}

/// The window a query asks for and its stored points (the JSON history and the CSV's).
pub(super) async fn window_points(
    app: &AppState,
    q: HistoryQuery,
) -> Result<(Window, Vec<(SystemTime, f64)>), ApiError> {
    let w = window(app, q)?;
    let points = load(app, &w).await?;
    Ok((w, points))
}

/// Numeric history of one state: `points` as `[ms, value]` pairs, oldest first.
pub async fn history(State(app): State<AppState>, Query(q): Query<HistoryQuery>) -> Response {
    let (w, points) = match window_points(&app, q).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let points: Vec<(i64, f64)> = points.into_iter().map(|(t, v)| (unix_ms(t), v)).collect();
    Json(json!({
        "device": w.device,
        "state": w.state.key,
        "human_name": w.state.human_name.trim(),
        "unit": display_unit(w.state),
        "from_ms": unix_ms(w.from),
        "to_ms": unix_ms(w.to),
        "points": points,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_times_are_milliseconds_or_rfc3339() {
        let t = |text| parse_time("from", text).map(unix_ms).map_err(|e| e.1);
        assert_eq!(t("1795611906000"), Ok(1_795_611_906_000));
        assert_eq!(t("-5"), Ok(0));
        assert_eq!(t("2026-11-25T13:05:06Z"), Ok(1_795_611_906_000));
        assert_eq!(t("2026-11-25T13:05:06.250Z"), Ok(1_795_611_906_250));
        assert_eq!(t("2026-11-25 13:05:06"), Ok(1_795_611_906_000));
        let e = t("yesterday").unwrap_err();
        assert!(
            e.contains("from=\"yesterday\"") && e.contains("UTC time"),
            "{e}"
        );
    }
}
