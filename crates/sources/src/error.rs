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
    /// The API answered a body we cannot use, or a server error.
    #[error("{endpoint}: {message}")]
    Api { endpoint: String, message: String },
    /// The API answered a non-zero `code` (protocol §9 lists what they mean).
    #[error("{endpoint}: code {code}: {message}")]
    Refused {
        endpoint: String,
        code: String,
        message: String,
    },
    /// The API refused the request for a reason retrying soon will not fix (protocol §9:
    /// 8521 twice, 8513, 8512, 1006); `advice` says what the user should do.
    #[error("{endpoint}: code {code}: {advice}")]
    Denied {
        endpoint: String,
        code: String,
        advice: String,
    },
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
            | SourceError::Denied { .. }
            | SourceError::TokenRejected { .. }
            | SourceError::MqttNotAuthorized(_) => Action::Relogin,
            SourceError::Network { .. }
            | SourceError::Api { .. }
            | SourceError::Refused { .. }
            | SourceError::Mqtt(_) => Action::Retry,
        }
    }

    /// Short label for counters and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Config(_) => "config",
            SourceError::CredentialsRejected { .. } => "credentials_rejected",
            SourceError::Denied { .. } => "denied",
            SourceError::TokenRejected { .. } => "token_rejected",
            SourceError::Network { .. } => "network",
            SourceError::Api { .. } | SourceError::Refused { .. } => "api",
            SourceError::Mqtt(_) => "mqtt",
            SourceError::MqttNotAuthorized(_) => "mqtt_not_authorized",
        }
    }
}

impl SourceError {
    /// A refusal that will not change by itself (password, keys, permissions): the loop
    /// waits its longest delay before the next try, so the account is not hammered.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SourceError::CredentialsRejected { .. } | SourceError::Denied { .. }
        )
    }
}

impl From<connect::TlsError> for SourceError {
    fn from(e: connect::TlsError) -> Self {
        SourceError::Config(e.to_string())
    }
}
