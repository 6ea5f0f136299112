//! What a simulated device puts on the wire, heard by a client of the simulator's broker
//! next to the bridge: every payload on the device's report topic and on the account's
//! get-all answer topic (the bridge reads both, §3), decoded with the
//! protocol crate's decoder (which shows only what a frame carries, §6 rule 1: a 96/33
//! frame that leaves `pv_pwr` out has no `pvPwr`) and stamped with its arrival. A proof
//! compares what the bridge shows with what arrived, and when.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog::Channel;
use protocol::{Value, decode_payload};
use simulator::Simulator;

use super::app_client_id;

/// One report payload as it arrived.
#[derive(Debug, Clone)]
pub struct Heard {
    pub at: Instant,
    /// A get-all answer (`get_reply`), not a report the device sent on its own.
    pub reply: bool,
    /// The channels its frames carried.
    pub channels: Vec<Channel>,
    /// Its numeric values by catalog key (only those on the wire).
    pub numbers: BTreeMap<&'static str, f64>,
}

impl Heard {
    pub fn has(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }
}

/// A listener on one device's report topic; stops when dropped.
pub struct Wire {
    heard: Arc<Mutex<Vec<Heard>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Wire {
    /// Subscribes to `sn`'s report topic on the simulator's broker (app login, a client
    /// id of the accepted form made from `tag`); returns once the broker acknowledged.
    pub async fn listen(sim: &Simulator, tag: &str, sn: &str) -> Wire {
        let tls = connect::tls::client_config(Some(&sim.ca_cert_pem())).expect("TLS config");
        let creds = sim.app_credentials();
        let addr = sim.mqtt_addr();
        let mut options =
            rumqttc::MqttOptions::new(app_client_id(sim, tag), addr.ip().to_string(), addr.port());
        options
            .set_credentials(creds.username, creds.password)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(4 << 20, 4 << 20)
            .set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
        let reply_topic = protocol::topics::get_reply_topic(sim.user_id(), sn);
        for topic in [protocol::topics::property_topic(sn), reply_topic.clone()] {
            client
                .subscribe(topic, rumqttc::QoS::AtMostOnce)
                .await
                .expect("subscribe queued");
        }
        let heard = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let log = heard.clone();
        let sn = sn.to_string();
        let task = tokio::spawn(async move {
            let _client = client; // the event loop ends with its last handle
            let mut ready = Some(ready_tx);
            let mut acks = 0;
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == 2
                            && let Some(tx) = ready.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let at = Instant::now();
                        if let Ok(decoded) = decode_payload(&p.payload, &sn) {
                            let mut channels = Vec::new();
                            let mut numbers = BTreeMap::new();
                            for u in &decoded.updates {
                                if !channels.contains(&u.channel) {
                                    channels.push(u.channel);
                                }
                                if let Value::Number(n) = u.value {
                                    numbers.insert(u.state.key, n);
                                }
                            }
                            let entry = Heard {
                                at,
                                reply: p.topic == reply_topic,
                                channels,
                                numbers,
                            };
                            log.lock().expect("wire log").push(entry);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("wire listener: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("wire listener subscribed within 30 s")
            .expect("wire listener subscribed");
        Wire { heard, task }
    }

    /// Everything heard so far, in arrival order.
    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().expect("wire log").clone()
    }

    /// The device's own reports (no get-all answers) that carried `channel`.
    pub fn of(&self, channel: Channel) -> Vec<Heard> {
        self.heard()
            .into_iter()
            .filter(|h| !h.reply && h.has(channel))
            .collect()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.task.abort();
    }
}
