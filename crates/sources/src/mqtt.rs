//! MQTT helpers both sources share (the EcoFlow cloud's and fleet mode's): the client
//! options, the SUBACK refusal warning and the one-line classification of MQTT errors.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{ConnectReturnCode, ConnectionError, MqttOptions, TlsConfiguration, Transport};

use crate::api::chain;
use crate::error::SourceError;

/// Client options: keep-alive (at least 5 s), a clean session, packets up to the largest
/// payload the decoder accepts, and TLS when `tls` is given. Credentials are the caller's.
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
        // A clean session: nothing is queued for us while we are away, and a dead fleet
        // instance's shared subscription goes with its connection.
        .set_clean_session(true)
        .set_max_packet_size(protocol::MAX_PAYLOAD_BYTES + 4096, 64 * 1024);
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls.clone()),
        )));
    }
    options
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

/// Turns an MQTT error into a [`SourceError`] with one readable line.
pub(crate) fn classify(e: &ConnectionError) -> SourceError {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => SourceError::MqttNotAuthorized(format!("{code:?}")),
        ConnectionError::ConnectionRefused(code) => {
            SourceError::Mqtt(format!("broker refused the connection ({code:?})"))
        }
        ConnectionError::Tls(t) => SourceError::Network {
            endpoint: "MQTT".into(),
            message: format!(
                "TLS failed (is the broker certificate trusted? see source.ca_file): {}",
                chain(t)
            ),
        },
        ConnectionError::Io(io) => {
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
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => SourceError::Network {
            endpoint: "MQTT".into(),
            message: "timed out".into(),
        },
        other => SourceError::Mqtt(chain(other)),
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
    }
}
