//! The web server: dashboard (assets embedded), JSON API, SSE live updates, CSV export
//! and `/metrics`, on 127.0.0.1 by default, with an optional bearer token. Hardened for a
//! LAN with hostile clients (`docs/security.md`): timeouts and a connection cap, a Host
//! allow-list, JSON-only same-origin writes, the token only in a header, security headers.
//!
//! # Layout
//! - this file: [`serve`], [`router`], [`AppState`], `/metrics`.
//! - [`config`]: [`WebConfig`] (`[web]`) and its start-up check (a public bind needs a token).
//! - [`server`]: the accept loop — header timeout, connection cap, [`ConnInfo`].
//! - [`slots`]: the connection cap (the oldest idle connection makes room for a new one).
//! - [`guard`]: Host allow-list, write rules (JSON, same Origin), security headers.
//! - [`auth`]: the token (constant-time, `Authorization` header only), [`new_token`].
//! - [`api`]: `/api/devices`, `/api/states`, `/api/history`.
//! - [`csv`]: `/api/export.csv` (cells that a spreadsheet would run as formulas are escaped).
//! - [`sse`]: the `/api/events` stream.
//! - [`health`]: `/healthz` (process up) and `/readyz` (connected, devices fresh), public.
//! - [`diagnostics`]: `/api/diagnostics`, the bug-report bundle as a download (one build
//!   at a time; without a token only for this machine).
//! - [`battery_mode`]: `/api/devices/{sn}/battery-mode` (optimisers' battery modes with
//!   a lease, docs/optimisers.md).
//! - [`control`]: `/api/devices/{sn}/settings` (read-back, changes) and
//!   `/api/control/audit` (protocol §10).
//! - [`assets`]: the embedded dashboard (`index.html`, `app.js`, `live.js`, `settings.js`,
//!   `style.css`).

pub mod api;
pub mod assets;
pub mod auth;
pub mod battery_mode;
pub mod config;
pub mod control;
pub mod csv;
pub mod diagnostics;
pub mod guard;
pub mod health;
pub mod server;
pub mod slots;
pub mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use model::BridgeStats;
use model::ControlPort;
use serde::Deserialize;
use store::StateStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use auth::{Token, new_token};
pub use config::WebConfig;
pub use server::ConnInfo;

use crate::error::SinkError;
use crate::metrics::{MetricsSet, Scope};
use crate::text_format;

/// The largest request body read (a settings change is < 100 bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub token: Option<Token>,
    pub metrics: MetricsSet,
    /// The Host names answered besides loopback names and IP addresses.
    pub hosts: Arc<guard::HostRules>,
    /// How long a request body may take to arrive (the header timeout).
    pub body_timeout: Duration,
    /// Builds `/api/diagnostics`; `None`: the route answers 404.
    pub diagnostics: diagnostics::Provider,
    /// Carries out settings changes; `None`: control is off (`[control] enabled = false`),
    /// the Settings card is hidden and `POST …/settings` is refused.
    pub control: Option<Arc<dyn ControlPort>>,
    pub shutdown: CancellationToken,
}

/// Checks `config` ([`WebConfig::check`]), binds `config.bind` and serves until `shutdown`
/// fires. Returns the bound address (useful with port 0) and the server task.
/// `diagnostics` builds `/api/diagnostics`; `control` carries out settings changes (`None`
/// when control is off).
pub async fn serve(
    config: WebConfig,
    store: StateStore,
    stats: BridgeStats,
    diagnostics: diagnostics::Provider,
    control: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), SinkError> {
    config.check()?;
    if config.is_public() && config.token().is_none() {
        tracing::warn!(
            bind = %config.bind,
            "the dashboard is open to every machine that can reach it, without a token \
             ([web] allow_public_without_token = true): anyone there can read every value \
             and serial number"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| SinkError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SinkError::Bind {
        addr: config.bind,
        source,
    })?;
    let app = router(AppState {
        store,
        stats: stats.clone(),
        token: config.token().map(Token::new),
        metrics: config.metrics,
        hosts: Arc::new(guard::HostRules::new(config.allowed_host_names())),
        body_timeout: config.header_timeout,
        diagnostics,
        control,
        shutdown: shutdown.clone(),
    });
    let limits = server::Limits {
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
    };
    let handle = tokio::spawn(server::run(listener, app, limits, stats, shutdown));
    tracing::info!(%addr, "dashboard listening");
    Ok((addr, handle))
}

/// All routes. The dashboard's static files and the health probes are public (they hold
/// no data); everything else goes through the token check and the write rules. Every
/// request passes the Host check (the probes excepted) and every answer gets the
/// security headers ([`guard`]).
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/devices", get(api::devices))
        .route("/api/states", get(api::states))
        .route("/api/history", get(api::history))
        .route("/api/export.csv", get(csv::export_csv))
        .route("/api/events", get(sse::events))
        .route("/api/diagnostics", get(diagnostics::download))
        .route(
            "/api/devices/{sn}/settings",
            get(control::get_settings).post(control::post_settings),
        )
        .route(
            "/api/devices/{sn}/battery-mode",
            get(battery_mode::get_mode).post(battery_mode::post_mode),
        )
        .route("/api/control/audit", get(control::audit))
        .route("/metrics", get(metrics))
        // The last layer runs first: the token, then the write rules.
        .route_layer(from_fn_with_state(state.clone(), guard::check_write))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/settings.js", get(assets::settings_js))
        .route("/live.js", get(assets::live_js))
        .route("/grid.js", get(assets::grid_js))
        .route("/style.css", get(assets::style_css))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(state.clone(), guard::check_host))
        .layer(middleware::map_response(guard::security_headers))
        .with_state(state)
}

/// `/metrics?device=<SN>`: one device's series only; `?set=health|all` overrides
/// `[web] metrics` for this scrape (a Prometheus job can ask for either).
#[derive(Deserialize)]
struct MetricsQuery {
    device: Option<String>,
    set: Option<MetricsSet>,
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the classic text
/// format (`curl`, `promtool check metrics`): [`crate::text_format`].
async fn metrics(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<MetricsQuery>,
) -> Response {
    // An unknown `set` is a 400 naming the accepted values (axum's Query rejection).
    let scope = Scope {
        set: q.set.unwrap_or(app.metrics),
        device: q.device.as_deref(),
    };
    let body = crate::metrics::render_scoped(&app.store, &app.stats, scope);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if text_format::wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
    } else {
        let text = text_format::from_openmetrics(&body);
        ([(header::CONTENT_TYPE, text_format::CONTENT_TYPE)], text).into_response()
    }
}
