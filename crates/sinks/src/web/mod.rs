//! The web server: dashboard (assets embedded), JSON API, SSE live updates, CSV export
//! and `/metrics`, on 127.0.0.1 by default, with an optional bearer token.
//!
//! # Layout
//! - this file: [`WebConfig`], [`serve`], [`router`], the token check.
//! - [`api`]: `/api/devices`, `/api/states`, `/api/history`, `/api/export.csv`.
//! - [`sse`]: the `/api/events` stream.
//! - [`health`]: `/healthz` (process up) and `/readyz` (connected, devices fresh), public.
//! - [`diagnostics`]: `/api/diagnostics`, the bug-report bundle as a download.
//! - [`control`]: `/api/devices/{sn}/settings` (read-back, changes) and
//!   `/api/control/audit` (issue 14, protocol §10).
//! - [`assets`]: the embedded dashboard (`index.html`, `app.js`, `settings.js`,
//!   `style.css`).

pub mod api;
pub mod assets;
pub mod control;
pub mod diagnostics;
pub mod health;
pub mod sse;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use connect::Secret;
use serde::{Deserialize, Serialize};
use store::ControlPort;
use store::{BridgeStats, StateStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::SinkError;
use crate::metrics::{MetricsSet, Scope};
use crate::text_format;

/// Where the dashboard listens. All fields have defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Listen address. Default `127.0.0.1:8080` (local only; use a reverse proxy to expose).
    pub bind: SocketAddr,
    /// When set, every API call, SSE stream and `/metrics` needs
    /// `Authorization: Bearer <token>` or `?token=<token>`. Never printed. Default none.
    pub token: Option<Secret>,
    /// What `/metrics` carries: `"all"` (every state of every device, plus health) or
    /// `"health"` (per device status, counts, ages; for large fleets). Default `"all"`.
    pub metrics: MetricsSet,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            metrics: MetricsSet::All,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: StateStore,
    pub stats: BridgeStats,
    pub token: Option<Arc<str>>,
    pub metrics: MetricsSet,
    /// Builds `/api/diagnostics`; `None`: the route answers 404.
    pub diagnostics: diagnostics::Provider,
    /// Carries out settings changes; `None`: control is off (`[control] enabled = false`),
    /// the Settings card is hidden and `POST …/settings` is refused.
    pub control: Option<Arc<dyn ControlPort>>,
    pub shutdown: CancellationToken,
}

/// Binds `config.bind` and serves until `shutdown` fires. Returns the bound address
/// (useful with port 0) and the server task. `diagnostics` builds `/api/diagnostics`;
/// `control` carries out settings changes (`None` when control is off).
pub async fn serve(
    config: WebConfig,
    store: StateStore,
    stats: BridgeStats,
    diagnostics: diagnostics::Provider,
    control: Option<Arc<dyn ControlPort>>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), SinkError> {
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
        stats,
        token: config
            .token
            .filter(|t| !t.is_empty())
            .map(|t| t.expose().into()),
        metrics: config.metrics,
        diagnostics,
        control,
        shutdown: shutdown.clone(),
    });
    // No Nagle delay: SSE events and small JSON answers are latency-bound (with Nagle a
    // small write waits for the client's delayed ACK: p99 38 ms instead of ~3 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let handle = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(e) = server.await {
            tracing::error!(error = %e, "web server failed");
        }
    });
    tracing::info!(%addr, "dashboard listening");
    Ok((addr, handle))
}

/// All routes. The dashboard's static files and the health probes are public (they hold
/// no data); everything else goes through the token check.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/devices", get(api::devices))
        .route("/api/states", get(api::states))
        .route("/api/history", get(api::history))
        .route("/api/export.csv", get(api::export_csv))
        .route("/api/events", get(sse::events))
        .route("/api/diagnostics", get(diagnostics::download))
        .route(
            "/api/devices/{sn}/settings",
            get(control::get_settings).post(control::post_settings),
        )
        .route("/api/control/audit", get(control::audit))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/settings.js", get(assets::settings_js))
        .route("/style.css", get(assets::style_css))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(protected)
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

/// Compares without an early exit on the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `?token=` of a request. `Query` percent-decodes it (the dashboard sends it through
/// `encodeURIComponent`, so `+`, `/`, `=` etc. in a token arrive as `%2B`, ...).
#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn query_token(uri: &Uri) -> Option<String> {
    Query::<TokenQuery>::try_from_uri(uri)
        .ok()
        .and_then(|Query(q)| q.token)
}

async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.token else {
        return next.run(request).await;
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let from_query = query_token(request.uri());
    let given = from_header.or(from_query.as_deref()).unwrap_or_default();
    if same_secret(given.as_bytes(), expected.as_bytes()) {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong token\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_percent_decoded() {
        let token = |query: &str| {
            let uri: Uri = format!("/metrics?{query}").parse().unwrap();
            query_token(&uri)
        };
        assert_eq!(token("a=1&token=abc").as_deref(), Some("abc"));
        assert_eq!(token("token=a%2Bb%2F%3D").as_deref(), Some("a+b/="));
        assert_eq!(token("token=a+b").as_deref(), Some("a b"));
        assert_eq!(token("token=100%").as_deref(), Some("100%"));
        assert_eq!(token("token=%zz").as_deref(), Some("%zz"));
        assert_eq!(token("other=1"), None);
        assert_eq!(query_token(&Uri::from_static("/metrics")), None);
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
