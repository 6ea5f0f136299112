//! The simulated cloud's secrets, all from the OS random number generator: the MQTT logins
//! the certification endpoints hand out (the embedded broker accepts exactly these), and
//! the app login tokens. Without OS randomness there are no guessable stand-ins: starting
//! (or logging in) fails instead.

use crate::SimulatorError;

/// MQTT login a client gets from a certification endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttCredentials {
    pub username: String,
    pub password: String,
}

/// The two logins of one simulator run: the app route's and the open API's.
#[derive(Debug, Clone)]
pub(crate) struct Logins {
    pub(crate) app: MqttCredentials,
    pub(crate) open: MqttCredentials,
}

impl Logins {
    /// Fresh random logins (`app-<hex>` / `open-<hex>` users, 32-hex-digit passwords).
    pub(crate) fn generate() -> Result<Logins, SimulatorError> {
        let login = |prefix: &str| -> Result<MqttCredentials, SimulatorError> {
            Ok(MqttCredentials {
                username: format!("{prefix}-{}", random_hex(12)?),
                password: random_hex(16)?,
            })
        };
        Ok(Logins {
            app: login("app")?,
            open: login("open")?,
        })
    }

    /// `(user, password)` pairs the embedded broker accepts.
    pub(crate) fn accepted(&self) -> Vec<(String, String)> {
        [&self.app, &self.open]
            .into_iter()
            .map(|c| (c.username.clone(), c.password.clone()))
            .collect()
    }
}

/// `bytes` random bytes from the OS, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> Result<String, SimulatorError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SimulatorError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_random_and_distinct() {
        let a = Logins::generate().unwrap();
        let b = Logins::generate().unwrap();
        assert!(a.app.username.starts_with("app-") && a.open.username.starts_with("open-"));
        assert_eq!(a.app.password.len(), 32);
        assert_ne!(a.app.password, b.app.password);
        assert_ne!(a.app.password, a.open.password);
        assert_eq!(a.accepted().len(), 2);
        assert_eq!(random_hex(4).unwrap().len(), 8);
    }
}
