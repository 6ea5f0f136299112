//! `/healthz` and `/readyz` for container HEALTHCHECKs, systemd/Kubernetes-style
//! watchdogs and load balancers. Both are public (a probe cannot carry the dashboard's
//! token) and show no serial numbers or values — only counts and a reason.
//!
//! - `/healthz`: the process is up and serving (liveness): always 200 while it answers.
//! - `/readyz`: the bridge is doing its job (readiness): the source is connected and every
//!   known device is fresh (protocol §8 stages, `model::Stage`): 200, else 503 with
//!   the reason — not connected, no device reported yet, or devices stale/unavailable.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{BridgeStats, Stage};
use serde::Serialize;
use serde_json::json;
use store::StateStore;

use super::AppState;

pub async fn healthz(State(app): State<AppState>) -> Response {
    let status = if app.shutdown.is_cancelled() {
        "stopping"
    } else {
        "ok"
    };
    Json(json!({ "status": status })).into_response()
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let r = readiness(&app.store, &app.stats, app.shutdown.is_cancelled());
    let status = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

/// The `/readyz` answer.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// Why not ready; `None` when ready.
    pub reason: Option<String>,
    pub source_connected: bool,
    /// How many devices are in each stage.
    pub devices: StageCounts,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct StageCounts {
    pub fresh: usize,
    pub stale: usize,
    pub unavailable: usize,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.ready
    }
}

/// Ready: connected, at least one device, every device fresh, not shutting down.
pub fn readiness(store: &StateStore, stats: &BridgeStats, stopping: bool) -> Readiness {
    let connected = stats.snapshot().source.connected;
    let devices = store.devices();
    let count = |stage: Stage| {
        devices
            .iter()
            .filter(|d| d.stage.unwrap_or(Stage::Unavailable) == stage)
            .count()
    };
    let counts = StageCounts {
        fresh: count(Stage::Fresh),
        stale: count(Stage::Stale),
        unavailable: count(Stage::Unavailable),
    };
    let reason = if stopping {
        Some("shutting down".to_string())
    } else if !connected {
        Some("source not connected".to_string())
    } else if devices.is_empty() {
        Some("no device has reported yet".to_string())
    } else if counts.fresh < devices.len() {
        Some(format!(
            "{} of {} devices not fresh ({} stale, {} unavailable)",
            devices.len() - counts.fresh,
            devices.len(),
            counts.stale,
            counts.unavailable
        ))
    } else {
        None
    };
    Readiness {
        ready: reason.is_none(),
        reason,
        source_connected: connected,
        devices: counts,
    }
}
