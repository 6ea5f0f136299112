//! The HTTP side of the simulated cloud (axum over hyper, TLS or plain). Answers use the
//! cloud's envelope `{"code","message","data"}`; `code` "0" is success.
//!
//! # Layout
//! - this file: [`HttpState`], the routes, [`start`] (bind, serve, the base URL).
//! - `app`: the app route — login and MQTT certification.
//! - `open`: the developer open API — signature check, certification, device list, quotas.

mod app;
mod open;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value as JsonValue, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::credentials::random_hex;
use crate::device::DeviceView;
use crate::mqtt::MqttInfo;
use crate::stats::Counters;
use crate::{SimulatorConfig, SimulatorError, dial_addr};

/// Everything the handlers share.
pub(crate) struct HttpState {
    email: String,
    password: String,
    user_id: String,
    access_key: String,
    secret_key: String,
    token_ttl: Duration,
    app_mqtt: MqttInfo,
    open_mqtt: MqttInfo,
    devices: Vec<DeviceView>,
    counters: Arc<Counters>,
    delay_micros: Arc<AtomicU64>,
    tokens: Mutex<HashMap<String, Instant>>,
}

type Shared = Arc<HttpState>;

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

fn certification_data(m: &MqttInfo) -> JsonValue {
    json!({
        "url": m.url,
        "port": m.port.to_string(),
        "protocol": m.protocol,
        "certificateAccount": m.account,
        "certificatePassword": m.password,
    })
}

impl HttpState {
    /// The account and keys of `config`, the MQTT answers, and the devices to serve.
    pub(crate) fn new(
        config: &SimulatorConfig,
        app_mqtt: MqttInfo,
        open_mqtt: MqttInfo,
        devices: Vec<DeviceView>,
        counters: Arc<Counters>,
        delay_micros: Arc<AtomicU64>,
    ) -> HttpState {
        HttpState {
            email: config.email.clone(),
            password: config.password.clone(),
            user_id: config.user_id.clone(),
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            token_ttl: config.token_ttl,
            app_mqtt,
            open_mqtt,
            devices,
            counters,
            delay_micros,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn delay(&self) {
        let micros = self.delay_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }

    /// A fresh login token, valid for `token_ttl`.
    fn new_token(&self) -> Result<String, SimulatorError> {
        let token = random_hex(24)?;
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(token.clone(), now + self.token_ttl);
        Ok(token)
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
        .route("/auth/login", post(app::login))
        .route("/iot-auth/app/certification", get(app::certification))
        .route("/iot-open/sign/certification", get(open::certification))
        .route("/iot-open/sign/device/list", get(open::device_list))
        .route("/iot-open/sign/device/quota/all", get(open::quota_all))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                envelope("404", "Not Found", JsonValue::Null),
            )
        })
        .with_state(state)
}

/// Serves `state` on `config.http_bind` (HTTPS with `tls` when `config.http_tls`) until
/// `shutdown`. Returns the base URL clients use and the server task.
pub(crate) async fn start(
    config: &SimulatorConfig,
    state: HttpState,
    tls: &tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) -> Result<(String, JoinHandle<()>), SimulatorError> {
    let acceptor = config.http_tls.then(|| tls.clone());
    let (addr, task) = serve(
        config.http_bind,
        router(Arc::new(state)),
        acceptor,
        shutdown,
    )
    .await
    .map_err(|source| SimulatorError::Bind {
        what: "HTTP API",
        addr: config.http_bind,
        source,
    })?;
    let scheme = if config.http_tls { "https" } else { "http" };
    Ok((format!("{scheme}://{}", dial_addr(addr)), task))
}

/// Binds `bind` and serves `app` (over TLS when `tls` is given) until `shutdown`.
async fn serve(
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
