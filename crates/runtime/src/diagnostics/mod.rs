//! The diagnostics bundle a user attaches to a bug report (`oceanbridge diagnose`,
//! `GET /api/diagnostics`): version, the redacted config, per-device and per-channel ages
//! (and stages), the counters and `/metrics`, the last warnings and errors, and the
//! rolling raw-frame capture — every file of it with serial numbers, user and account
//! ids, e-mail addresses, the Home Assistant broker's host and user masked, and the
//! user's part of absolute paths replaced by `~` ([`mask`]).
//!
//! One bundle is built at a time in a process (it reads up to `[capture] max_size` and
//! holds it in memory twice): [`build`] waits for its turn, [`try_build`] answers
//! [`Busy`] at once (what `GET /api/diagnostics` maps to 429).
//!
//! Built from a running bridge ([`Live`]: its store, counters and log ring), or, when no
//! bridge runs, from what is on disk: the capture is replayed through the pipeline into a
//! fresh in-memory store, which gives the ages and counters as of the capture's payloads.
//!
//! # Layout
//! - this file: [`Inputs`], [`build`] → [`Bundle`] (named files, masked).
//! - [`mask`]: [`Masker`], what is secret and how it is hidden.
//! - [`archive`]: [`Bundle`] → `.tar.gz` or `.zip` bytes ([`Format`]).
//! - [`commands`]: `commands.json`, the frames seen on `set` topics and who sent them.
//! - [`live`]: [`LiveBundle`], a running bridge's bundle for `GET /api/diagnostics`.

pub mod archive;
pub mod commands;
pub mod live;
pub mod mask;

use std::io::BufReader;
use std::path::Path;
use std::sync::{Mutex, TryLockError};
use std::time::SystemTime;

use model::{BridgeStats, unix_ms};
use protocol::UpdateBuf;
use serde_json::json;
use sources::RawPayload;
use store::{StateStore, StoreConfig};

pub use archive::Format;
pub use live::{BuildError, DiagnosticsContext, LiveBundle};
pub use mask::{Masker, mask_paths};

use crate::capture;
use crate::config::{Config, SourceConfig};
use crate::log_ring::LogRing;
use crate::pipeline;

/// The bridge's version and commit, as `oceanbridge --version` prints it.
pub fn version() -> String {
    format!("oceanbridge {}", crate::VERSION)
}

/// A running bridge's state.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub store: &'a StateStore,
    pub stats: &'a BridgeStats,
    pub log: Option<&'a LogRing>,
}

/// What a bundle is made of; every part is optional.
#[derive(Default)]
pub struct Inputs<'a> {
    pub config: Option<&'a Config>,
    /// The config as text when there is no [`Config`] (already redacted).
    pub config_text: Option<&'a str>,
    pub live: Option<Live<'a>>,
    pub capture_dir: Option<&'a Path>,
    /// Lines for the README: how the bundle was made (e.g. "no bridge answered at …").
    pub notes: Vec<String>,
}

/// Named files, masked, ready for [`archive::write`].
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Bundle {
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// One capture segment, read.
struct Segment {
    name: String,
    payloads: Vec<RawPayload>,
    bad_lines: usize,
}

fn read_capture(dir: &Path) -> Vec<Segment> {
    capture::segments(dir)
        .into_iter()
        .filter_map(|seg| {
            let file = std::fs::File::open(&seg.path).ok()?;
            // The newest line may be half-written while the bridge runs: counted, skipped.
            let (payloads, bad) = sources::record::read_lines(BufReader::new(file));
            Some(Segment {
                name: seg.path.file_name()?.to_string_lossy().into_owned(),
                payloads,
                bad_lines: bad.len(),
            })
        })
        .collect()
}

/// Learns what the config says is secret: devices, e-mail, keys, broker user.
fn learn_config(masker: &mut Masker, config: &Config) {
    match &config.source {
        SourceConfig::Cloud(c) => {
            c.devices.iter().for_each(|d| masker.add(d));
            masker.add(&c.email);
            masker.add(&c.access_key);
        }
        SourceConfig::Broker(b) => {
            b.username.iter().for_each(|u| masker.add(u));
            b.client_id.iter().for_each(|c| masker.add(c));
        }
    }
    if let Some(user) = &config.home_assistant.username {
        masker.add(user);
    }
    // The broker's host names the user's network (a DNS name, a public address); a
    // loopback one says nothing.
    let host = config.home_assistant.broker.host.as_str();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if !loopback {
        masker.add(host);
    }
}

/// The one bundle being built in this process.
static BUILDING: Mutex<()> = Mutex::new(());

/// Another bundle is being built in this process; try again when it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another diagnostics bundle is being built; try again in a moment")]
pub struct Busy;

/// Builds the bundle if no other is being built in this process, else [`Busy`] at once.
/// File I/O (the capture): call it from a blocking thread.
pub fn try_build(inputs: Inputs<'_>) -> Result<Bundle, Busy> {
    let _turn = match BUILDING.try_lock() {
        Ok(guard) => guard,
        // A build that panicked left nothing half-done behind: the lock guards no data.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return Err(Busy),
    };
    Ok(build_now(inputs))
}

/// Builds the bundle, after any other being built in this process. File I/O (the
/// capture): call it from a blocking thread.
pub fn build(inputs: Inputs<'_>) -> Bundle {
    let _turn = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    build_now(inputs)
}

/// Learns the serials a store holds: devices and every `…Sn` state.
fn learn_store(masker: &mut Masker, store: &StateStore) {
    for device in store.devices() {
        masker.add(&device.device_sn);
        for latest in store.latest(&device.device_sn) {
            if latest.state.name.ends_with("Sn")
                && let protocol::Value::Text(t) = &latest.value
            {
                masker.add(t);
            }
        }
    }
}

fn build_now(inputs: Inputs<'_>) -> Bundle {
    let now = SystemTime::now();
    let segments = inputs.capture_dir.map(read_capture).unwrap_or_default();
    let mut masker = Masker::new();
    if let Some(config) = inputs.config {
        learn_config(&mut masker, config);
    }
    for raw in segments.iter().flat_map(|s| &s.payloads) {
        masker.learn_topic(&raw.topic);
        masker.learn_payload(&raw.topic, &raw.payload);
    }

    // Without a running bridge, the capture replayed into a fresh store stands in for it.
    let replayed = inputs.live.is_none().then(|| {
        let store = StateStore::open(&StoreConfig::default()).ok();
        let stats = BridgeStats::default();
        if let Some(store) = &store {
            let mut buf = UpdateBuf::new();
            for raw in segments.iter().flat_map(|s| &s.payloads) {
                pipeline::process(&mut buf, raw, store, &stats);
            }
        }
        (store, stats)
    });
    let (store, stats, log, state_from) = match (&inputs.live, &replayed) {
        (Some(live), _) => (Some(live.store), live.stats, live.log, "the running bridge"),
        (None, Some((store, stats))) => (
            store.as_ref(),
            stats,
            None,
            "the capture, replayed: ages count from each payload's capture time; stages are the replay's, not what the bridge saw",
        ),
        (None, None) => unreachable!("replayed is set whenever live is not"),
    };
    if let Some(store) = store {
        learn_store(&mut masker, store);
    }

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut text = |name: &str, body: String| {
        files.push((
            name.to_string(),
            mask_paths(&masker.text(&body)).into_bytes(),
        ))
    };
    let captured: usize = segments.iter().map(|s| s.payloads.len()).sum();
    let bad: usize = segments.iter().map(|s| s.bad_lines).sum();
    text(
        "README.txt",
        readme(&inputs, state_from, segments.len(), captured, bad, now),
    );
    text("version.txt", format!("{}\n", version()));
    let config = match (inputs.config, inputs.config_text) {
        (Some(c), _) => c
            .to_redacted_toml()
            .unwrap_or_else(|e| format!("# the config could not be printed: {e}\n")),
        (None, Some(t)) => t.to_string(),
        (None, None) => "# no config file was found\n".to_string(),
    };
    text("config.toml", config);
    let devices = store.map(|s| s.devices_at(now)).unwrap_or_default();
    text(
        "devices.json",
        pretty(&json!({"from": state_from, "now_ms": unix_ms(now), "devices": devices})),
    );
    text(
        "counters.json",
        pretty(&json!({"from": state_from, "counters": stats.snapshot()})),
    );
    if let Some(store) = store {
        text("metrics.txt", sinks::metrics::render(store, stats));
    }
    let errors = match log {
        Some(ring) => pretty(&json!(ring.snapshot())),
        None => pretty(&json!({
            "note": "only a running bridge keeps its last warnings and errors; see its log (journalctl -u oceanbridge)"
        })),
    };
    text("last-errors.json", errors);
    let all: Vec<&RawPayload> = segments.iter().flat_map(|s| &s.payloads).collect();
    let live_store = inputs.live.map(|l| l.store);
    text(
        "commands.json",
        pretty(&commands::summary(&all, &masker, live_store)),
    );
    for segment in &segments {
        let mut body = String::new();
        for raw in &segment.payloads {
            let masked = RawPayload {
                topic: masker.text(&raw.topic),
                payload: masker.payload(&raw.payload).into(),
                received_at: raw.received_at,
                origin: raw.origin,
            };
            body.push_str(&capture::capture_line(&masked));
            body.push('\n');
        }
        text(&format!("capture/{}", segment.name), body);
    }
    Bundle { files }
}

fn pretty(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

fn readme(
    inputs: &Inputs<'_>,
    state_from: &str,
    segments: usize,
    captured: usize,
    bad: usize,
    now: SystemTime,
) -> String {
    let mut s = format!(
        "oceanbridge diagnostics bundle\n\
         made {} by {}\n\n\
         Serial numbers, user and account ids, e-mail addresses and the Home Assistant\n\
         broker's host and user are masked in every file (HC31********0123), home folders\n\
         in paths read ~; secrets (passwords, keys, tokens) never leave the config.\n\n\
         version.txt       the bridge's version\n\
         config.toml       the effective config, secrets redacted\n\
         devices.json      per device and channel: last update, age, stage — from {state_from}\n\
         counters.json     payloads, frames, skips, errors, drops, source health\n\
         metrics.txt       the /metrics page\n\
         last-errors.json  the last warnings and errors\n\
         commands.json     frames seen on the devices' set topics (the app's settings changes)\n\
         capture/          {captured} raw payloads in {segments} segment(s) (oceanbridge replay reads them)\n",
        humantime::format_rfc3339_seconds(now),
        version(),
    );
    if bad > 0 {
        s.push_str(&format!(
            "\n{bad} capture line(s) could not be read (e.g. one being written) and were left out.\n"
        ));
    }
    if inputs.capture_dir.is_none() {
        s.push_str("\nNo capture directory was given: capture/ is empty.\n");
    }
    for note in &inputs.notes {
        s.push_str(&format!("\n{note}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_build_at_a_time_a_second_is_busy() {
        let held = BUILDING.lock().expect("the build slot");
        assert_eq!(try_build(Inputs::default()).err(), Some(Busy));
        drop(held);
        let bundle = try_build(Inputs::default()).expect("free again");
        assert!(bundle.file("README.txt").is_some());
        assert!(bundle.file("commands.json").is_some());
    }

    #[test]
    fn the_home_assistant_broker_host_and_user_are_masked() {
        let config = Config::from_toml(
            "[home_assistant]\nenabled = true\nbroker = \"mqtts://ha-7f3a.example.net:8883\"\n\
             username = \"alice-ha\"\n",
            |_| None,
        )
        .expect("config");
        let bundle = build(Inputs {
            config: Some(&config),
            ..Inputs::default()
        });
        let text = String::from_utf8_lossy(bundle.file("config.toml").expect("config"));
        assert!(!text.contains("ha-7f3a.example.net"), "{text}");
        assert!(!text.contains("alice-ha"), "{text}");
        assert!(text.contains("mqtts://"), "{text}");
    }
}
