//! Getting MQTT credentials: app login + certification (protocol §1a) or signed open-API
//! certification + device list (protocol §1b). Keeps the app token between calls and
//! logs in again when the token is refused.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::api::{ApiClient, str_field};
use crate::config::{CloudConfig, WayIn};
use crate::credentials::{Identity, MqttCredentials};
use crate::error::SourceError;
use crate::observer::SourceObserver;
use crate::refusal;
use crate::signing;

/// How often an open-API request answered 8521 is sent again with a fresh nonce and
/// timestamp (three tries in all: at the field's ~5 % a correct request then fails about
/// 1 time in 8 000).
pub const SIGNATURE_RETRIES: usize = 2;
use connect::Secret;

pub const LOGIN_PATH: &str = "/auth/login";
pub const APP_CERT_PATH: &str = "/iot-auth/app/certification";
pub const OPEN_CERT_PATH: &str = "/iot-open/sign/certification";
pub const OPEN_DEVICES_PATH: &str = "/iot-open/sign/device/list";
pub const OPEN_QUOTA_ALL_PATH: &str = "/iot-open/sign/device/quota/all";

/// A logged-in app session.
#[derive(Debug, Clone)]
pub struct AppToken {
    pub token: Secret,
    pub user_id: String,
}

/// A device as the open API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDevice {
    pub sn: String,
    pub online: bool,
    pub product_name: String,
}

/// Fetches MQTT credentials for the configured way in.
pub struct Authenticator {
    api: ApiClient,
    way_in: WayIn,
    email: String,
    password: Secret,
    access_key: String,
    secret_key: Secret,
    devices: Vec<String>,
    token: Option<AppToken>,
    /// Told about each successful login (app route), so re-logins show in the counters.
    observer: Arc<dyn SourceObserver>,
}

impl Authenticator {
    pub fn new(api: ApiClient, config: &CloudConfig, observer: Arc<dyn SourceObserver>) -> Self {
        Authenticator {
            api,
            way_in: config.way_in,
            email: config.email.clone(),
            password: config.password.clone(),
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            devices: config.devices.clone(),
            token: None,
            observer,
        }
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// Drops the app token so the next [`Authenticator::credentials`] logs in again.
    pub fn forget_token(&mut self) {
        self.token = None;
    }

    /// Credentials and identity (account, devices) for the next MQTT connection.
    pub async fn credentials(&mut self) -> Result<(MqttCredentials, Identity), SourceError> {
        match self.way_in {
            WayIn::App => self.app_credentials().await,
            WayIn::OpenApi => self.open_credentials().await,
        }
    }

    async fn app_credentials(&mut self) -> Result<(MqttCredentials, Identity), SourceError> {
        let mut fresh_login = false;
        if self.token.is_none() {
            self.token = Some(self.login().await?);
            fresh_login = true;
        }
        let result = self.app_certification().await;
        let creds = match result {
            Err(SourceError::TokenRejected { .. }) if !fresh_login => {
                tracing::info!("app token refused; logging in again");
                self.token = Some(self.login().await?);
                self.app_certification().await?
            }
            other => other?,
        };
        let user_id = self
            .token
            .as_ref()
            .map(|t| t.user_id.clone())
            .unwrap_or_default();
        Ok((
            creds,
            Identity {
                way_in: WayIn::App,
                account: user_id,
                devices: self.devices.clone(),
            },
        ))
    }

    /// `POST /auth/login` → token + userId.
    pub async fn login(&mut self) -> Result<AppToken, SourceError> {
        let body = json!({
            "email": self.email,
            "password": base64::engine::general_purpose::STANDARD.encode(self.password.expose()),
            "scene": "IOT_APP",
            "userType": "ECOFLOW",
            "appVersion": "6.0.0",
            "os": "android",
            "osVersion": "14",
        });
        let headers = [("lang", "en_US"), ("platform", "android")];
        let data = match self.api.post_json(LOGIN_PATH, &body, &headers).await {
            Ok(data) => data,
            // A refused login is about the account (or its region, §9), not the token. A
            // server error or an answer that is not the API's JSON envelope is no refusal:
            // retry.
            Err(SourceError::Refused {
                endpoint,
                code,
                message,
            }) => {
                return Err(refusal::login_refused(
                    endpoint,
                    &code,
                    &message,
                    self.api.base_url(),
                ));
            }
            Err(SourceError::TokenRejected { endpoint, message }) => {
                return Err(refusal::login_refused(
                    endpoint,
                    "",
                    &message,
                    self.api.base_url(),
                ));
            }
            Err(e) => return Err(e),
        };
        let token = str_field(&data, "token").filter(|t| !t.is_empty());
        let user_id = data.get("user").and_then(|u| str_field(u, "userId"));
        match (token, user_id) {
            (Some(token), Some(user_id)) => {
                self.observer.logged_in();
                tracing::info!(user_id = %user_id, "logged in to the EcoFlow app account");
                Ok(AppToken {
                    token: Secret::new(token),
                    user_id,
                })
            }
            _ => Err(SourceError::Api {
                endpoint: LOGIN_PATH.into(),
                message: "login answer lacks token or user.userId".into(),
            }),
        }
    }

    async fn app_certification(&self) -> Result<MqttCredentials, SourceError> {
        let Some(token) = &self.token else {
            return Err(SourceError::TokenRejected {
                endpoint: APP_CERT_PATH.into(),
                message: "not logged in".into(),
            });
        };
        let bearer = format!("Bearer {}", token.token.expose());
        let data = self
            .api
            .get(
                APP_CERT_PATH,
                &[("userId", token.user_id.as_str())],
                &[("authorization", bearer.as_str()), ("lang", "en_US")],
            )
            .await?;
        MqttCredentials::from_certification(APP_CERT_PATH, &data)
    }

    /// A signed open-API GET (protocol §9: no `Content-Type`, a long random nonce). An
    /// 8521 is retried at once with a fresh nonce and timestamp, up to
    /// [`SIGNATURE_RETRIES`] times: it also comes intermittently (§9; ~5 % of correct
    /// requests in the field), and with one retry a correct request still failed 1 time in
    /// 400 — enough to make `init`'s login test refuse a right key now and then. 8521 every
    /// time, 8513, 8512 and 1006 become one line saying what to do.
    pub async fn open_get(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, SourceError> {
        let mut result = self.open_get_once(path, query).await;
        for _ in 0..SIGNATURE_RETRIES {
            match &result {
                Err(SourceError::Refused { code, .. }) if code == refusal::SIGNATURE_WRONG => {
                    tracing::debug!(path, "signature refused (8521); retrying, fresh nonce");
                    result = self.open_get_once(path, query).await;
                }
                _ => break,
            }
        }
        result.map_err(|e| match e {
            SourceError::TokenRejected { endpoint, message } => {
                SourceError::CredentialsRejected { endpoint, message }
            }
            e => refusal::open_api_refusal(e, self.api.base_url()),
        })
    }

    async fn open_get_once(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, SourceError> {
        let params: serde_json::Map<String, Json> = query
            .iter()
            .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
            .collect();
        let signed = signing::sign(
            &Json::Object(params),
            &self.access_key,
            self.secret_key.expose(),
        );
        let headers = [
            ("accessKey", signed.access_key.as_str()),
            ("nonce", signed.nonce.as_str()),
            ("timestamp", signed.timestamp.as_str()),
            ("sign", signed.sign.as_str()),
        ];
        self.api.get(path, query, &headers).await
    }

    async fn open_credentials(&mut self) -> Result<(MqttCredentials, Identity), SourceError> {
        let data = self.open_get(OPEN_CERT_PATH, &[]).await?;
        let creds = MqttCredentials::from_certification(OPEN_CERT_PATH, &data)?;
        let devices = if self.devices.is_empty() {
            let listed = self.device_list().await?;
            tracing::info!(
                count = listed.len(),
                "devices from the open-API device list"
            );
            listed.into_iter().map(|d| d.sn).collect()
        } else {
            self.devices.clone()
        };
        let identity = Identity {
            way_in: WayIn::OpenApi,
            account: creds.username.clone(),
            devices,
        };
        Ok((creds, identity))
    }

    /// `GET /iot-open/sign/device/list`.
    pub async fn device_list(&self) -> Result<Vec<ListedDevice>, SourceError> {
        let data = self.open_get(OPEN_DEVICES_PATH, &[]).await?;
        let items = match &data {
            Json::Array(items) => items.clone(),
            other => other
                .get("list")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        Ok(items
            .iter()
            .filter_map(|d| {
                let sn = str_field(d, "sn")?;
                let online = match d.get("online") {
                    Some(Json::Bool(b)) => *b,
                    Some(Json::Number(n)) => n.as_i64() == Some(1),
                    _ => false,
                };
                let product_name = str_field(d, "productName").unwrap_or_default();
                Some(ListedDevice {
                    sn,
                    online,
                    product_name,
                })
            })
            .filter(|d| !d.sn.is_empty() && !d.sn.contains('/'))
            .collect())
    }

    /// `GET /iot-open/sign/device/quota/all?sn=` — every current value of one device.
    pub async fn quota_all(&self, sn: &str) -> Result<Json, SourceError> {
        self.open_get(OPEN_QUOTA_ALL_PATH, &[("sn", sn)]).await
    }
}
