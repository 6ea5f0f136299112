//! MQTT client ids: one per installation, route and account, generated once and kept
//! (protocol §9). The broker drops the older of two connections with one id, accepts only
//! `ANDROID_<UUID v4, upper case>_<userId>` on the app route and only 10 distinct ids per
//! account and day on the open API — so a new id per start or reconnect breaks the
//! bridge. Where ids are kept is a [`ClientIdStore`]: the runtime's state directory
//! (`client-ids.json`), or memory for tools and tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::config::WayIn;

/// Where client ids are kept between runs. `key` names route and account
/// (`app:<userId>`, `open_api:<certificateAccount>`).
pub trait ClientIdStore: Send + Sync {
    /// The id kept for `key`, if any.
    fn load(&self, key: &str) -> Option<String>;
    /// Keeps `id` for `key`; the error is one line naming what failed.
    fn save(&self, key: &str, id: &str) -> Result<(), SaveError>;
}

/// Why a client id was not kept (the store's own error inside); the id still serves
/// this run, only the next start makes a new one.
#[derive(Debug, thiserror::Error)]
#[error("cannot keep the MQTT client id: {0}")]
pub struct SaveError(pub Box<dyn std::error::Error + Send + Sync>);

/// Ids kept for the life of the process only (reused across reconnects, not restarts).
#[derive(Debug, Default)]
pub struct MemoryClientIds(Mutex<BTreeMap<String, String>>);

impl ClientIdStore for MemoryClientIds {
    fn load(&self, key: &str) -> Option<String> {
        self.0.lock().ok()?.get(key).cloned()
    }

    fn save(&self, key: &str, id: &str) -> Result<(), SaveError> {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key.to_string(), id.to_string());
        }
        Ok(())
    }
}

/// The store key of a route and account.
pub fn store_key(way_in: WayIn, account: &str) -> String {
    format!("{}:{account}", way_in.as_str())
}

/// A new id in the form the broker accepts for the route (§1a, §9).
pub fn generate(way_in: WayIn, account: &str) -> String {
    let uuid = uuid::Uuid::new_v4().to_string().to_uppercase();
    match way_in {
        WayIn::App => format!("ANDROID_{uuid}_{account}"),
        // No public form is prescribed for the developer route; what counts is that it
        // stays the same (10 distinct ids per account and day).
        WayIn::OpenApi => format!("OPEN_{uuid}_{account}"),
    }
}

/// True for an id the app route accepts: `ANDROID_<UUID v4 upper case>_<userId>`.
pub fn is_app_form(id: &str, user_id: &str) -> bool {
    let Some(rest) = id.strip_prefix("ANDROID_") else {
        return false;
    };
    let Some(uuid) = rest.strip_suffix(user_id).and_then(|r| r.strip_suffix('_')) else {
        return false;
    };
    uuid.len() == 36
        && !uuid.chars().any(|c| c.is_ascii_lowercase())
        && uuid::Uuid::parse_str(uuid).is_ok_and(|u| u.get_version_num() == 4)
}

/// The id for `way_in` and `account`: the kept one, else a new one that is kept at once.
/// A kept id of the wrong form (e.g. written by hand) is replaced. When keeping fails the
/// new id still serves this process, and the warning says the next start will differ.
pub fn client_id(store: &Arc<dyn ClientIdStore>, way_in: WayIn, account: &str) -> String {
    let key = store_key(way_in, account);
    if let Some(id) = store.load(&key) {
        let usable = match way_in {
            WayIn::App => is_app_form(&id, account),
            WayIn::OpenApi => !id.is_empty() && id.len() <= 128 && id.is_ascii(),
        };
        if usable {
            return id;
        }
        tracing::warn!(
            key,
            "kept MQTT client id has the wrong form; making a new one"
        );
    }
    let id = generate(way_in, account);
    match store.save(&key, &id) {
        Ok(()) => tracing::info!(key, "new MQTT client id kept for this installation"),
        Err(e) => tracing::warn!(
            "{e}; the MQTT client id will change at the next start (the cloud limits new ids per day)"
        ),
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_have_the_accepted_form_and_are_kept() {
        let store: Arc<dyn ClientIdStore> = Arc::new(MemoryClientIds::default());
        let id = client_id(&store, WayIn::App, "1234567890");
        assert!(is_app_form(&id, "1234567890"), "{id}");
        assert!(
            id.starts_with("ANDROID_") && id.ends_with("_1234567890"),
            "{id}"
        );
        assert_eq!(client_id(&store, WayIn::App, "1234567890"), id);
        assert_ne!(client_id(&store, WayIn::App, "other"), id);
        assert_ne!(client_id(&store, WayIn::OpenApi, "1234567890"), id);
        assert_eq!(store.load("app:1234567890").as_deref(), Some(id.as_str()));
    }

    #[test]
    fn wrong_forms_are_refused() {
        let uuid = "0F8FAD5B-D9CB-469F-A165-70867728950E";
        assert!(is_app_form(&format!("ANDROID_{uuid}_42"), "42"));
        assert!(!is_app_form(
            &format!("ANDROID_{}_42", uuid.to_lowercase()),
            "42"
        ));
        assert!(!is_app_form(&format!("ANDROID_{uuid}_43"), "42"));
        assert!(!is_app_form(&format!("IOS_{uuid}_42"), "42"));
        // Version 1 UUID.
        assert!(!is_app_form(
            "ANDROID_C232AB00-9414-11EC-B3C8-9F6BDECED846_42",
            "42"
        ));
        let store: Arc<dyn ClientIdStore> = Arc::new(MemoryClientIds::default());
        store.save("app:42", "ANDROID_bad_42").unwrap();
        let id = client_id(&store, WayIn::App, "42");
        assert!(is_app_form(&id, "42"), "{id}");
    }
}
