//! A private mosquitto (`testkit::Mosquitto`, on a port it really holds), configured as a
//! fleet broker would be (a deep per-client queue, TCP_NODELAY), next to the system's
//! default-configured one.

use testkit::Mosquitto;

use crate::bridge::Error;

/// Per-client queue of the tuned broker (mosquitto's default is 1000).
pub const TUNED_MAX_QUEUED: u32 = 100_000;

pub struct PrivateBroker {
    broker: Mosquitto,
    pub port: u16,
}

impl PrivateBroker {
    pub async fn start() -> Result<PrivateBroker, Error> {
        let bin = testkit::services::mosquitto().map_err(|m| m.to_string())?;
        let broker = tokio::task::spawn_blocking(move || {
            Mosquitto::start_with(
                &bin,
                &format!("max_queued_messages {TUNED_MAX_QUEUED}\nset_tcp_nodelay true"),
            )
        })
        .await?;
        let port = broker.port();
        Ok(PrivateBroker { broker, port })
    }

    pub async fn stop(self) {
        let mut broker = self.broker;
        let _ = tokio::task::spawn_blocking(move || broker.kill()).await;
    }
}
