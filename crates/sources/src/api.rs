//! The HTTPS client for the EcoFlow API: one reqwest client (rustls, our roots), the
//! `{code, message, data}` envelope, and error classification (network vs. rejected).

use std::time::Duration;

use serde_json::Value as Json;

use crate::error::SourceError;

/// An HTTPS client bound to one API base URL.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish()
    }
}

impl ApiClient {
    /// `tls` is the client config from [`connect::tls::client_config`].
    pub fn new(
        base_url: &str,
        tls: rustls::ClientConfig,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("oceanbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Config(format!("HTTP client: {}", chain(&e))))?;
        Ok(ApiClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET base+path` with `query` and extra headers; returns `data` of a `code == 0` answer.
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Json, SourceError> {
        let mut req = self.http.get(format!("{}{path}", self.base)).query(query);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(path, req).await
    }

    /// `POST base+path` with a JSON body and extra headers; returns `data`.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Json,
        headers: &[(&str, &str)],
    ) -> Result<Json, SourceError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(path, req).await
    }

    async fn send(&self, path: &str, req: reqwest::RequestBuilder) -> Result<Json, SourceError> {
        let endpoint = path.to_string();
        let resp = req.send().await.map_err(|e| network_error(path, &e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| network_error(path, &e))?;
        let json: Option<Json> = serde_json::from_str(&body).ok();
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::TokenRejected {
                endpoint,
                message: format!("HTTP {status} {message}").trim().to_string(),
            });
        }
        let Some(json) = json else {
            return Err(SourceError::Api {
                endpoint,
                message: format!("HTTP {status}, body is not JSON ({} bytes)", body.len()),
            });
        };
        let code = match json.get("code") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        if code == "0" {
            return Ok(json.get("data").cloned().unwrap_or(Json::Null));
        }
        let lower = message.to_ascii_lowercase();
        let detail = format!("code {code}: {message}");
        if lower.contains("token") || lower.contains("expired") {
            Err(SourceError::TokenRejected {
                endpoint,
                message: detail,
            })
        } else if !status.is_success() && status.is_server_error() {
            Err(SourceError::Api {
                endpoint,
                message: format!("HTTP {status} {detail}"),
            })
        } else {
            Err(SourceError::Refused {
                endpoint,
                code,
                message,
            })
        }
    }
}

/// One line naming the network failure: DNS, connect, TLS or timeout, with the cause.
fn network_error(path: &str, e: &reqwest::Error) -> SourceError {
    let detail = chain(e);
    let lower = detail.to_ascii_lowercase();
    let what = if e.is_timeout() {
        "timed out"
    } else if lower.contains("dns") || lower.contains("failed to lookup") {
        "DNS lookup failed"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "TLS failed (is the server certificate trusted? see source.ca_file)"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    SourceError::Network {
        endpoint: path.to_string(),
        message: format!("{what}: {detail}"),
    }
}

/// An error and its causes on one line, without repeats.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Reads a string field that may also arrive as a number.
pub(crate) fn str_field(data: &Json, key: &str) -> Option<String> {
    match data.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
