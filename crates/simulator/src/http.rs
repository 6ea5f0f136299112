//! The HTTP side of the simulated cloud (axum): app login and MQTT certification, and the
//! developer open API (certification, device list, all quotas) with HMAC-SHA256 signatures.
//! Answers use the cloud's envelope `{"code","message","data"}`; `code` "0" is success.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value as JsonValue, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::device::DeviceView;
use crate::open_api;
use crate::stats::{Counters, bump};

/// Where and how a client reaches MQTT (what a certification answer hands out).
#[derive(Debug, Clone)]
pub(crate) struct MqttInfo {
    pub(crate) url: String,
    pub(crate) port: u16,
    pub(crate) protocol: String,
    pub(crate) account: String,
    pub(crate) password: String,
}

/// Everything the handlers share.
pub(crate) struct HttpState {
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) user_id: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    pub(crate) token_ttl: Duration,
    pub(crate) app_mqtt: MqttInfo,
    pub(crate) open_mqtt: MqttInfo,
    pub(crate) devices: Vec<DeviceView>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) delay_micros: Arc<AtomicU64>,
    pub(crate) tokens: Mutex<HashMap<String, Instant>>,
}

type Shared = Arc<HttpState>;

/// Largest accepted clock skew of an open-API request's `timestamp`.
const MAX_SKEW_MS: i128 = 15 * 60 * 1000;

fn envelope(code: &str, message: &str, data: JsonValue) -> Json<JsonValue> {
    Json(json!({
        "code": code,
        "message": message,
        "data": data,
        "eagleEyeTraceId": "",
        "tid": "",
    }))
}

fn ok(data: JsonValue) -> Json<JsonValue> {
    envelope("0", "Success", data)
}

impl HttpState {
    async fn delay(&self) {
        let micros = self.delay_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }

    fn new_token(&self) -> String {
        let mut bytes = [0u8; 24];
        // Without OS randomness fall back to a time-derived token (still unique per login).
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        let token = hex::encode(bytes);
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), now + self.token_ttl);
        token
    }

    fn token_valid(&self, token: &str) -> bool {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.get(token).is_some_and(|e| *e > Instant::now())
    }
}

/// The routes.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/auth/login", post(login))
        .route("/iot-auth/app/certification", get(app_certification))
        .route("/iot-open/sign/certification", get(open_certification))
        .route("/iot-open/sign/device/list", get(device_list))
        .route("/iot-open/sign/device/quota/all", get(quota_all))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                envelope("404", "Not Found", JsonValue::Null),
            )
        })
        .with_state(state)
}

async fn login(State(st): State<Shared>, body: Bytes) -> Json<JsonValue> {
    st.delay().await;
    let Ok(req) = serde_json::from_slice::<JsonValue>(&body) else {
        bump(&st.counters.logins_failed);
        return envelope("1001", "Parameter error", JsonValue::Null);
    };
    let email = req.get("email").and_then(JsonValue::as_str).unwrap_or("");
    let password = req
        .get("password")
        .and_then(JsonValue::as_str)
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .and_then(|p| String::from_utf8(p).ok());
    if !email.eq_ignore_ascii_case(&st.email) {
        bump(&st.counters.logins_failed);
        return envelope("2018", "The account does not exist", JsonValue::Null);
    }
    if password.as_deref() != Some(st.password.as_str()) {
        bump(&st.counters.logins_failed);
        return envelope("2026", "Incorrect password", JsonValue::Null);
    }
    bump(&st.counters.logins_ok);
    let token = st.new_token();
    ok(json!({
        "user": {
            "userId": st.user_id,
            "email": st.email,
            "name": "EcoFlow User",
            "state": 0,
            "regtype": "email",
            "source": "IOT_APP",
            "administrator": false,
        },
        "token": token,
    }))
}

fn certification_data(m: &MqttInfo) -> JsonValue {
    json!({
        "url": m.url,
        "port": m.port.to_string(),
        "protocol": m.protocol,
        "certificateAccount": m.account,
        "certificatePassword": m.password,
    })
}

async fn app_certification(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    st.delay().await;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if !token.is_some_and(|t| st.token_valid(t)) {
        bump(&st.counters.auth_rejected);
        return envelope("401", "Login expired, please log in again", JsonValue::Null);
    }
    if query.get("userId").map(String::as_str) != Some(st.user_id.as_str()) {
        bump(&st.counters.auth_rejected);
        return envelope("1001", "Parameter error: userId", JsonValue::Null);
    }
    bump(&st.counters.certifications);
    ok(certification_data(&st.app_mqtt))
}

/// Checks the open-API headers and signature; `Err` is the answer to send.
fn check_signature(
    st: &HttpState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Json<JsonValue>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (access_key, nonce, timestamp, sign) = (
        header("accessKey"),
        header("nonce"),
        header("timestamp"),
        header("sign"),
    );
    if access_key != st.access_key {
        return Err(envelope("8513", "accessKey is invalid", JsonValue::Null));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128);
    let fresh = timestamp
        .parse::<i128>()
        .is_ok_and(|ts| (ts - now_ms).abs() <= MAX_SKEW_MS);
    if nonce.is_empty() || !fresh {
        return Err(envelope(
            "8524",
            "timestamp or nonce is invalid",
            JsonValue::Null,
        ));
    }
    let params: Vec<(String, String)> = query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !open_api::verify(&params, access_key, &st.secret_key, nonce, timestamp, sign) {
        return Err(envelope("8521", "signature is wrong", JsonValue::Null));
    }
    Ok(())
}

macro_rules! signed {
    ($st:ident, $headers:ident, $query:ident) => {
        $st.delay().await;
        if let Err(answer) = check_signature(&$st, &$headers, &$query) {
            bump(&$st.counters.auth_rejected);
            return answer;
        }
    };
}

async fn open_certification(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    bump(&st.counters.certifications);
    ok(certification_data(&st.open_mqtt))
}

async fn device_list(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    let list: Vec<JsonValue> = st
        .devices
        .iter()
        .map(|d| {
            json!({
                "sn": d.sn(),
                "deviceName": format!("PowerOcean Fit-{}", &d.sn()[d.sn().len().saturating_sub(4)..]),
                "online": u8::from(d.online()),
                "productName": "PowerOcean Fit",
            })
        })
        .collect();
    ok(JsonValue::Array(list))
}

async fn quota_all(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Json<JsonValue> {
    signed!(st, headers, query);
    let sn = query.get("sn").map(String::as_str).unwrap_or("");
    match st.devices.iter().find(|d| d.sn() == sn) {
        Some(d) => ok(JsonValue::Object(d.quota())),
        None => envelope("1006", "device not found", JsonValue::Null),
    }
}

/// Binds `bind` and serves `app` (over TLS when `tls` is given) until `shutdown`.
pub(crate) async fn serve(
    bind: SocketAddr,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let connections = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    debug!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (app, tls, token) = (app.clone(), tls.clone(), shutdown.clone());
            connections.spawn(async move {
                match tls {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                        if let Ok(Ok(stream)) = handshake.await {
                            serve_connection(stream, app, token).await;
                        }
                    }
                    None => serve_connection(tcp, app, token).await,
                }
            });
        }
        drop(listener);
        connections.close();
        connections.wait().await;
    });
    Ok((addr, task))
}

async fn serve_connection<I>(io: I, app: Router, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::select! {
        r = conn => if let Err(e) = r { debug!("http connection: {e}") },
        _ = shutdown.cancelled() => {}
    }
}
