//! The HTTP side of the simulated cloud (axum over hyper, TLS or plain). Answers use the
//! cloud's envelope `{"code","message","data"}`; `code` "0" is success.
//!
//! # Layout
//! - this file: [`HttpState`], the routes (plus `GET /sim/stats`), [`start`] (bind, serve,
//!   the base URLs of the account's region and of the other one).
//! - `app`: the app route — login and MQTT certification.
//! - `open`: the developer open API — strict signature check (§9), certification, device
//!   list, quotas.
//! - `region`: the other region's API, where the account does not exist (§9).

mod app;
mod open;
mod region;

pub use region::{WRONG_REGION_CODE, WRONG_REGION_MESSAGE};

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

use crate::credentials::{CredentialBook, MqttCredentials, random_hex};
use crate::device::DeviceView;
use crate::field::FieldConfig;
use crate::field::stats::FieldLog;
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
    /// The field rules (signing, unlinked devices).
    field: FieldConfig,
    field_log: Arc<FieldLog>,
    /// Hands out (expiring) MQTT logins; `None` with an external broker, whose fixed
    /// login `app_mqtt`/`open_mqtt` carry.
    book: Option<Arc<CredentialBook>>,
    /// Open-API nonces seen within `field.timestamp_window`.
    nonces: Mutex<HashMap<String, Instant>>,
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

/// A certification request that passed its route's checks: the MQTT login, counted, or
/// the cloud's generic 500 when none can be handed out.
fn certification_answer(st: &HttpState, route: &'static str) -> Json<JsonValue> {
    match st.certification(route) {
        Ok(data) => {
            crate::stats::bump(&st.counters.certifications);
            ok(data)
        }
        Err(e) => {
            tracing::error!("certification refused: {e}");
            envelope("500", "Internal error", JsonValue::Null)
        }
    }
}

fn certification_data(m: &MqttInfo, login: &MqttCredentials) -> JsonValue {
    json!({
        "url": m.url,
        "port": m.port.to_string(),
        "protocol": m.protocol,
        "certificateAccount": login.username,
        "certificatePassword": login.password,
    })
}

impl HttpState {
    /// The account and keys of `config`, the MQTT answers, and the devices to serve.
    pub(crate) fn new(
        config: &SimulatorConfig,
        app_mqtt: MqttInfo,
        open_mqtt: MqttInfo,
        book: Option<Arc<CredentialBook>>,
        devices: Vec<DeviceView>,
        shared: &crate::SharedHandles,
    ) -> HttpState {
        let crate::SharedHandles {
            field_log,
            counters,
            delay_micros,
            ..
        } = shared.clone();
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
            field: config.field.clone(),
            field_log,
            book,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The certification answer of `route` (`APP` or `OPEN`): where the broker is and a
    /// login for it (fresh from the book when logins expire).
    fn certification(&self, route: &'static str) -> Result<JsonValue, SimulatorError> {
        let m = if route == crate::field::stats::APP {
            &self.app_mqtt
        } else {
            &self.open_mqtt
        };
        let login = match &self.book {
            Some(book) => book.issue(route)?,
            None => MqttCredentials {
                username: m.account.clone(),
                password: m.password.clone(),
            },
        };
        self.field_log.certified(route);
        Ok(certification_data(m, &login))
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
        .route("/sim/stats", get(sim_stats))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                envelope("404", "Not Found", JsonValue::Null),
            )
        })
        .with_state(state)
}

/// `GET /sim/stats`: what the simulator saw (docs/simulator.md).
async fn sim_stats(axum::extract::State(st): axum::extract::State<Shared>) -> Json<JsonValue> {
    let devices = st.devices.iter().map(DeviceView::now);
    let stats = st.field_log.snapshot(devices, st.counters.snapshot());
    Json(serde_json::to_value(stats).unwrap_or(JsonValue::Null))
}

/// The started HTTP side.
pub(crate) struct HttpSide {
    /// Base URL of the account's region, e.g. `https://127.0.0.1:41234`.
    pub(crate) base_url: String,
    /// Base URL of the other region's API (with `field.regions`).
    pub(crate) other_region_url: Option<String>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

/// Serves `state` on `config.http_bind` (HTTPS with `tls` when `config.http_tls`), and the
/// other region on `config.other_region_http_bind` when `field.regions`, until `shutdown`.
pub(crate) async fn start(
    config: &SimulatorConfig,
    state: HttpState,
    tls: &tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) -> Result<HttpSide, SimulatorError> {
    let acceptor = config.http_tls.then(|| tls.clone());
    let scheme = if config.http_tls { "https" } else { "http" };
    let bind_err = |addr| {
        move |source| SimulatorError::Bind {
            what: "HTTP API",
            addr,
            source,
        }
    };
    let state = Arc::new(state);
    let (addr, task) = serve(
        config.http_bind,
        router(state.clone()),
        acceptor.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(bind_err(config.http_bind))?;
    let mut side = HttpSide {
        base_url: format!("{scheme}://{}", dial_addr(addr)),
        other_region_url: None,
        tasks: vec![task],
    };
    if config.field.regions {
        let bind = config.other_region_http_bind;
        let (addr, task) = serve(bind, region::router(state), acceptor, shutdown)
            .await
            .map_err(bind_err(bind))?;
        side.other_region_url = Some(format!("{scheme}://{}", dial_addr(addr)));
        side.tasks.push(task);
    }
    Ok(side)
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
