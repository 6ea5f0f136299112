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
    #[error("MQTT: {0}")]
    Mqtt(Box<rumqttc::v5::ClientError>),
    /// A setting that cannot work (the message names it).
    #[error("{0}")]
    Config(String),
    /// The broker could not be reached or refused us.
    #[error("MQTT broker {broker}: {reason}")]
    Connect { broker: String, reason: String },
}

impl From<rumqttc::v5::ClientError> for SinkError {
    fn from(e: rumqttc::v5::ClientError) -> Self {
        SinkError::Mqtt(Box::new(e))
    }
}
