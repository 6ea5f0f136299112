//! [`CloudSource`]: the EcoFlow cloud source. ONE connection loop (`run` consumes the
//! source) that fetches MQTT credentials (certification), connects to the broker that
//! certification names, subscribes each device, keeps the data flowing (energy stream
//! switch and get-all, protocol §8; see `schedule`), forwards payloads into a bounded
//! channel, and on any failure logs one line, backs off (exponential + jitter) and tries
//! again with fresh credentials. Credentials are renewed before they get old (§9) and at
//! once after one "not authorised"; the client id is kept per installation (`client_id`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::ApiClient;
use crate::client_id::{ClientIdStore, MemoryClientIds};
use crate::config::{CloudConfig, WayIn};
use crate::credentials::{Identity, MqttCredentials};
use crate::error::{Action, SourceError};
use crate::handle::{Request, SourceHandle};
use crate::login::Authenticator;
use crate::observer::{Live, LiveTask, SourceObserver, unobserved};
use crate::payload::RawPayload;
use crate::schedule::Schedule;
use connect::tls;

mod connection;

/// The cloud source, ready to run.
pub struct CloudSource {
    pub(crate) config: CloudConfig,
    pub(crate) tls: rustls::ClientConfig,
    api: ApiClient,
    pub(crate) tx: mpsc::Sender<RawPayload>,
    pub(crate) observer: Arc<dyn SourceObserver>,
    client_ids: Arc<dyn ClientIdStore>,
    handle: SourceHandle,
    requests: Option<mpsc::Receiver<Request>>,
    /// Devices whose "not linked to this key" (1006) was already logged as a warning.
    pub(crate) not_linked_warned: Mutex<HashSet<String>>,
}

/// How one connection attempt ended.
pub(crate) enum Ended {
    Shutdown,
    /// The credentials are due for renewal: fetch new ones and connect again at once.
    Renew,
    Failed {
        error: SourceError,
        /// When the broker accepted this connection, if it did.
        connected_at: Option<Instant>,
    },
}

/// Credentials in use, and when they are due for renewal.
#[derive(Clone)]
struct Current {
    creds: MqttCredentials,
    id: Identity,
    certified_at: Instant,
}

impl CloudSource {
    /// Validates the config and prepares TLS and HTTP; nothing goes online yet.
    pub fn new(config: CloudConfig, tx: mpsc::Sender<RawPayload>) -> Result<Self, SourceError> {
        config.validate()?;
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
        config.validate()?;
        let tls = tls::client_config(extra_ca_pem)?;
        let api = ApiClient::new(&config.api_url, tls.clone(), config.http_timeout)?;
        let (handle, requests) = SourceHandle::channel();
        Ok(CloudSource {
            config,
            tls,
            api,
            tx,
            observer: unobserved(),
            client_ids: Arc::new(MemoryClientIds::default()),
            handle,
            requests: Some(requests),
            not_linked_warned: Mutex::new(HashSet::new()),
        })
    }

    /// Reports logins, connects, reconnects, get-alls, drops and live gauges to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn SourceObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Keeps MQTT client ids in `store` (the runtime's state directory), so one id per
    /// account survives restarts (protocol §9). Default: memory, for this process only.
    pub fn with_client_ids(mut self, store: Arc<dyn ClientIdStore>) -> Self {
        self.client_ids = store;
        self
    }

    /// The handle to ask this source for fresh data once it runs (take it before `run`).
    pub fn handle(&self) -> SourceHandle {
        self.handle.clone()
    }

    /// Runs until `shutdown`; returns early only on a configuration error.
    ///
    /// Each attempt fetches MQTT credentials first (certification; a refused or expired
    /// token means logging in again). When only the API is unreachable, the last good
    /// credentials are reused so a broker that is up can still be reached.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SourceError> {
        let _live = Live::new(&self.observer, LiveTask::ConnectionLoop);
        let mut requests = match self.requests.take() {
            Some(rx) => rx,
            None => mpsc::channel(1).1,
        };
        let mut auth = Authenticator::new(self.api.clone(), &self.config, self.observer.clone());
        let mut backoff =
            connect::Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        let mut last_good: Option<Current> = None;
        let mut schedule: Option<Schedule> = None;
        // One fetch of new credentials at once after "not authorised" (§9); a second
        // refusal in a row waits the backoff like any failure.
        let mut refused_once = false;
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
            let (attempt, renew_at) = match (fetched, &last_good) {
                (Ok((creds, id)), _) => {
                    if id.devices.is_empty() {
                        tracing::warn!("no devices to subscribe (the device list is empty)");
                    }
                    let now = Instant::now();
                    last_good = Some(Current {
                        creds: creds.clone(),
                        id: id.clone(),
                        certified_at: now,
                    });
                    (Ok((creds, id)), now + self.config.recertify_after)
                }
                (Err(e), Some(previous)) if e.action() == Action::Retry => {
                    tracing::warn!("{e}; reusing the MQTT credentials we have");
                    // Renewal cannot work while the API is down: try again no sooner than
                    // the longest backoff, so old credentials never make a tight loop.
                    let due = (previous.certified_at + self.config.recertify_after)
                        .max(Instant::now() + self.config.reconnect_max);
                    (Ok((previous.creds.clone(), previous.id.clone())), due)
                }
                (Err(e), _) => (Err(e), Instant::now()),
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
                                self.switch_period(&id),
                                &self.observer,
                            ))
                        }
                    };
                    let ended = self
                        .connect_once(
                            &creds,
                            &id,
                            schedule,
                            &auth,
                            &mut requests,
                            renew_at,
                            &shutdown,
                        )
                        .await;
                    match ended {
                        Ended::Shutdown => break,
                        Ended::Renew => {
                            tracing::info!(
                                "MQTT credentials are {} old; fetching new ones",
                                humantime::format_duration(self.config.recertify_after)
                            );
                            backoff.reset();
                            continue;
                        }
                        Ended::Failed {
                            error,
                            connected_at,
                        } => {
                            // Only a connection that stayed up a while starts the delays
                            // again at the shortest (connect::Backoff): one the broker
                            // drops at once, e.g. for a packet over the client's limit,
                            // must not reconnect in a tight loop.
                            if let Some(at) = connected_at {
                                backoff.connected_at(at.into_std());
                                refused_once = false;
                            }
                            if error.action() == Action::Relogin {
                                last_good = None;
                            }
                            if matches!(error, SourceError::MqttNotAuthorized(_)) && !refused_once {
                                refused_once = true;
                                tracing::warn!("{error}; fetching new MQTT credentials at once");
                                self.observer.reconnecting(&error);
                                continue;
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
                    if error.is_refusal() {
                        auth.forget_token();
                        last_good = None;
                    }
                    error
                }
            };
            self.observer.reconnecting(&error);
            let mut delay = backoff.next_delay();
            if error.is_refusal() {
                // A refused password or key will not change by itself: wait the longest
                // delay, so the account is not hammered (and locked) by retries.
                delay = delay.max(self.config.reconnect_max);
            }
            if !crate::mqtt::wait_to_retry(&error, delay, &shutdown).await {
                break;
            }
        }
        self.observer.stopped();
        tracing::info!("EcoFlow cloud source stopped");
        Ok(())
    }

    /// How often the energy stream switch goes out; `None` where none is sent (open API,
    /// or switched off).
    fn switch_period(&self, id: &Identity) -> Option<Duration> {
        (self.config.energy_stream_switch && id.way_in == WayIn::App)
            .then_some(self.config.energy_stream_interval)
    }

    /// The client id of this installation for the route and account (kept, §9).
    pub(crate) fn client_id(&self, id: &Identity) -> String {
        crate::client_id::client_id(&self.client_ids, id.way_in, &id.account)
    }
}

/// The millisecond clock's low 31 bits: the `seq` the app puts in its frames (§3, §8),
/// for every frame the bridge sends (switch, get-all, §10 sets and their dry runs).
pub fn seq_now() -> i32 {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    (millis & 0x7fff_ffff) as i32
}
