//! `GET /api/diagnostics[?format=zip]`: the bug-report bundle (version, redacted config,
//! ages and stages, counters, last errors, the raw-frame capture; serials and ids masked)
//! as a download, built in-process by what runs the server — the runtime hands in a
//! [`DiagnosticsBundle`], since the bundle needs the config, the log and the capture
//! directory, which the sinks do not know. Behind the same token as the rest of the API;
//! without a token only this machine gets it (loopback peers) — it holds the config's
//! shape, errors and the raw frames. One build at a time: a build reads and packs the
//! whole capture, so a second request meanwhile gets 429 with `Retry-After` (counted as
//! `dropped{reason="web_diagnostics_busy"}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::config::is_loopback;
use super::server::ConnInfo;

/// What a refused concurrent request is told to wait (seconds): a build takes about one.
const RETRY_AFTER_SECS: &str = "5";

/// Builds the bundle. Blocking (it reads the capture): the server calls it on a
/// blocking thread.
pub trait DiagnosticsBundle: Send + Sync + 'static {
    /// The bundle, or [`BundleError::Busy`] at once while another is being built in
    /// this process (the builder keeps one at a time, whoever asks).
    fn build(&self, zip: bool) -> Result<BundleFile, BundleError>;
}

/// Why no bundle came out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Another bundle is being built: 429, try again in a moment.
    #[error("a diagnostics bundle is being built; try again in a few seconds")]
    Busy,
    /// Building or packing it failed: 500.
    #[error("{0}")]
    Failed(String),
}

/// One finished bundle.
#[derive(Debug, Clone)]
pub struct BundleFile {
    /// e.g. `oceanbridge-diagnostics-20261129T061500Z.tar.gz`.
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// What the route needs from [`AppState`].
pub type Provider = Option<Arc<dyn DiagnosticsBundle>>;

#[derive(Deserialize)]
pub struct FormatQuery {
    format: Option<String>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub async fn download(
    State(app): State<AppState>,
    Extension(conn): Extension<ConnInfo>,
    Query(q): Query<FormatQuery>,
) -> Response {
    if app.token.is_none() && !is_loopback(conn.peer.ip()) {
        return error(
            StatusCode::FORBIDDEN,
            "the diagnostics bundle is only for this machine while no token is set ([web] token)"
                .into(),
        );
    }
    let Some(provider) = app.diagnostics.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "no diagnostics bundle here (only `oceanbridge run` and `demo` serve one)".into(),
        );
    };
    let zip = match q.format.as_deref().unwrap_or("") {
        "" | "tar.gz" | "tgz" => false,
        "zip" => true,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format={other}: expected tar.gz or zip"),
            );
        }
    };
    let built = tokio::task::spawn_blocking(move || provider.build(zip));
    match built.await {
        Ok(Ok(file)) => (
            [
                (header::CONTENT_TYPE, file.content_type.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", file.file_name),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            file.bytes,
        )
            .into_response(),
        Ok(Err(BundleError::Busy)) => {
            app.stats.record_dropped("web_diagnostics_busy");
            let mut busy = error(StatusCode::TOO_MANY_REQUESTS, BundleError::Busy.to_string());
            busy.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            busy
        }
        Ok(Err(e @ BundleError::Failed(_))) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("building the bundle failed: {e}"),
        ),
    }
}
