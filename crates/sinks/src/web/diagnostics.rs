//! `GET /api/diagnostics[?format=zip]`: the bug-report bundle (version, redacted config,
//! ages and stages, counters, last errors, the raw-frame capture; serials and ids masked)
//! as a download, built in-process by what runs the server — the runtime hands in a
//! [`DiagnosticsBundle`], since the bundle needs the config, the log and the capture
//! directory, which the sinks do not know. Behind the same token as the rest of the API.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;

/// Builds the bundle. Blocking (it reads the capture): the server calls it on a
/// blocking thread.
pub trait DiagnosticsBundle: Send + Sync + 'static {
    fn build(&self, zip: bool) -> Result<BundleFile, String>;
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

pub async fn download(State(app): State<AppState>, Query(q): Query<FormatQuery>) -> Response {
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
    match tokio::task::spawn_blocking(move || provider.build(zip)).await {
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
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("building the bundle failed: {e}"),
        ),
    }
}
