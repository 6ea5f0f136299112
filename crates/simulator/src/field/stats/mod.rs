//! What the simulator saw of its clients, as `GET /sim/stats` serves it ([`FieldStats`]),
//! and the live record behind it ([`FieldLog`]): per device the switch frames, the
//! stream and the §10 sets, per account the client ids and refused connections, signing errors by code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::FieldConfig;
use super::client_id::DailyIds;
use crate::SimulatorStats;
use crate::sets::Ignored;

/// The `GET /sim/stats` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldStats {
    /// Per device serial.
    pub devices: BTreeMap<String, DeviceFieldStats>,
    /// Per route: `"app"` (the e-mail account) and `"open"` (the developer key).
    pub accounts: BTreeMap<String, AccountFieldStats>,
    /// Open-API answers other than success, by code (`"8521"`, `"8513"`, `"1006"`, …).
    pub signing_errors: BTreeMap<String, u64>,
    /// The simulator's overall counters.
    pub totals: SimulatorStats,
}

/// One device, as the field rules saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceFieldStats {
    /// Online (reporting) right now.
    pub online: bool,
    /// Valid §8 switch frames received on the `set` topic.
    pub switch_frames: u64,
    /// 96/97 frames that were not the exact §8 switch (ignored).
    pub bad_switch_frames: u64,
    /// When the last valid switch arrived, epoch milliseconds.
    pub last_switch_unix_ms: Option<u64>,
    /// Whether the energy stream flows right now.
    pub stream_on: bool,
    /// Energy-stream (96/33) frames sent.
    pub stream_frames: u64,
    /// Energy-stream ticks skipped because no switch was recent enough.
    pub stream_withheld: u64,
    /// Times the stream stopped for want of a switch.
    pub stream_stops: u64,
    /// Get-all requests received.
    pub get_all_requests: u64,
    /// Payloads on the `set` topic other than 96/97 frames (protocol §10 sets and
    /// anything else), whatever became of them.
    pub sets_received: u64,
    /// Sets applied (each followed by a 96/8 report).
    pub sets_applied: u64,
    /// Sets ignored, in total and by reason: `not_a_frame`, `envelope`,
    /// `unknown_command`, `bad_pdata`, `bad_value`, `offline`, `ignoring_sets`.
    pub sets_ignored: u64,
    pub sets_ignored_by_reason: BTreeMap<String, u64>,
    /// The device is switched to ignore sets (`field.ignore_sets`, `Faults::ignore_sets`).
    pub ignores_sets: bool,
}

/// One account (route), as the broker and HTTP side saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountFieldStats {
    /// The user id (app route) or access key (open route).
    pub account: String,
    /// Distinct client ids accepted today (UTC, real time).
    pub client_ids_today: u64,
    /// Those client ids.
    pub client_ids: Vec<String>,
    /// MQTT connections accepted.
    pub connections: u64,
    /// Connections dropped because a new one took their client id.
    pub takeovers: u64,
    /// Connections refused, by reason: `bad_credentials`, `expired_credentials`,
    /// `client_id_form`, `client_id_limit`.
    pub refused: BTreeMap<String, u64>,
    /// Certification answers (each hands out a fresh MQTT login when logins expire).
    pub certifications: u64,
    /// Connections dropped because their login expired.
    pub expired_drops: u64,
    /// Logins refused on the other region's API.
    pub wrong_region: u64,
}

/// Why the broker refused a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadCredentials,
    ExpiredCredentials,
    ClientIdForm,
    ClientIdLimit,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::BadCredentials => "bad_credentials",
            Refusal::ExpiredCredentials => "expired_credentials",
            Refusal::ClientIdForm => "client_id_form",
            Refusal::ClientIdLimit => "client_id_limit",
        }
    }
}

/// The two routes' account keys in [`FieldStats::accounts`].
pub const APP: &str = "app";
pub const OPEN: &str = "open";

#[derive(Default)]
struct DeviceLog {
    stats: DeviceFieldStats,
    last_switch: Option<Instant>,
    flowing: bool,
}

#[derive(Default)]
struct AccountLog {
    stats: AccountFieldStats,
    ids: DailyIds,
}

struct Inner {
    devices: HashMap<String, DeviceLog>,
    accounts: BTreeMap<&'static str, AccountLog>,
    signing_errors: BTreeMap<String, u64>,
}

/// The live record (shared by the broker, the HTTP side and the devices).
pub struct FieldLog {
    gate_stream: bool,
    window: Duration,
    open_limit: u32,
    inner: Mutex<Inner>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Days since the epoch, UTC, real time.
fn utc_day() -> u64 {
    unix_ms() / 86_400_000
}

impl FieldLog {
    pub(crate) fn new(field: &FieldConfig, user_id: &str, access_key: &str) -> FieldLog {
        let account = |name: &str| AccountLog {
            stats: AccountFieldStats {
                account: name.to_string(),
                ..AccountFieldStats::default()
            },
            ids: DailyIds::default(),
        };
        FieldLog {
            gate_stream: field.energy_stream_switch,
            window: field.stream_window,
            open_limit: field.open_client_ids_per_day,
            inner: Mutex::new(Inner {
                devices: HashMap::new(),
                accounts: BTreeMap::from([(APP, account(user_id)), (OPEN, account(access_key))]),
                signing_errors: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counters only: a panic elsewhere cannot leave them inconsistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn account<R>(&self, route: &'static str, f: impl FnOnce(&mut AccountLog) -> R) -> R {
        let mut inner = self.lock();
        f(inner.accounts.entry(route).or_default())
    }

    fn device<R>(&self, sn: &str, f: impl FnOnce(&mut DeviceLog) -> R) -> R {
        let mut inner = self.lock();
        f(inner.devices.entry(sn.to_string()).or_default())
    }

    /// A valid switch (true) or a bad 96/97 frame (false) arrived for `sn`.
    pub(crate) fn switch_frame(&self, sn: &str, valid: bool) {
        self.device(sn, |d| {
            if valid {
                d.stats.switch_frames += 1;
                d.stats.last_switch_unix_ms = Some(unix_ms());
                d.last_switch = Some(Instant::now());
            } else {
                d.stats.bad_switch_frames += 1;
            }
        });
    }

    fn flowing(&self, d: &DeviceLog) -> bool {
        !self.gate_stream || d.last_switch.is_some_and(|t| t.elapsed() < self.window)
    }

    /// Whether `sn` streams now (protocol §8: a switch within the window).
    pub(crate) fn stream_on(&self, sn: &str) -> bool {
        self.device(sn, |d| self.flowing(d))
    }

    /// An energy-stream tick of `sn`: true when the frame goes out (counted either way).
    pub(crate) fn stream_tick(&self, sn: &str) -> bool {
        self.device(sn, |d| {
            let on = self.flowing(d);
            if on {
                d.stats.stream_frames += 1;
            } else {
                d.stats.stream_withheld += 1;
                if d.flowing {
                    d.stats.stream_stops += 1;
                }
            }
            d.flowing = on;
            on
        })
    }

    /// A set arrived for `sn`: applied (`None`) or ignored for `why`.
    pub(crate) fn set_frame(&self, sn: &str, why: Option<Ignored>) {
        self.device(sn, |d| {
            d.stats.sets_received += 1;
            match why {
                None => d.stats.sets_applied += 1,
                Some(why) => {
                    d.stats.sets_ignored += 1;
                    *d.stats
                        .sets_ignored_by_reason
                        .entry(why.as_str().to_string())
                        .or_default() += 1;
                }
            }
        });
    }

    pub(crate) fn ignoring_sets(&self, sn: &str, ignore: bool) {
        self.device(sn, |d| d.stats.ignores_sets = ignore);
    }

    pub(crate) fn get_all(&self, sn: &str) {
        self.device(sn, |d| d.stats.get_all_requests += 1);
    }

    /// Admits `client_id` for `route` under the daily limit (the open route only);
    /// counts it among today's ids when admitted.
    pub(crate) fn admit_client_id(&self, route: &'static str, client_id: &str) -> bool {
        let limit = if route == OPEN { self.open_limit } else { 0 };
        self.account(route, |a| a.ids.admit(utc_day(), client_id, limit))
    }

    pub(crate) fn refused(&self, route: &'static str, why: Refusal) {
        self.account(route, |a| {
            *a.stats.refused.entry(why.as_str().to_string()).or_default() += 1;
        });
    }

    pub(crate) fn connected(&self, route: &'static str, took_over: bool) {
        self.account(route, |a| {
            a.stats.connections += 1;
            a.stats.takeovers += u64::from(took_over);
        });
    }

    pub(crate) fn expired_drop(&self, route: &'static str) {
        self.account(route, |a| a.stats.expired_drops += 1);
    }

    pub(crate) fn certified(&self, route: &'static str) {
        self.account(route, |a| a.stats.certifications += 1);
    }

    pub(crate) fn wrong_region(&self, route: &'static str) {
        self.account(route, |a| a.stats.wrong_region += 1);
    }

    pub(crate) fn signing_error(&self, code: &str) {
        *self
            .lock()
            .signing_errors
            .entry(code.to_string())
            .or_default() += 1;
    }

    /// The `/sim/stats` answer; `devices` are the serials with whether each is online.
    pub(crate) fn snapshot(
        &self,
        devices: impl IntoIterator<Item = (String, bool)>,
        totals: SimulatorStats,
    ) -> FieldStats {
        let mut inner = self.lock();
        let day = utc_day();
        let mut out = FieldStats {
            totals,
            signing_errors: inner.signing_errors.clone(),
            ..FieldStats::default()
        };
        for (sn, online) in devices {
            let d = inner.devices.entry(sn.clone()).or_default();
            let mut stats = d.stats.clone();
            stats.online = online;
            stats.stream_on = online && self.flowing(d);
            out.devices.insert(sn, stats);
        }
        for (route, a) in &inner.accounts {
            let mut stats = a.stats.clone();
            stats.client_ids = a.ids.ids(day);
            stats.client_ids_today = a.ids.count(day) as u64;
            out.accounts.insert((*route).to_string(), stats);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_switches_stream_and_client_ids() {
        let field = FieldConfig {
            energy_stream_switch: true,
            open_client_ids_per_day: 2,
            ..FieldConfig::strict()
        };
        let log = FieldLog::new(&field, "42", "AK");
        assert!(!log.stream_tick("SN"));
        log.switch_frame("SN", false);
        assert!(!log.stream_on("SN"));
        log.switch_frame("SN", true);
        assert!(log.stream_tick("SN"));
        log.get_all("SN");
        log.set_frame("SN", None);
        log.set_frame("SN", Some(Ignored::Envelope));
        log.ignoring_sets("SN", true);
        assert!(log.admit_client_id(OPEN, "a") && log.admit_client_id(OPEN, "b"));
        assert!(!log.admit_client_id(OPEN, "c"));
        log.refused(OPEN, Refusal::ClientIdLimit);
        assert!((0..20).all(|i| log.admit_client_id(APP, &format!("x{i}"))));
        log.connected(APP, true);
        log.signing_error("8521");
        let s = log.snapshot([("SN".to_string(), true)], SimulatorStats::default());
        let d = &s.devices["SN"];
        assert_eq!(
            (d.switch_frames, d.bad_switch_frames, d.stream_frames),
            (1, 1, 1)
        );
        assert_eq!((d.stream_withheld, d.get_all_requests), (1, 1));
        assert!(d.stream_on && d.last_switch_unix_ms.is_some());
        assert_eq!((d.sets_received, d.sets_applied, d.sets_ignored), (2, 1, 1));
        assert_eq!(d.sets_ignored_by_reason["envelope"], 1);
        assert!(d.ignores_sets);
        assert_eq!(s.accounts[OPEN].client_ids, vec!["a", "b"]);
        assert_eq!(s.accounts[OPEN].refused["client_id_limit"], 1);
        assert_eq!(s.accounts[APP].client_ids_today, 20);
        assert_eq!(s.accounts[APP].takeovers, 1);
        assert_eq!(s.accounts[APP].account, "42");
        assert_eq!(s.signing_errors["8521"], 1);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<FieldStats>(&json).unwrap(), s);
    }

    #[test]
    fn without_the_switch_rule_the_stream_always_flows() {
        let log = FieldLog::new(&FieldConfig::lenient(), "42", "AK");
        assert!(log.stream_tick("SN") && log.stream_on("SN"));
    }
}
