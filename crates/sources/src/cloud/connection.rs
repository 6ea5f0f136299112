//! One MQTT connection of the cloud source, from connect to failure, renewal or shutdown:
//! the event driver (subscribe and start the timers at CONNACK, forward publishes), the
//! keep-alive ticker (energy stream switch and get-all per device, protocol §8) and the
//! requests from [`crate::SourceHandle`] (nudge a stale device, reconnect a silent one).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CloudSource, Ended};
use crate::credentials::{Identity, MqttCredentials};
use crate::error::SourceError;
use crate::handle::{Command, Request};
use crate::login::Authenticator;
use crate::mqtt::{self, classify, warn_refused_subscriptions};
use crate::payload::{Origin, RawPayload};
use crate::refusal::DEVICE_NOT_LINKED;
use crate::schedule::{Job, Schedule};

use super::seq_now;

/// A reconnect request ([`crate::SourceHandle::reconnect`]) is honoured only once the
/// connection is this old, so a device that is silent for a reason of its own can never
/// cause a reconnect loop. 10 s is the shortest energy stream switch period (protocol
/// §8: re-sent every 10–25 s) and two or more cadences of the stream (§7: every 3–5 s):
/// time enough for the switch sent at connect to bring data. Its own constant: the
/// switch period is a setting (`energy_stream_interval`), this floor is not.
const MIN_AGE_FOR_RECONNECT: Duration = Duration::from_secs(10);

impl CloudSource {
    /// One MQTT connection, from connect to failure (or renewal, or shutdown).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn connect_once(
        &self,
        creds: &MqttCredentials,
        id: &Identity,
        schedule: &mut Schedule,
        auth: &Authenticator,
        requests: &mut mpsc::Receiver<Request>,
        renew_at: Instant,
        shutdown: &CancellationToken,
    ) -> Ended {
        if creds.protocol != "mqtts" && creds.protocol != "ssl" && creds.protocol != "tls" {
            tracing::debug!(protocol = %creds.protocol, "certification names a non-TLS protocol; using TLS anyway");
        }
        // Requests from before this connection are moot: connecting sends everything.
        while requests.try_recv().is_ok() {}
        // §9: the broker is the one certification names (host and port), which may differ
        // from the API host.
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
        let wake = Notify::new();
        let connected_at: Mutex<Option<Instant>> = Mutex::new(None);

        let driver = async {
            loop {
                let event = eventloop.poll().await;
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Ok(mut at) = connected_at.lock() {
                            *at = Some(Instant::now());
                        }
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
                        wake.notify_one();
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        self.forward(p.topic, p.payload, Origin::Push);
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
                    Some(at) => tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = wake.notified() => {}
                    },
                    None => wake.notified().await,
                }
                let jobs = match schedule.lock() {
                    Ok(mut s) => s.take_due(Instant::now()),
                    Err(_) => Vec::new(),
                };
                for (sn, job) in jobs {
                    match job {
                        Job::StreamSwitch => self.stream_switch(&client, id, &sn),
                        // The timer tasks (§12) are not in the get-all answer: asked with it.
                        Job::GetAll => {
                            self.get_all(&client, auth, id, &sn).await;
                            self.timer_list(&client, id, &sn);
                        }
                    }
                }
            }
        };

        let served = async {
            loop {
                match requests.recv().await {
                    Some(Request::Nudge(sn)) => {
                        let scheduled = schedule
                            .lock()
                            .map(|mut s| s.nudge(&sn, Instant::now()))
                            .unwrap_or(false);
                        if scheduled {
                            tracing::debug!(sn, "stale: energy stream switch and get-all now");
                            wake.notify_one();
                        }
                    }
                    Some(Request::GetAll(sn)) => {
                        if id.devices.contains(&sn) {
                            self.get_all(&client, auth, id, &sn).await;
                        }
                    }
                    // A caller that gave up was told "nothing was sent": keep it true.
                    Some(Request::Set { sent, .. }) if sent.is_closed() => {}
                    Some(Request::TimerList(sn)) => {
                        if id.devices.contains(&sn) {
                            self.timer_list(&client, id, &sn);
                        }
                    }
                    Some(Request::Set {
                        device_sn,
                        command,
                        sent,
                    }) => {
                        let result = self.publish_set(&client, id, &device_sn, &command);
                        let ok = result.is_ok();
                        let _ = sent.send(result);
                        match command {
                            _ if !ok => {}
                            Command::Setting(_) => {
                                self.get_all(&client, auth, id, &device_sn).await
                            }
                            Command::Timer(_) => self.timer_list(&client, id, &device_sn),
                        }
                    }
                    Some(Request::Reconnect) => {
                        let age = connected_at
                            .lock()
                            .ok()
                            .and_then(|at| *at)
                            .map(|at| at.elapsed());
                        match age {
                            Some(age) if age >= MIN_AGE_FOR_RECONNECT => return,
                            _ => {
                                tracing::debug!("reconnect request ignored (connection too young)")
                            }
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };

        let mut driver_failed = false;
        let result = tokio::select! {
            error = driver => {
                driver_failed = true;
                Ended::Failed { error, connected_at: None }
            }
            _ = ticker => Ended::Shutdown,
            _ = served => Ended::Failed {
                error: SourceError::Mqtt("reconnecting: a device stayed silent while connected".into()),
                connected_at: None,
            },
            _ = tokio::time::sleep_until(renew_at) => Ended::Renew,
            _ = shutdown.cancelled() => Ended::Shutdown,
        };
        if let Ok(mut s) = schedule.lock() {
            s.on_disconnect();
        }
        let connected_at = connected_at.lock().ok().and_then(|at| *at);
        if !driver_failed && connected_at.is_some() && client.try_disconnect().is_ok() {
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
                connected_at,
            },
            other => other,
        }
    }

    /// Publishes the energy stream switch (96/97) on the device's `set` topic (§8).
    fn stream_switch(&self, client: &AsyncClient, id: &Identity, sn: &str) {
        let Some(topic) = id.set_topic(sn) else {
            return;
        };
        let payload = protocol::encode::energy_stream_switch(seq_now());
        match client.try_publish(topic, QoS::AtMostOnce, false, payload) {
            Ok(()) => {
                self.observer.stream_switch_sent();
                tracing::debug!(sn, "energy stream switch sent");
            }
            Err(e) => tracing::warn!(sn, "energy stream switch not queued: {e}"),
        }
    }

    /// Publishes a settings frame (§10) or a timer-task write (§12) on the device's `set`
    /// topic, QoS 1 (the app's); `Err` with a one-line reason when it cannot go out.
    fn publish_set(
        &self,
        client: &AsyncClient,
        id: &Identity,
        sn: &str,
        command: &Command,
    ) -> Result<(), String> {
        if !id.devices.iter().any(|d| d == sn) {
            return Err(format!("device {sn} is not on this account"));
        }
        let Some(topic) = id.set_topic(sn) else {
            return Err(
                "control needs the app route (way_in = \"app\"); the open API's set endpoint is not supported"
                    .into(),
            );
        };
        let payload = command.encode(sn, seq_now());
        client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| format!("the frame could not be queued: {e}"))?;
        tracing::info!(sn, setting = command.name(), "settings frame sent");
        Ok(())
    }

    /// Sends the 96/127 timer-task list request on the device's `set` topic (app route
    /// only; the answer comes on `set_reply`, §12).
    fn timer_list(&self, client: &AsyncClient, id: &Identity, sn: &str) {
        let Some(topic) = id.set_topic(sn) else {
            return;
        };
        let payload = protocol::timer::timer_tasks_request(sn, seq_now());
        match client.try_publish(topic, QoS::AtMostOnce, false, payload) {
            Ok(()) => tracing::debug!(sn, "timer-task list request sent"),
            Err(e) => tracing::warn!(sn, "timer-task list request not queued: {e}"),
        }
    }

    /// Sends the get-all request (app route) or fetches all quotas over HTTPS (open API).
    async fn get_all(&self, client: &AsyncClient, auth: &Authenticator, id: &Identity, sn: &str) {
        match id.get_topic(sn) {
            Some(topic) => {
                let payload = protocol::encode::get_all_request(seq_now());
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
                    let topic = protocol::topics::open_quota_topic(&id.account, sn);
                    self.forward(topic, Bytes::from(body), Origin::Poll);
                }
                Err(e @ SourceError::Denied { .. }) if is_not_linked(&e) => {
                    // Said once per device; it will not change until the user acts.
                    let first = self
                        .not_linked_warned
                        .lock()
                        .map(|mut w| w.insert(sn.to_string()))
                        .unwrap_or(true);
                    if first {
                        tracing::warn!(sn, "{e}");
                    } else {
                        tracing::debug!(sn, "{e}");
                    }
                }
                Err(e) => tracing::warn!(sn, "open-API quota/all failed: {e}"),
            },
        }
    }

    pub(super) fn forward(&self, topic: String, payload: Bytes, origin: Origin) {
        let raw = RawPayload {
            topic,
            payload,
            received_at: SystemTime::now(),
            origin,
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

fn is_not_linked(e: &SourceError) -> bool {
    matches!(e, SourceError::Denied { code, .. } if code == DEVICE_NOT_LINKED)
}
