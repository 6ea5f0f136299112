//! What every request passes before a handler sees it, and what every answer carries:
//!
//! - [`check_host`]: the `Host` must be `localhost` (or a `*.localhost` name), an IP
//!   address, or a name in `[web] allowed_hosts`; anything else is 421. A DNS-rebinding
//!   page (its own name re-pointed at this machine) sends its own name, so it is refused
//!   before it can read serials, history or diagnostics. An IP address cannot be
//!   re-pointed, so any is fine (a container sees its own address, not the host's the
//!   browser used). The health probes are exempt: they show no data, and a load
//!   balancer's probe may send any name.
//! - [`check_write`]: a write (any method but GET/HEAD/OPTIONS) must be JSON
//!   (`Content-Type: application/json`, else 415) and, when a browser names its page's
//!   `Origin`, come from this dashboard's own origin (else 403). A form or `text/plain`
//!   post is what another site can send without asking the browser first; JSON needs a
//!   CORS preflight, which this server never grants.
//! - [`security_headers`]: no framing (`X-Frame-Options: DENY`, CSP `frame-ancestors
//!   'none'`: the Settings card cannot be clickjacked), a CSP that lets the page load only
//!   its own files, `nosniff`, `no-referrer`, and `Cross-Origin-Resource-Policy:
//!   same-origin`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::config::host_name;

/// The page may load its own scripts, styles and data, and nothing else; it may not be
/// framed. (`img-src data:` for the SVG marker; no inline script or style anywhere.)
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Paths every `Host` may reach: the health probes (no data in them).
const ANY_HOST: [&str; 2] = ["/healthz", "/readyz"];

/// The Host names the server answers to besides loopback names and IP addresses.
#[derive(Debug, Default)]
pub struct HostRules {
    names: Vec<String>,
    /// The first refused name is logged as a warning (it may be the user's own, missing
    /// from `allowed_hosts`); later ones only at debug level, so a scan cannot flood.
    warned: AtomicBool,
}

impl HostRules {
    /// `names`: lower case, as [`super::WebConfig::allowed_host_names`] gives them.
    pub fn new(names: Vec<String>) -> HostRules {
        HostRules {
            names,
            warned: AtomicBool::new(false),
        }
    }

    /// Whether a `Host` value (`name[:port]`) is one to answer.
    pub fn allows(&self, host: &str) -> bool {
        // A user part (`user@host`) is valid in a URI's authority, never in a Host header.
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        if host.contains('@') {
            return false;
        }
        let name = authority.host();
        if name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
        {
            return true;
        }
        let Some(name) = host_name(name) else {
            return false;
        };
        name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name)
    }
}

/// The request's `Host`: the header, else the authority of an absolute-form target.
fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    match headers.get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => uri.authority().map(Authority::as_str),
    }
}

pub async fn check_host(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if ANY_HOST.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let host = request_host(request.headers(), request.uri());
    if host.is_some_and(|h| app.hosts.allows(h)) {
        return next.run(request).await;
    }
    app.stats.record_dropped("web_host_refused");
    if !app.hosts.warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            host = ?host.unwrap_or_default(),
            "refused a request for a Host name this dashboard does not answer to; if it is \
             yours, add it to [web] allowed_hosts (further ones are logged at debug level)"
        );
    } else {
        tracing::debug!(host = ?host.unwrap_or_default(), "Host refused");
    }
    (
        StatusCode::MISDIRECTED_REQUEST,
        "unknown Host name: add it to [web] allowed_hosts\n",
    )
        .into_response()
}

/// `host[:port]` with the port made explicit (`default` when absent), lower case.
fn with_port(authority: &Authority, default: u16) -> (String, u16) {
    (
        authority.host().to_ascii_lowercase(),
        authority.port_u16().unwrap_or(default),
    )
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of a page served under `host`.
/// A `Host` without a port takes the origin scheme's default (a TLS proxy in front).
fn same_origin(origin: &str, host: &str) -> bool {
    let (Ok(origin), Ok(host)) = (origin.parse::<Uri>(), host.parse::<Authority>()) else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    with_port(authority, default) == with_port(&host, default)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The route layer of the protected routes, inside the token check.
pub async fn check_write(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = request_host(headers, request.uri()).unwrap_or_default();
        if !origin.to_str().is_ok_and(|o| same_origin(o, host)) {
            app.stats.record_dropped("web_cross_origin_write");
            return (
                StatusCode::FORBIDDEN,
                "cross-origin write refused: only this dashboard's own page may change settings\n",
            )
                .into_response();
        }
    }
    if !is_json(headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a write must be JSON: send Content-Type: application/json\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Adds the security headers to an answer (every answer: the outermost layer).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_loopback_ip_and_listed_names_pass() {
        let rules = HostRules::new(vec!["nas.local".into()]);
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "app.localhost",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.5",
            "[fd00::2]:80",
            "nas.local:8080",
            "NAS.LOCAL",
        ] {
            assert!(rules.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "nas.local.evil.example",
            "",
            "a b",
            "user@localhost",
        ] {
            assert!(!rules.allows(refused), "{refused:?}");
        }
    }

    #[test]
    fn origins_match_their_host_with_default_ports() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://LocalHost:8080", "localhost:8080"));
        assert!(same_origin(
            "https://energy.example.com",
            "energy.example.com"
        ));
        assert!(same_origin("http://nas.local", "nas.local:80"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_origin("http://localhost:8081", "localhost:8080"));
        assert!(!same_origin("http://127.0.0.1:8080", "localhost:8080"));
        assert!(!same_origin("null", "localhost:8080"));
        assert!(!same_origin("file://", "localhost"));
    }

    #[test]
    fn only_json_is_a_write_body() {
        let with = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
