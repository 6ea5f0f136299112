//! The dashboard's files, compiled into the binary (no CDN, no build step).

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const SETTINGS_JS: &str = include_str!("assets/settings.js");
const LIVE_JS: &str = include_str!("assets/live.js");
const GRID_JS: &str = include_str!("assets/grid.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

const NO_CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

pub async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), NO_CACHE],
        INDEX_HTML,
    )
}

pub async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            NO_CACHE,
        ],
        APP_JS,
    )
}

/// The Settings card (docs/control.md); a file of its own to keep `app.js` small.
pub async fn settings_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            NO_CACHE,
        ],
        SETTINGS_JS,
    )
}

/// The live updates (the event stream read with fetch, so it can carry the token).
pub async fn live_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            NO_CACHE,
        ],
        LIVE_JS,
    )
}

/// Grid presence: the outage banner and the header's indicator (protocol §13).
pub async fn grid_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            NO_CACHE,
        ],
        GRID_JS,
    )
}

pub async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), NO_CACHE],
        STYLE_CSS,
    )
}
