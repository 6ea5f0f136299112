//! [`SourceError`]: what went wrong talking to the cloud, classified by what to do next.

/// An error of the cloud source. [`SourceError::action`] says how the session reacts.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Bad configuration (missing field, unreadable CA file): nothing to retry.
    #[error("configuration: {0}")]
    Config(String),
    /// The account or keys were refused (wrong password, unknown user, bad signature).
    #[error("{endpoint} rejected the credentials: {message}")]
    CredentialsRejected { endpoint: String, message: String },
    /// The login token was refused or expired: log in again.
    #[error("{endpoint}: token rejected ({message})")]
    TokenRejected { endpoint: String, message: String },
    /// DNS, connect, TLS or timeout: the network path failed.
    #[error("{endpoint}: {message}")]
    Network { endpoint: String, message: String },
    /// The API answered with an error code or a body we cannot use.
    #[error("{endpoint}: {message}")]
    Api { endpoint: String, message: String },
    /// The MQTT broker refused or dropped the connection.
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// The MQTT broker refused the certificate account/password.
    #[error("MQTT broker refused the credentials ({0})")]
    MqttNotAuthorized(String),
}

/// What the session does after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Back off, then retry with the credentials we have.
    Retry,
    /// Back off, then fetch MQTT credentials again (and log in again if needed).
    Relogin,
    /// Nothing will change by retrying.
    Fatal,
}

impl SourceError {
    pub fn action(&self) -> Action {
        match self {
            SourceError::Config(_) => Action::Fatal,
            SourceError::CredentialsRejected { .. }
            | SourceError::TokenRejected { .. }
            | SourceError::MqttNotAuthorized(_) => Action::Relogin,
            SourceError::Network { .. } | SourceError::Api { .. } | SourceError::Mqtt(_) => {
                Action::Retry
            }
        }
    }

    /// Short label for counters and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Config(_) => "config",
            SourceError::CredentialsRejected { .. } => "credentials_rejected",
            SourceError::TokenRejected { .. } => "token_rejected",
            SourceError::Network { .. } => "network",
            SourceError::Api { .. } => "api",
            SourceError::Mqtt(_) => "mqtt",
            SourceError::MqttNotAuthorized(_) => "mqtt_not_authorized",
        }
    }
}

impl From<connect::TlsError> for SourceError {
    fn from(e: connect::TlsError) -> Self {
        SourceError::Config(e.to_string())
    }
}
