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
    Mqtt(Box<rumqttc::ClientError>),
    #[error("MQTT connection: {0}")]
    Connection(Box<rumqttc::ConnectionError>),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<rumqttc::ClientError> for SinkError {
    fn from(e: rumqttc::ClientError) -> Self {
        SinkError::Mqtt(Box::new(e))
    }
}

impl From<rumqttc::ConnectionError> for SinkError {
    fn from(e: rumqttc::ConnectionError) -> Self {
        SinkError::Connection(Box::new(e))
    }
}
