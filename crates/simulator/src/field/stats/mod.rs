//! What the simulator saw of its clients and did on the wire, as `GET /sim/stats` serves
//! it ([`FieldStats`]), and the live record behind it ([`FieldLog`]): per device the
//! switch frames, the stream, the §10 sets, the zeros left out and bad samples injected
//! (§11), the grid (§13) and the daily-counter ledger; per account the client ids and
//! refused connections; signing errors by code.
//!
//! # Layout
//! - this file: [`FieldLog`], [`Refusal`], the route keys.
//! - `answer`: the JSON types ([`FieldStats`], [`DeviceFieldStats`], [`AccountFieldStats`]).

mod answer;

pub use answer::{AccountFieldStats, DeviceFieldStats, FieldStats};

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::FieldConfig;
use super::client_id::DailyIds;
use super::glitch::BadSample;
use crate::SimulatorStats;
use crate::physics::ledger::LedgerDay;
use crate::physics::outage::GridRecord;
use crate::physics::timer::{TimerRefusal, TimerWriteKind};
use crate::sets::Ignored;
use protocol::TimerTask;

/// Distinct unknown set commands counted by name; past this, under `"other"` (the cmd_id
/// comes from whoever publishes: it must not grow the record without limit).
const MAX_UNKNOWN_COMMANDS: usize = 16;

/// What a device is now, for [`FieldLog::snapshot`].
pub(crate) struct DeviceNow {
    pub(crate) sn: String,
    pub(crate) online: bool,
    pub(crate) grid: GridRecord,
    pub(crate) ledger: Vec<LedgerDay>,
    pub(crate) timer_tasks: Vec<TimerTask>,
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
    /// The devices' Modbus side (protocol §14), when it runs.
    pub(crate) modbus: crate::modbus::stats::ModbusLog,
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
            modbus: Default::default(),
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
                    if let Ignored::UnknownCommand(id) = why {
                        let unknown = &mut d.stats.unknown_set_commands;
                        let mut name = format!("{}/{id}", protocol::control::CMD_FUNC);
                        if !unknown.contains_key(&name) && unknown.len() >= MAX_UNKNOWN_COMMANDS {
                            name = "other".to_string();
                        }
                        *unknown.entry(name).or_default() += 1;
                    }
                }
            }
        });
    }

    /// A report of `sn` went out with `omitted` zero fields left off and `injected` bad
    /// samples (kind, state key).
    pub(crate) fn on_the_wire(&self, sn: &str, omitted: usize, injected: &[(BadSample, &str)]) {
        if omitted == 0 && injected.is_empty() {
            return;
        }
        self.device(sn, |d| {
            d.stats.zero_fields_omitted += omitted as u64;
            for (kind, _) in injected {
                *d.stats
                    .bad_samples
                    .entry(kind.as_str().to_string())
                    .or_default() += 1;
            }
        });
    }

    /// A timer-task write arrived for `sn` (also counted as a set): taken as a recipe,
    /// or refused.
    pub(crate) fn timer_write(&self, sn: &str, outcome: Result<TimerWriteKind, TimerRefusal>) {
        self.device(sn, |d| {
            let (map, key) = match outcome {
                Ok(kind) => (&mut d.stats.timer_writes, kind.as_str()),
                Err(why) => (&mut d.stats.timer_writes_refused, why.as_str()),
            };
            *map.entry(key.to_string()).or_default() += 1;
        });
    }

    pub(crate) fn timer_list_request(&self, sn: &str) {
        self.device(sn, |d| d.stats.timer_list_requests += 1);
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

    /// The `/sim/stats` answer, with what each device is now.
    pub(crate) fn snapshot(
        &self,
        devices: impl IntoIterator<Item = DeviceNow>,
        totals: SimulatorStats,
    ) -> FieldStats {
        let mut inner = self.lock();
        let day = utc_day();
        let mut out = FieldStats {
            totals,
            signing_errors: inner.signing_errors.clone(),
            modbus: self.modbus.snapshot(),
            ..FieldStats::default()
        };
        for now in devices {
            let d = inner.devices.entry(now.sn.clone()).or_default();
            let mut stats = d.stats.clone();
            stats.online = now.online;
            stats.stream_on = now.online && self.flowing(d);
            stats.grid_outage_active = now.grid.down;
            stats.grid_outages_started = now.grid.outages_started;
            stats.grid_outages_ended = now.grid.outages_ended;
            stats.ledger = now.ledger;
            stats.timer_tasks = now.timer_tasks;
            out.devices.insert(now.sn, stats);
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
        for id in (100..120).chain([115, 115]) {
            log.set_frame("SN", Some(Ignored::UnknownCommand(id)));
        }
        log.on_the_wire("SN", 3, &[(BadSample::CounterDip, "k")]);
        log.on_the_wire("SN", 2, &[]);
        log.ignoring_sets("SN", true);
        assert!(log.admit_client_id(OPEN, "a") && log.admit_client_id(OPEN, "b"));
        assert!(!log.admit_client_id(OPEN, "c"));
        log.refused(OPEN, Refusal::ClientIdLimit);
        assert!((0..20).all(|i| log.admit_client_id(APP, &format!("x{i}"))));
        log.connected(APP, true);
        log.signing_error("8521");
        let now = DeviceNow {
            sn: "SN".to_string(),
            online: true,
            grid: GridRecord {
                down: true,
                outages_started: 1,
                outages_ended: 0,
            },
            ledger: Vec::new(),
            timer_tasks: Vec::new(),
        };
        log.timer_write("SN", Ok(TimerWriteKind::Arm));
        log.timer_write("SN", Ok(TimerWriteKind::Arm));
        log.timer_write("SN", Err(TimerRefusal::Power));
        log.timer_list_request("SN");
        let s = log.snapshot([now], SimulatorStats::default());
        let d = &s.devices["SN"];
        assert_eq!(d.unknown_set_commands.len(), MAX_UNKNOWN_COMMANDS + 1);
        assert_eq!(d.unknown_set_commands["96/115"], 3);
        assert_eq!(d.unknown_set_commands["other"], 4);
        assert_eq!(d.sets_ignored_by_reason["unknown_command"], 22);
        assert_eq!(d.zero_fields_omitted, 5);
        assert_eq!(d.bad_samples["counter_dip"], 1);
        assert!(d.grid_outage_active && d.grid_outages_started == 1);
        assert_eq!(
            (d.switch_frames, d.bad_switch_frames, d.stream_frames),
            (1, 1, 1)
        );
        assert_eq!((d.stream_withheld, d.get_all_requests), (1, 1));
        assert!(d.stream_on && d.last_switch_unix_ms.is_some());
        assert_eq!(
            (d.sets_received, d.sets_applied, d.sets_ignored),
            (24, 1, 23)
        );
        assert_eq!(d.sets_ignored_by_reason["envelope"], 1);
        assert_eq!(d.timer_writes["arm"], 2);
        assert_eq!(d.timer_writes_refused["power"], 1);
        assert_eq!(d.timer_list_requests, 1);
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
