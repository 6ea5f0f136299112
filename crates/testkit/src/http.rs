//! HTTP for tests over reqwest (plain HTTP to a local server, proxies ignored): a request
//! with headers or a JSON body, answered as a whole [`Response`]; `blocking` forms for
//! tests that run without an async runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value as Json;

/// Generous: a loaded machine answers slowly, a hung server still fails the test.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A whole answer: status, headers and the body as text.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Response {
    /// A header's value (case-insensitive name), if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:.500}", self.body))
    }
}

/// `Authorization: Bearer <token>` as a header pair for [`get`].
pub fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

pub(crate) fn client(timeout: Option<Duration>) -> reqwest::Client {
    // The workspace's one TLS trust (rustls with ring): reqwest is built without a
    // default crypto provider, and tests have no reason to pick another.
    let tls = connect::tls::client_config(None)
        .unwrap_or_else(|e| panic!("cannot build the TLS client config: {e}"));
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10));
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"))
}

/// `http://<addr><path>`.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// `GET path` on `addr` with extra `headers`.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = client(Some(TIMEOUT)).get(url(addr, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request, "GET", addr, path).await
}

/// `GET path` that must answer 200 with JSON; panics with the body otherwise.
pub async fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Json {
    let response = get(addr, path, headers).await;
    assert_eq!(response.status, 200, "GET {path}: {:.500}", response.body);
    response.json()
}

/// Any `method` on `path`, with an optional JSON body.
pub async fn request(addr: SocketAddr, method: &str, path: &str, json: Option<&Json>) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .unwrap_or_else(|e| panic!("bad HTTP method {method:?}: {e}"));
    let mut request = client(Some(TIMEOUT)).request(method.clone(), url(addr, path));
    if let Some(body) = json {
        request = request.json(body);
    }
    send(request, method.as_str(), addr, path).await
}

async fn send(
    request: reqwest::RequestBuilder,
    method: &str,
    addr: SocketAddr,
    path: &str,
) -> Response {
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: reading the body: {e}"));
    Response {
        status,
        headers,
        body,
    }
}

/// The same requests for tests without an async runtime (each call runs its own).
pub mod blocking {
    use super::*;

    /// Blocking [`get`](super::get).
    pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
        block_on(super::get(addr, path, headers))
    }

    /// Blocking [`get_json`](super::get_json).
    pub fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Json {
        block_on(super::get_json(addr, path, headers))
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"))
            .block_on(future)
    }
}
