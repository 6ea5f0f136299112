//! [`ClientIdFile`]: the MQTT client ids of this installation, kept in the state
//! directory's `client-ids.json` (`{"app:<userId>": "ANDROID_…_<userId>", …}`), so one id
//! per route and account survives restarts (protocol §9: a new id per start meets the
//! open API's 10-ids-a-day limit, and two ids per account fight over the app route).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sources::{ClientIdStore, SaveError};

use crate::data_dir::write_atomic;

/// The ids file, read once at open and rewritten (atomically) when an id is added.
#[derive(Debug)]
pub struct ClientIdFile {
    path: PathBuf,
    ids: Mutex<BTreeMap<String, String>>,
}

impl ClientIdFile {
    /// Reads `path` if it exists. A file that is not an id map is kept aside as
    /// `<name>.bad` (nothing stored is thrown away) and the bridge starts a new map.
    pub fn open(path: &Path) -> ClientIdFile {
        let ids = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, String>>(&bytes) {
                Ok(ids) => ids,
                Err(e) => {
                    let aside = path.with_extension("json.bad");
                    let kept = std::fs::rename(path, &aside).is_ok();
                    tracing::warn!(
                        "{} is not a client id map ({e}){}; new client ids will be made",
                        path.display(),
                        if kept {
                            format!(", kept as {}", aside.display())
                        } else {
                            String::new()
                        }
                    );
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", path.display());
                BTreeMap::new()
            }
        };
        ClientIdFile {
            path: path.to_path_buf(),
            ids: Mutex::new(ids),
        }
    }
}

impl ClientIdStore for ClientIdFile {
    fn load(&self, key: &str) -> Option<String> {
        self.ids.lock().ok()?.get(key).cloned()
    }

    fn save(&self, key: &str, id: &str) -> Result<(), SaveError> {
        let mut ids = self
            .ids
            .lock()
            .map_err(|_| SaveError("the client id map is poisoned".into()))?;
        ids.insert(key.to_string(), id.to_string());
        let text = serde_json::to_string_pretty(&*ids).map_err(|e| SaveError(e.into()))?;
        write_atomic(&self.path, text.as_bytes()).map_err(|e| SaveError(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataDir;
    use sources::WayIn;
    use std::sync::Arc;

    #[test]
    fn ids_survive_a_restart_and_a_bad_file_is_kept_aside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = DataDir::open(&dir.path().join("state")).expect("open");
        let first: Arc<dyn ClientIdStore> = Arc::new(state.client_ids());
        let id = sources::client_id::client_id(&first, WayIn::App, "42");
        drop(first);
        let again: Arc<dyn ClientIdStore> = Arc::new(state.client_ids());
        assert_eq!(sources::client_id::client_id(&again, WayIn::App, "42"), id);
        let text = std::fs::read_to_string(state.client_ids_file()).expect("kept");
        assert!(text.contains(&id), "{text}");

        std::fs::write(state.client_ids_file(), b"not json").expect("write");
        let fresh = state.client_ids();
        assert_eq!(fresh.load("app:42"), None);
        let aside = state.client_ids_file().with_extension("json.bad");
        assert_eq!(std::fs::read(aside).expect("kept aside"), b"not json");
    }
}
