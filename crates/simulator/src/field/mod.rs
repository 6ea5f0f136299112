//! The `[field]` section: how closely the simulator behaves like the real EcoFlow cloud
//! and device (protocol §8–9 and §10–13), one switch per behaviour, plus what the field
//! rules need at run time (the energy-stream switch check, client-id rules, what goes on
//! the wire, injected bad samples, the `/sim/stats` record).
//!
//! # Layout
//! - this file: [`FieldConfig`], [`GridOutage`], [`PENDING_BRIDGE`], [`Behaviour`].
//! - [`switch`]: is an MQTT payload the exact 96/97 `EnergyStreamSwitch` frame of §8?
//! - [`client_id`]: the app route's client-id form (§9) and the open route's daily limit.
//! - [`wire`]: which zeros a report leaves out (§11).
//! - [`glitch`]: the placeholders and counter dips of §11, injected at a seeded rate.
//! - [`stats`]: [`FieldStats`](stats::FieldStats), the JSON `GET /sim/stats` serves, and
//!   the live record behind it.

pub mod client_id;
pub mod glitch;
pub mod stats;
pub mod switch;
pub mod wire;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SimulatorError;

/// The field behaviours of protocol §8–9 (docs/field-behaviour.md), by name (what [`PENDING_BRIDGE`] lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// a: 96/33 only while a valid 96/97 switch arrived within `stream_window`.
    EnergyStreamSwitch,
    /// b: app-route client ids must be `ANDROID_<UUID v4 upper case>_<userId>`.
    AppClientIdForm,
    /// d: a fraction of correctly signed open-API requests answered 8521 anyway.
    IntermittentSignatureErrors,
}

/// Behaviours the bridge on `main` cannot cope with yet: they are OFF in
/// [`FieldConfig::default`] until the bridge learns them, so that a new rule can land
/// before the bridge's answer to it. Empty since the bridge sends the switch, a client id
/// of the accepted form and retries an intermittent 8521 (docs/field-behaviour.md): the
/// default is the whole field. [`FieldConfig::strict`] has everything on regardless.
pub const PENDING_BRIDGE: &[Behaviour] = &[];

fn pending(b: Behaviour) -> bool {
    PENDING_BRIDGE.contains(&b)
}

/// The fraction of correct open-API requests answered 8521 when that behaviour is on:
/// peers report it as occasional (protocol §9), so one in twenty.
pub const DEFAULT_INTERMITTENT_8521: f64 = 0.05;

/// The rate of each kind of bad sample (§11: placeholders, counter dips) when on: one
/// report in 500 that carries a candidate state — a few a day at the default cadences.
pub const DEFAULT_BAD_SAMPLE_RATE: f64 = 0.002;

/// A grid outage on the simulated clock (protocol §13), e.g.
/// `grid_outage = { after = "10m", duration = "5m" }` or, daily,
/// `{ after = "20h", duration = "30m", every = "24h" }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridOutage {
    /// Simulated time from the start to the first outage.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// How long each outage lasts (simulated, > 0).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Start to start of repeated outages (simulated, longer than `duration`); absent:
    /// one outage.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
}

/// How the simulated cloud treats its clients (protocol §8–9). Every switch defaults to
/// the field's behaviour except those in [`PENDING_BRIDGE`]; `FieldConfig::lenient()`
/// turns every rule off (for tests that need the old, kind cloud and say so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldConfig {
    /// a. A device sends the energy stream (96/33) only while a valid 96/97
    /// `EnergyStreamSwitch` (the exact frame of §8) arrived on its `set` topic within
    /// `stream_window`. Heartbeat, BP and BMS reports keep their cadence regardless, and a
    /// get-all answer then carries only those. Default on once the bridge sends the switch.
    pub energy_stream_switch: bool,
    /// How long one switch keeps the stream on, in REAL time (clients send the switch on
    /// a real-time timer whatever the simulation speed). Default `"25s"`.
    #[serde(with = "humantime_serde")]
    pub stream_window: Duration,
    /// b. The app route accepts only client ids `ANDROID_<UUID v4, upper case>_<userId>`;
    /// anything else gets CONNACK "not authorised". Default on once the bridge sends them.
    pub app_client_id_form: bool,
    /// b. A second connection with a live client id drops the first. Default true.
    pub client_id_takeover: bool,
    /// b. Distinct client ids per open-API account per UTC day (real time); the next one
    /// is refused. 0 = no limit. Default 10.
    pub open_client_ids_per_day: u32,
    /// c. The account lives in one region: a second HTTP listener plays the other
    /// region's API, where login answers the wrong-region message (app route) or 8513
    /// (open API). Default true.
    pub regions: bool,
    /// c. Certification names the broker by another host than the API's (`localhost`
    /// when the API is `127.0.0.1`), so a client that dials the API host is caught.
    /// Default true.
    pub distinct_broker_host: bool,
    /// d. Open-API signing as strict as §9: 8521 for a reused nonce, a stale timestamp or
    /// a `Content-Type` header on a GET. Default true.
    pub strict_signing: bool,
    /// d. How far a request's `timestamp` may be from the simulator's clock (and how long
    /// nonces are remembered). Default `"15m"`.
    #[serde(with = "humantime_serde")]
    pub timestamp_window: Duration,
    /// d. Fraction (0..=1) of correctly signed open-API requests answered 8521 anyway, as
    /// the cloud does now and then. 0 = off. Default 0.05 once the bridge retries them.
    pub intermittent_8521: f64,
    /// d. Serials not linked to the developer key: the open API answers 1006 for them.
    /// Default none.
    pub unlinked_devices: Vec<String>,
    /// e. How long the MQTT login from a certification stays valid (real time); after
    /// that the broker refuses it and drops the connections that use it. Each
    /// certification hands out a fresh login. `"0s"` = forever. Default `"24h"`.
    #[serde(with = "humantime_serde")]
    pub credential_ttl: Duration,
    /// f. An offline device's last values stay in `quota/all` (code 0) while its status
    /// says offline, as the real cloud answers. Off: the values keep moving. Default true.
    pub offline_keeps_last_values: bool,
    /// f. Serials that are offline from the start (they reported up to the start time,
    /// then went silent). Default none.
    pub offline_devices: Vec<String>,
    /// Serials that ignore §10 set frames: counted as received in `/sim/stats`, never
    /// applied, their 96/8 keeps the old values (docs/control.md: a bridge must then say "not
    /// applied"). Not a field rule — a test switch; at run time `Faults::ignore_sets`.
    /// Default none.
    pub ignore_sets: Vec<String>,
    /// §11. Energy-stream (96/33) power fields that are 0 — `grid_pwr` 1, `dcdc_pwr` 2,
    /// `bp_pwr` 3, `pv_pwr` 4, `load_pwr` 8, `bp_heating_power` 9, `heating_power` 10 — are
    /// left out of the frame, as the devices do (proto3): a night has no `pv_pwr` on the
    /// wire, an idle full battery no `bp_pwr`. `timestamp`, `timezone`, `bp_soc` stay.
    /// Default true.
    pub stream_omits_zero_powers: bool,
    /// §11. Heartbeat (96/1), BP (96/108) and BMS (96/111) reports carry fields that are 0
    /// explicitly, as the Fit does (`bpAmp 0`, `bpRunSta 0`). Off: they leave zeros out too
    /// (proto3 everywhere; a bridge must then keep the last value). Default true, and
    /// `lenient()` keeps it: explicit values are the kind side.
    pub slow_reports_explicit_zeros: bool,
    /// §10. Feed-in (`SysFeedPowerSet`) is taken at 96/101 only; a 96/115 frame changes
    /// nothing and is counted in `unknown_set_commands`. Off: 96/115 is taken too (what
    /// the protocol text said before its correction). Default true.
    pub feed_in_at_101_only: bool,
    /// §13. A grid outage: the meter's phase voltages read 0 V and the grid 0 W, the house
    /// runs on the battery and PV, then the grid returns. Default none.
    pub grid_outage: Option<GridOutage>,
    /// §11. Per report carrying such a state, the chance that one percentage reads
    /// 4294967295 (UINT32 max) or one lifetime counter reads 0, for that report only.
    /// Seeded (`seed`): the same run injects the same. 0 = off. Default 0.002.
    pub placeholder_rate: f64,
    /// §11. Per report carrying a counter, the chance that one counter (the heartbeat's
    /// daily energies, the BMS's lifetime ones) reads 1 less than in the report before,
    /// for that report only. 0 = off. Default 0.002.
    pub counter_dip_rate: f64,
    /// §12. A 96/127 answer carries the timer-task list twice under the request's seq:
    /// the current list first, then a stale copy (the list before its last change). Off:
    /// once. Default true.
    pub timer_list_twice: bool,
}

impl Default for FieldConfig {
    fn default() -> Self {
        FieldConfig {
            energy_stream_switch: !pending(Behaviour::EnergyStreamSwitch),
            app_client_id_form: !pending(Behaviour::AppClientIdForm),
            intermittent_8521: if pending(Behaviour::IntermittentSignatureErrors) {
                0.0
            } else {
                DEFAULT_INTERMITTENT_8521
            },
            ..FieldConfig::strict()
        }
    }
}

impl FieldConfig {
    /// Every field behaviour on, whatever [`PENDING_BRIDGE`] says.
    pub fn strict() -> FieldConfig {
        FieldConfig {
            energy_stream_switch: true,
            stream_window: Duration::from_secs(25),
            app_client_id_form: true,
            client_id_takeover: true,
            open_client_ids_per_day: 10,
            regions: true,
            distinct_broker_host: true,
            strict_signing: true,
            timestamp_window: Duration::from_secs(15 * 60),
            intermittent_8521: DEFAULT_INTERMITTENT_8521,
            unlinked_devices: Vec::new(),
            credential_ttl: Duration::from_secs(24 * 3600),
            offline_keeps_last_values: true,
            offline_devices: Vec::new(),
            ignore_sets: Vec::new(),
            stream_omits_zero_powers: true,
            slow_reports_explicit_zeros: true,
            feed_in_at_101_only: true,
            grid_outage: None,
            placeholder_rate: DEFAULT_BAD_SAMPLE_RATE,
            counter_dip_rate: DEFAULT_BAD_SAMPLE_RATE,
            timer_list_twice: true,
        }
    }

    /// Every rule off: a kind cloud that follows none of §8–9 (streams unasked, any client id,
    /// credentials forever, lax signing, every field on the wire, feed-in at 96/101 and
    /// 96/115, no bad samples, the timer-task list once). Takeover stays: the broker cannot hold two sessions under
    /// one id anyway; so do explicit zeros in the slow reports.
    pub fn lenient() -> FieldConfig {
        FieldConfig {
            energy_stream_switch: false,
            app_client_id_form: false,
            open_client_ids_per_day: 0,
            regions: false,
            distinct_broker_host: false,
            strict_signing: false,
            intermittent_8521: 0.0,
            credential_ttl: Duration::ZERO,
            offline_keeps_last_values: false,
            stream_omits_zero_powers: false,
            feed_in_at_101_only: false,
            placeholder_rate: 0.0,
            counter_dip_rate: 0.0,
            timer_list_twice: false,
            ..FieldConfig::strict()
        }
    }

    /// The credential lifetime, `None` for forever.
    pub fn credential_ttl(&self) -> Option<Duration> {
        (!self.credential_ttl.is_zero()).then_some(self.credential_ttl)
    }

    /// Refuses a window of zero, a fraction outside 0..=1 and serials that are not devices.
    pub(crate) fn validate(&self, devices: &[String]) -> Result<(), SimulatorError> {
        let bad = |m: String| Err(SimulatorError::Config(m));
        if self.stream_window.is_zero() {
            return bad("field.stream_window must be positive".into());
        }
        if self.timestamp_window.is_zero() {
            return bad("field.timestamp_window must be positive".into());
        }
        for (what, rate) in [
            ("intermittent_8521", self.intermittent_8521),
            ("placeholder_rate", self.placeholder_rate),
            ("counter_dip_rate", self.counter_dip_rate),
        ] {
            if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
                return bad(format!("field.{what} must be a fraction within 0..=1"));
            }
        }
        if let Some(o) = &self.grid_outage {
            if o.duration.is_zero() {
                return bad("field.grid_outage.duration must be positive".into());
            }
            if o.every.is_some_and(|every| every <= o.duration) {
                return bad("field.grid_outage.every must be longer than its duration".into());
            }
        }
        for (what, list) in [
            ("unlinked_devices", &self.unlinked_devices),
            ("offline_devices", &self.offline_devices),
            ("ignore_sets", &self.ignore_sets),
        ] {
            if let Some(sn) = list.iter().find(|sn| !devices.contains(sn)) {
                return bad(format!("field.{what}: {sn} is not one of the devices"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_field_minus_what_the_bridge_cannot_do_yet() {
        let d = FieldConfig::default();
        assert_eq!(
            d.energy_stream_switch,
            !pending(Behaviour::EnergyStreamSwitch)
        );
        assert_eq!(d.app_client_id_form, !pending(Behaviour::AppClientIdForm));
        assert!(d.regions && d.strict_signing && d.offline_keeps_last_values);
        assert_eq!(d.stream_window, Duration::from_secs(25));
        assert_eq!(d.credential_ttl(), Some(Duration::from_secs(86400)));
        let strict = FieldConfig::strict();
        assert!(strict.energy_stream_switch && strict.app_client_id_form);
        assert!(strict.intermittent_8521 > 0.0);
        let lenient = FieldConfig::lenient();
        assert!(!lenient.energy_stream_switch && !lenient.strict_signing);
        assert_eq!(lenient.credential_ttl(), None);
        // The wire as the field sends it (§10–11), off in the lenient cloud but for the
        // explicit zeros, which are the kind side.
        assert!(d.stream_omits_zero_powers && d.slow_reports_explicit_zeros);
        assert!(d.feed_in_at_101_only && d.grid_outage.is_none());
        assert!(d.placeholder_rate > 0.0 && d.counter_dip_rate > 0.0);
        assert!(!lenient.stream_omits_zero_powers && lenient.slow_reports_explicit_zeros);
        assert!(!lenient.feed_in_at_101_only);
        assert!(d.timer_list_twice && !lenient.timer_list_twice);
        assert_eq!(
            (lenient.placeholder_rate, lenient.counter_dip_rate),
            (0.0, 0.0)
        );
    }

    #[test]
    fn reads_humantime_and_checks_ranges() {
        let c: FieldConfig = serde_json::from_str(
            r#"{"stream_window": "10s", "credential_ttl": "3s", "intermittent_8521": 0.2}"#,
        )
        .unwrap();
        assert_eq!(c.stream_window, Duration::from_secs(10));
        assert_eq!(c.credential_ttl(), Some(Duration::from_secs(3)));
        assert!(c.validate(&[]).is_ok());
        let devices = vec!["A".to_string()];
        for (json, why) in [
            (r#"{"stream_window": "0s"}"#, "stream_window"),
            (r#"{"intermittent_8521": 1.5}"#, "intermittent_8521"),
            (r#"{"offline_devices": ["B"]}"#, "offline_devices: B"),
            (r#"{"unlinked_devices": ["C"]}"#, "unlinked_devices: C"),
            (r#"{"ignore_sets": ["D"]}"#, "ignore_sets: D"),
            (r#"{"placeholder_rate": -0.1}"#, "placeholder_rate"),
            (r#"{"counter_dip_rate": 2}"#, "counter_dip_rate"),
            (
                r#"{"grid_outage": {"after": "1m", "duration": "0s"}}"#,
                "duration must be positive",
            ),
            (
                r#"{"grid_outage": {"after": "1m", "duration": "1h", "every": "1h"}}"#,
                "every must be longer",
            ),
        ] {
            let c: FieldConfig = serde_json::from_str(json).unwrap();
            let e = c.validate(&devices).unwrap_err().to_string();
            assert!(e.contains(why), "{json}: {e}");
        }
        assert!(serde_json::from_str::<FieldConfig>(r#"{"nope": 1}"#).is_err());
        let c: FieldConfig =
            serde_json::from_str(r#"{"grid_outage": {"after": "10m", "duration": "5m"}}"#).unwrap();
        let outage = c.grid_outage.unwrap();
        assert_eq!(outage.after, Duration::from_secs(600));
        assert_eq!(
            (outage.duration, outage.every),
            (Duration::from_secs(300), None)
        );
        assert!(
            serde_json::from_str::<FieldConfig>(r#"{"grid_outage": {"after": "1m"}}"#).is_err()
        );
    }
}
