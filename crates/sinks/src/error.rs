//! Errors of the sinks.

/// Something a sink could not do.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid broker URL {0:?} (expected mqtt://host:port)")]
    BrokerUrl(String),
    #[error("MQTT: {0}")]
    Mqtt(#[from] rumqttc::ClientError),
    #[error("MQTT connection: {0}")]
    Connection(#[from] rumqttc::ConnectionError),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
