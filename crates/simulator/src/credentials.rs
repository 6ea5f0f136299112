//! The simulated cloud's secrets, all from the OS random number generator: the MQTT logins
//! the certification endpoints hand out (the embedded broker accepts exactly these, each
//! until it expires: [`CredentialBook`], protocol §9), and the app login tokens. Without
//! OS randomness there are no guessable stand-ins: starting (or logging in) fails instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::SimulatorError;
use crate::field::stats::{APP, OPEN};

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
}

/// What the broker makes of a CONNECT's login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginCheck {
    /// Unknown user or password.
    Unknown,
    /// A login this route handed out, past its lifetime.
    Expired(&'static str),
    /// Valid for `route` until `expires` (`None`: forever).
    Valid {
        route: &'static str,
        expires: Option<Instant>,
    },
}

struct Issued {
    route: &'static str,
    username: String,
    expires: Option<Instant>,
}

/// Every MQTT login handed out, by password, with its route and expiry. With a lifetime
/// each certification hands out a fresh password (same account name, as the cloud's
/// `certificateAccount` stays), so an old one can expire while a new one works.
pub(crate) struct CredentialBook {
    ttl: Option<Duration>,
    base: Logins,
    issued: Mutex<HashMap<String, Issued>>,
}

impl CredentialBook {
    /// The book with `base`'s two logins issued now.
    pub(crate) fn new(base: Logins, ttl: Option<Duration>) -> CredentialBook {
        let book = CredentialBook {
            ttl,
            base,
            issued: Mutex::new(HashMap::new()),
        };
        for (route, c) in [(APP, &book.base.app), (OPEN, &book.base.open)] {
            book.record(route, c);
        }
        book
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, route: &'static str, c: &MqttCredentials) {
        let now = Instant::now();
        let expires = self.ttl.map(|ttl| now + ttl);
        let mut issued = self.lock();
        // Forget logins long dead (they would be refused as unknown instead of expired).
        if let Some(ttl) = self.ttl {
            issued.retain(|_, i| i.expires.is_none_or(|e| e + ttl * 4 > now));
        }
        issued.insert(
            c.password.clone(),
            Issued {
                route,
                username: c.username.clone(),
                expires,
            },
        );
    }

    /// The login `route`'s certification answers now: the base login when logins never
    /// expire, else a fresh password with a full lifetime.
    pub(crate) fn issue(&self, route: &'static str) -> Result<MqttCredentials, SimulatorError> {
        let base = if route == APP {
            &self.base.app
        } else {
            &self.base.open
        };
        if self.ttl.is_none() {
            return Ok(base.clone());
        }
        let fresh = MqttCredentials {
            username: base.username.clone(),
            password: random_hex(16)?,
        };
        self.record(route, &fresh);
        Ok(fresh)
    }

    /// What a CONNECT with `user`/`password` gets.
    pub(crate) fn check(&self, user: &str, password: &str) -> LoginCheck {
        let issued = self.lock();
        match issued.get(password).filter(|i| i.username == user) {
            None => LoginCheck::Unknown,
            Some(i) if i.expires.is_some_and(|e| e <= Instant::now()) => {
                LoginCheck::Expired(i.route)
            }
            Some(i) => LoginCheck::Valid {
                route: i.route,
                expires: i.expires,
            },
        }
    }

    /// The route a user name belongs to (for counting refusals), if any.
    pub(crate) fn route_of(&self, user: &str) -> Option<&'static str> {
        [(APP, &self.base.app), (OPEN, &self.base.open)]
            .into_iter()
            .find(|(_, c)| c.username == user)
            .map(|(route, _)| route)
    }

    pub(crate) fn base(&self) -> &Logins {
        &self.base
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
        assert_eq!(random_hex(4).unwrap().len(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn issued_logins_expire_one_by_one() {
        let base = Logins::generate().unwrap();
        let book = CredentialBook::new(base.clone(), Some(Duration::from_secs(10)));
        let check = |c: &MqttCredentials| book.check(&c.username, &c.password);
        assert!(matches!(
            check(&base.app),
            LoginCheck::Valid { route: APP, .. }
        ));
        tokio::time::advance(Duration::from_secs(6)).await;
        let fresh = book.issue(APP).unwrap();
        assert_eq!(fresh.username, base.app.username);
        assert_ne!(fresh.password, base.app.password);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(check(&base.app), LoginCheck::Expired(APP));
        assert!(matches!(check(&fresh), LoginCheck::Valid { .. }));
        let wrong_user = MqttCredentials {
            username: "x".into(),
            ..fresh.clone()
        };
        assert_eq!(check(&wrong_user), LoginCheck::Unknown);
        assert_eq!(book.route_of(&base.open.username), Some(OPEN));

        let forever = CredentialBook::new(base.clone(), None);
        assert_eq!(forever.issue(OPEN).unwrap(), base.open);
        tokio::time::advance(Duration::from_secs(86400 * 365)).await;
        assert!(matches!(
            forever.check(&base.open.username, &base.open.password),
            LoginCheck::Valid { expires: None, .. }
        ));
    }
}
