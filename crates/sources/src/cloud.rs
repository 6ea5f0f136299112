//! [`CloudSource`]: the EcoFlow cloud source. ONE connection loop (`run` consumes the
//! source) that logs in, connects MQTT over TLS, subscribes each device, sends get-all
//! on connect and every period, forwards payloads into a bounded channel, and on any
//! failure logs one line, backs off (exponential + jitter) and tries again — fetching
//! new credentials (and logging in again) when the old ones were refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::ApiClient;
use crate::config::{CloudConfig, WayIn};
use crate::credentials::{Identity, MqttCredentials, quota_topic};
use crate::error::{Action, SourceError};
use crate::login::Authenticator;
use crate::mqtt::{self, classify, warn_refused_subscriptions};
use crate::observer::{Live, LiveTask, SourceObserver, unobserved};
use crate::payload::RawPayload;
use crate::schedule::Schedule;
use connect::tls;

/// The cloud source, ready to run.
pub struct CloudSource {
    config: CloudConfig,
    tls: rustls::ClientConfig,
    api: ApiClient,
    tx: mpsc::Sender<RawPayload>,
    observer: Arc<dyn SourceObserver>,
    client_id_seed: String,
}

/// How one connection attempt ended.
enum Ended {
    Shutdown,
    Failed {
        error: SourceError,
        was_connected: bool,
    },
}

impl CloudSource {
    /// Validates the config and prepares TLS and HTTP; nothing goes online yet.
    pub fn new(config: CloudConfig, tx: mpsc::Sender<RawPayload>) -> Result<Self, SourceError> {
        config.validate().map_err(SourceError::Config)?;
        let ca = match &config.ca_file {
            Some(path) => Some(tls::read_ca_file(path)?),
            None => None,
        };
        Self::with_ca_pem(config, ca.as_deref(), tx)
    }

    /// Like [`CloudSource::new`] with the extra CA given as PEM text (e.g. the simulator's).
    pub fn with_ca_pem(
        config: CloudConfig,
        extra_ca_pem: Option<&str>,
        tx: mpsc::Sender<RawPayload>,
    ) -> Result<Self, SourceError> {
        config.validate().map_err(SourceError::Config)?;
        let tls = tls::client_config(extra_ca_pem)?;
        let api = ApiClient::new(&config.api_url, tls.clone(), config.http_timeout)?;
        Ok(CloudSource {
            config,
            tls,
            api,
            tx,
            observer: unobserved(),
            client_id_seed: uuid::Uuid::new_v4().to_string(),
        })
    }

    /// Reports logins, connects, reconnects, get-alls, drops and live gauges to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn SourceObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown`; returns early only on a configuration error.
    ///
    /// Each attempt fetches MQTT credentials first (certification; a refused or expired
    /// token means logging in again). When only the API is unreachable, the last good
    /// credentials are reused so a broker that is up can still be reached.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let _live = Live::new(&self.observer, LiveTask::ConnectionLoop);
        let mut auth = Authenticator::new(self.api.clone(), &self.config, self.observer.clone());
        let mut backoff =
            connect::Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        let mut last_good: Option<(MqttCredentials, Identity)> = None;
        let mut schedule: Option<Schedule> = None;
        tracing::info!(
            way_in = self.config.way_in.as_str(),
            api = %self.api.base_url(),
            "EcoFlow cloud source starting"
        );
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let fetched = tokio::select! {
                r = auth.credentials() => r,
                _ = shutdown.cancelled() => break,
            };
            let attempt = match (fetched, &last_good) {
                (Ok(creds), _) => {
                    if creds.1.devices.is_empty() {
                        tracing::warn!("no devices to subscribe (the device list is empty)");
                    }
                    last_good = Some(creds.clone());
                    Ok(creds)
                }
                (Err(e), Some(previous)) if e.action() == Action::Retry => {
                    tracing::warn!("{e}; reusing the MQTT credentials we have");
                    Ok(previous.clone())
                }
                (Err(e), _) => Err(e),
            };
            let error = match attempt {
                Ok((creds, id)) => {
                    let schedule = match &mut schedule {
                        Some(s) if s.same_devices(&id.devices) => s,
                        slot => {
                            // Replacing drops the old timers before the new ones count.
                            *slot = None;
                            slot.insert(Schedule::new(
                                &id.devices,
                                self.config.get_all_interval,
                                &self.observer,
                            ))
                        }
                    };
                    match self
                        .connect_once(&creds, &id, schedule, &auth, &shutdown)
                        .await
                    {
                        Ended::Shutdown => break,
                        Ended::Failed {
                            error,
                            was_connected,
                        } => {
                            if was_connected {
                                backoff.reset();
                            }
                            if error.action() == Action::Relogin {
                                last_good = None;
                            }
                            error
                        }
                    }
                }
                Err(error) => {
                    if error.action() == Action::Fatal {
                        tracing::error!("{error}");
                        return Err(error);
                    }
                    if matches!(error, SourceError::CredentialsRejected { .. }) {
                        auth.forget_token();
                        last_good = None;
                    }
                    error
                }
            };
            self.observer.reconnecting(&error);
            let mut delay = backoff.next_delay();
            if matches!(error, SourceError::CredentialsRejected { .. }) {
                // A refused password or key will not change by itself: wait the longest
                // delay, so the account is not hammered (and locked) by retries.
                delay = delay.max(self.config.reconnect_max);
            }
            tracing::warn!(
                kind = error.kind(),
                "{error}; retrying in {:.1} s",
                delay.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.observer.stopped();
        tracing::info!("EcoFlow cloud source stopped");
        Ok(())
    }

    fn client_id(&self, id: &Identity) -> String {
        match id.way_in {
            WayIn::App => format!("ANDROID_{}_{}", self.client_id_seed, id.account),
            WayIn::OpenApi => format!("OPEN_{}_{}", self.client_id_seed, id.account),
        }
    }

    /// One MQTT connection, from connect to failure (or shutdown).
    async fn connect_once(
        &self,
        creds: &MqttCredentials,
        id: &Identity,
        schedule: &mut Schedule,
        auth: &Authenticator,
        shutdown: &CancellationToken,
    ) -> Ended {
        if creds.protocol != "mqtts" && creds.protocol != "ssl" && creds.protocol != "tls" {
            tracing::debug!(protocol = %creds.protocol, "certification names a non-TLS protocol; using TLS anyway");
        }
        let mut options = mqtt::options(
            self.client_id(id),
            &creds.host,
            creds.port,
            self.config.keepalive,
            Some(&self.tls),
        );
        options.set_credentials(creds.username.clone(), creds.password.expose().to_string());
        let capacity = 16 + id.devices.len() * 8;
        let (client, mut eventloop) = AsyncClient::new(options, capacity);
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(self.config.http_timeout.as_secs().max(1));
        eventloop.set_network_options(network);

        let schedule = Mutex::new(schedule);
        let connected = Notify::new();
        let mut was_connected = false;

        let driver = async {
            loop {
                let event = eventloop.poll().await;
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        was_connected = true;
                        self.observer.connected();
                        tracing::info!(host = %creds.host, port = creds.port, devices = id.devices.len(), "MQTT connected");
                        for sn in &id.devices {
                            for topic in id.subscriptions(sn) {
                                if let Err(e) = client.try_subscribe(topic, QoS::AtMostOnce) {
                                    return SourceError::Mqtt(format!("subscribe: {e}"));
                                }
                            }
                        }
                        if let Ok(mut s) = schedule.lock() {
                            s.on_connect(Instant::now());
                        }
                        connected.notify_one();
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        self.forward(p.topic, p.payload);
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => warn_refused_subscriptions(&ack),
                    Ok(_) => {}
                    Err(e) => return classify(&e),
                }
            }
        };

        let ticker = async {
            loop {
                let due = schedule.lock().ok().and_then(|s| s.next_due());
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => connected.notified().await,
                }
                let devices = match schedule.lock() {
                    Ok(mut s) => s.take_due(Instant::now()),
                    Err(_) => Vec::new(),
                };
                for sn in devices {
                    self.get_all(&client, auth, id, &sn).await;
                }
            }
        };

        let result = tokio::select! {
            error = driver => Ended::Failed { error, was_connected: false },
            _ = ticker => Ended::Shutdown,
            _ = shutdown.cancelled() => Ended::Shutdown,
        };
        if let Ok(mut s) = schedule.lock() {
            s.on_disconnect();
        }
        if matches!(result, Ended::Shutdown) && was_connected && client.try_disconnect().is_ok() {
            // Say goodbye properly (bounded): the broker then drops the session at once.
            let goodbye = async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), goodbye).await;
        }
        match result {
            Ended::Failed { error, .. } => Ended::Failed {
                error,
                was_connected,
            },
            Ended::Shutdown => Ended::Shutdown,
        }
    }

    /// Sends the get-all request (app route) or fetches all quotas over HTTPS (open API).
    async fn get_all(&self, client: &AsyncClient, auth: &Authenticator, id: &Identity, sn: &str) {
        match id.get_topic(sn) {
            Some(topic) => {
                // Protocol §3: seq = the millisecond clock, low 32 bits.
                let millis = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                let seq = (millis & 0xffff_ffff) as u32 as i32;
                let payload = protocol::encode::get_all_request(seq);
                match client.try_publish(topic, QoS::AtMostOnce, false, payload) {
                    Ok(()) => {
                        self.observer.get_all_sent();
                        tracing::debug!(sn, "get-all request sent");
                    }
                    Err(e) => tracing::warn!(sn, "get-all request not queued: {e}"),
                }
            }
            None => match auth.quota_all(sn).await {
                Ok(data) => {
                    self.observer.get_all_sent();
                    let body = serde_json::json!({ "params": data }).to_string();
                    self.forward(quota_topic(&id.account, sn), Bytes::from(body));
                }
                Err(e) => tracing::warn!(sn, "open-API quota/all failed: {e}"),
            },
        }
    }

    fn forward(&self, topic: String, payload: Bytes) {
        let raw = RawPayload {
            topic,
            payload,
            received_at: SystemTime::now(),
        };
        match self.tx.try_send(raw) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.observer.dropped("queue_full");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("pipeline closed; payload discarded");
            }
        }
    }
}
