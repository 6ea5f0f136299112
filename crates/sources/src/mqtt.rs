//! MQTT helpers both sources share (the EcoFlow cloud's and fleet mode's): the client
//! options, the SUBACK refusal warning and the one-line classification of MQTT errors.
//!
//! # A packet over the limit
//! rumqttc treats an incoming packet over its limit as a fatal error of the connection:
//! it cannot skip one. Where the broker can be told the limit, it is:
//! - **Fleet brokers** (the user's mosquitto or EMQX) are spoken to in MQTT 5, whose
//!   CONNECT carries a Maximum Packet Size. The broker then must not send a bigger packet
//!   and discards the message for this client instead (MQTT 5.0 §3.1.2.11.4; mosquitto
//!   ≥ 1.6 logs "dropping too large outgoing PUBLISH"), so a hostile or broken publisher on
//!   the device topics costs the session nothing.
//! - **The EcoFlow cloud** speaks MQTT 3.1.1 (protocol §1a), which has no such field. An
//!   oversized packet there (only the cloud or the account itself can publish on its
//!   topics) drops the session; [`connect::Backoff`] then keeps the reconnects bounded,
//!   since it starts again at the shortest delay only after a stable connection.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as V5Reason;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode as V5Return, SubAck as V5SubAck};
use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, TlsConfiguration, Transport};

use crate::api::chain;
use crate::error::SourceError;

/// The largest packet a source takes in: the largest payload the decoder accepts, plus
/// room for the topic and the headers.
pub(crate) const MAX_INCOMING_PACKET: usize = protocol::MAX_PAYLOAD_BYTES + 4096;
/// The largest packet a source sends (get-all requests and settings frames are tiny).
const MAX_OUTGOING_PACKET: usize = 64 * 1024;

/// Client options for the EcoFlow cloud (MQTT 3.1.1): keep-alive (at least 5 s), a clean
/// session, packets up to [`MAX_INCOMING_PACKET`], and TLS when `tls` is given.
/// Credentials are the caller's.
pub(crate) fn options(
    client_id: String,
    host: &str,
    port: u16,
    keepalive: Duration,
    tls: Option<&rustls::ClientConfig>,
) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(keepalive.max(Duration::from_secs(5)))
        // A clean session: nothing is queued for us while we are away.
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    if let Some(tls) = tls {
        options.set_transport(transport(tls));
    }
    options
}

/// Client options for a fleet broker (MQTT 5): like [`options`], and the broker is told
/// the Maximum Packet Size, so it discards bigger messages instead of sending them (see
/// the module doc).
pub(crate) fn options_v5(
    client_id: String,
    host: &str,
    port: u16,
    keepalive: Duration,
    tls: Option<&rustls::ClientConfig>,
) -> rumqttc::v5::MqttOptions {
    let mut options = rumqttc::v5::MqttOptions::new(client_id, host, port);
    options
        .set_keep_alive(keepalive.max(Duration::from_secs(5)))
        // A clean start and no session expiry: a dead fleet instance's shared
        // subscription goes with its connection.
        .set_clean_start(true)
        .set_max_packet_size(Some(MAX_INCOMING_PACKET as u32));
    if let Some(tls) = tls {
        options.set_transport(transport(tls));
    }
    options
}

fn transport(tls: &rustls::ClientConfig) -> Transport {
    Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls.clone())))
}

/// Logs subscriptions the broker refused in a SUBACK.
pub(crate) fn warn_refused_subscriptions(ack: &rumqttc::SubAck) {
    let refused = ack
        .return_codes
        .iter()
        .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
        .count();
    if refused > 0 {
        tracing::warn!(refused, "broker refused subscriptions");
    }
}

/// [`warn_refused_subscriptions`] for an MQTT 5 SUBACK (which says why).
pub(crate) fn warn_refused_subscriptions_v5(ack: &V5SubAck) {
    let refused: Vec<&V5Reason> = ack
        .return_codes
        .iter()
        .filter(|c| !matches!(c, V5Reason::Success(_)))
        .collect();
    if let Some(first) = refused.first() {
        tracing::warn!(refused = refused.len(), reason = ?first, "broker refused subscriptions");
    }
}

/// Turns an MQTT error into a [`SourceError`] with one readable line.
pub(crate) fn classify(e: &ConnectionError) -> SourceError {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => SourceError::MqttNotAuthorized(format!("{code:?}")),
        ConnectionError::ConnectionRefused(code) => {
            SourceError::Mqtt(format!("broker refused the connection ({code:?})"))
        }
        ConnectionError::Tls(t) => tls_failed(t),
        ConnectionError::Io(io) => network_failed(io),
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => timed_out(),
        other => SourceError::Mqtt(chain(other)),
    }
}

/// [`classify`] for the MQTT 5 client of fleet mode.
pub(crate) fn classify_v5(e: &rumqttc::v5::ConnectionError) -> SourceError {
    use rumqttc::v5::ConnectionError as E;
    match e {
        E::ConnectionRefused(code @ (V5Return::BadUserNamePassword | V5Return::NotAuthorized)) => {
            SourceError::MqttNotAuthorized(format!("{code:?}"))
        }
        E::ConnectionRefused(
            code @ (V5Return::RefusedProtocolVersion | V5Return::UnsupportedProtocolVersion),
        ) => SourceError::Mqtt(format!(
            "broker refused the connection ({code:?}): fleet mode needs a broker that speaks \
             MQTT 5 (mosquitto 1.6 or newer, EMQX, HiveMQ)"
        )),
        E::ConnectionRefused(code) => {
            SourceError::Mqtt(format!("broker refused the connection ({code:?})"))
        }
        E::Tls(t) => tls_failed(t),
        E::Io(io) => network_failed(io),
        E::Timeout(_) => timed_out(),
        other => SourceError::Mqtt(chain(other)),
    }
}

fn tls_failed(t: &rumqttc::TlsError) -> SourceError {
    SourceError::Network {
        endpoint: "MQTT".into(),
        message: format!(
            "TLS failed (is the broker certificate trusted? see source.ca_file): {}",
            chain(t)
        ),
    }
}

fn network_failed(io: &std::io::Error) -> SourceError {
    let text = chain(io);
    let what = if text.contains("lookup") || text.contains("resolve") {
        "DNS lookup failed"
    } else if io.kind() == std::io::ErrorKind::ConnectionRefused {
        "cannot connect"
    } else {
        "connection lost"
    };
    SourceError::Network {
        endpoint: "MQTT".into(),
        message: format!("{what}: {text}"),
    }
}

fn timed_out() -> SourceError {
    SourceError::Network {
        endpoint: "MQTT".into(),
        message: "timed out".into(),
    }
}

/// Says why the session is down and waits `delay` before the next try, as both MQTT
/// sources do after a lost or refused connection; false when shutdown came first.
pub(crate) async fn wait_to_retry(
    error: &SourceError,
    delay: Duration,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    tracing::warn!(
        kind = error.kind(),
        "{error}; retrying in {:.1} s",
        delay.as_secs_f64()
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Action;

    #[test]
    fn refused_credentials_mean_fetching_new_ones() {
        for code in [
            ConnectReturnCode::NotAuthorized,
            ConnectReturnCode::BadUserNamePassword,
        ] {
            let e = classify(&ConnectionError::ConnectionRefused(code));
            assert_eq!(e.action(), Action::Relogin, "{e}");
        }
        let e = classify(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::ServiceUnavailable,
        ));
        assert_eq!(e.action(), Action::Retry);
    }

    #[test]
    fn io_failures_are_named() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = classify(&ConnectionError::Io(refused));
        assert!(e.to_string().contains("cannot connect"), "{e}");
        let dns = std::io::Error::other("failed to lookup address information");
        let e = classify(&ConnectionError::Io(dns));
        assert!(e.to_string().contains("DNS lookup failed"), "{e}");
        assert_eq!(e.action(), Action::Retry);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = classify_v5(&rumqttc::v5::ConnectionError::Io(refused));
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }

    #[test]
    fn a_broker_without_mqtt_5_is_named() {
        use rumqttc::v5::ConnectionError as E;
        let e = classify_v5(&E::ConnectionRefused(V5Return::UnsupportedProtocolVersion));
        assert!(e.to_string().contains("MQTT 5"), "{e}");
        let e = classify_v5(&E::ConnectionRefused(V5Return::NotAuthorized));
        assert_eq!(e.action(), Action::Relogin, "{e}");
    }

    #[test]
    fn the_fleet_broker_is_told_the_packet_limit() {
        let o = options_v5("id".into(), "h", 1883, Duration::from_secs(1), None);
        assert_eq!(o.max_packet_size(), Some(MAX_INCOMING_PACKET as u32));
        assert_eq!(o.keep_alive(), Duration::from_secs(5));
        assert!(o.clean_start());
        let o = options("id".into(), "h", 1883, Duration::from_secs(60), None);
        assert_eq!(o.max_packet_size(), MAX_INCOMING_PACKET);
    }
}
