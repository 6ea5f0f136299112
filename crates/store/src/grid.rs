//! Grid presence per device (protocol §13): is the grid there, derived from the meter's
//! phase voltages the heartbeat reports, since no cloud field says so reliably. Not one
//! of the 216 catalog states: its own value, with how it was derived.
//!
//! The rule (the working peer's, §13): **present** when at least one reported phase
//! voltage is above 50 V; **lost** when every reported one is at or below it *while the
//! device itself reports* (online, heartbeat fresh: a silent device says nothing about
//! the grid); **unknown** when no phase voltage was ever reported, or the device is
//! offline or unavailable. "Reported" is what the store holds: the Fit sends its
//! heartbeat with explicit zeros (§11), so a phase it reports at 0 V counts, and one it
//! never reported does not. Confidence on the Fit: low (inferred); every derivation text
//! says so.

use model::grid::{GridPresence, GridState, NO_VOLTAGE};

use model::Stage;

/// Above this a phase carries the grid (§13).
pub const GRID_VOLTAGE_THRESHOLD_V: f64 = 50.0;

/// The heartbeat's meter phase voltages (`EMSHeartbeatReport` fields 13–15).
pub const PHASE_VOLTAGE_KEYS: [&str; 3] = [
    "EMSHeartbeatReport.meterAVoltage",
    "EMSHeartbeatReport.meterBVoltage",
    "EMSHeartbeatReport.meterCVoltage",
];

const PRESENT: &str =
    "meter phase voltages: at least one above 50 V (protocol §13; low confidence on the Fit)";
const LOST: &str = "meter phase voltages: every reported phase at or below 50 V while the device reports (protocol §13; low confidence on the Fit)";
const OFFLINE: &str =
    "the device reported itself offline (protocol §13: only a reporting device tells)";
const UNAVAILABLE: &str = "the device is unavailable (protocol §13: only a reporting device tells)";
const QUIET: &str = "meter phase voltages at or below 50 V, but the heartbeat is not fresh: lost only while the device reports (protocol §13)";

/// What the derivation looks at, for one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GridInputs {
    /// The phase voltages the store holds (`None`: never reported).
    pub(crate) voltages: [Option<f64>; 3],
    /// The last online/offline report (`None`: never said).
    pub(crate) online: Option<bool>,
    /// The heartbeat channel's stage (`None`: never reported).
    pub(crate) heartbeat: Option<Stage>,
    /// The device's stage (`None`: nothing reported).
    pub(crate) device: Option<Stage>,
}

/// The §13 rule (see the module doc).
pub(crate) fn derive(inputs: &GridInputs) -> GridState {
    let state = |presence, derivation| GridState {
        presence,
        derivation,
        since_ms: None,
    };
    let reported = inputs.voltages.iter().flatten().filter(|v| v.is_finite());
    let Some(highest) = reported.fold(None, |m: Option<f64>, v| Some(m.map_or(*v, |m| m.max(*v))))
    else {
        return state(GridPresence::Unknown, NO_VOLTAGE);
    };
    if inputs.online == Some(false) {
        return state(GridPresence::Unknown, OFFLINE);
    }
    if inputs.device.is_none_or(|s| s == Stage::Unavailable) {
        return state(GridPresence::Unknown, UNAVAILABLE);
    }
    if highest > GRID_VOLTAGE_THRESHOLD_V {
        state(GridPresence::Present, PRESENT)
    } else if inputs.heartbeat == Some(Stage::Fresh) {
        state(GridPresence::Lost, LOST)
    } else {
        state(GridPresence::Unknown, QUIET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(voltages: [Option<f64>; 3]) -> GridInputs {
        GridInputs {
            voltages,
            online: Some(true),
            heartbeat: Some(Stage::Fresh),
            device: Some(Stage::Fresh),
        }
    }

    fn presence(i: GridInputs) -> GridPresence {
        derive(&i).presence
    }

    #[test]
    fn one_phase_above_50_v_is_enough_and_all_low_is_lost_while_reporting() {
        use GridPresence::*;
        assert_eq!(
            presence(inputs([Some(230.1), Some(0.0), Some(0.0)])),
            Present
        );
        assert_eq!(presence(inputs([None, None, Some(51.0)])), Present);
        assert_eq!(presence(inputs([Some(0.0), Some(0.0), Some(0.0)])), Lost);
        assert_eq!(presence(inputs([Some(49.9), None, None])), Lost);
        assert_eq!(presence(inputs([Some(50.0), None, None])), Lost);
        assert_eq!(presence(inputs([None, None, None])), Unknown);
        assert_eq!(presence(inputs([Some(f64::NAN), None, None])), Unknown);
    }

    #[test]
    fn a_device_that_does_not_report_says_nothing_about_the_grid() {
        use GridPresence::*;
        let low = [Some(0.0), Some(0.0), Some(0.0)];
        let high = [Some(230.0), Some(0.0), Some(0.0)];
        let offline = |v| GridInputs {
            online: Some(false),
            ..inputs(v)
        };
        assert_eq!(presence(offline(low)), Unknown);
        assert_eq!(presence(offline(high)), Unknown);
        let unavailable = |v| GridInputs {
            heartbeat: Some(Stage::Unavailable),
            device: Some(Stage::Unavailable),
            ..inputs(v)
        };
        assert_eq!(presence(unavailable(high)), Unknown);
        assert_eq!(presence(unavailable(low)), Unknown);
        // The stream still flows but the heartbeat (the voltages) is late: a low reading
        // is not evidence of an outage, a high one still is the last word.
        let quiet = |v| GridInputs {
            heartbeat: Some(Stage::Stale),
            ..inputs(v)
        };
        assert_eq!(presence(quiet(low)), Unknown);
        assert_eq!(presence(quiet(high)), Present);
        // Never said online or offline (only polled): as long as it is not unavailable.
        let unsaid = GridInputs {
            online: None,
            ..inputs(low)
        };
        assert_eq!(presence(unsaid), Lost);
    }

    #[test]
    fn since_counts_from_the_change_of_presence() {
        let present = derive(&inputs([Some(230.0), None, None]));
        let first = present.after(&GridState::default(), Some(1_000));
        assert_eq!(first.since_ms, Some(1_000), "unknown → present");
        // The same presence (even said another way) keeps its since.
        let again = derive(&inputs([Some(231.0), None, None])).after(&first, Some(2_000));
        assert_eq!(again.since_ms, Some(1_000));
        assert!(again.same_reading(&first));
        let lost = derive(&inputs([Some(0.0), None, None])).after(&again, Some(3_000));
        assert_eq!(
            (lost.presence, lost.since_ms),
            (GridPresence::Lost, Some(3_000))
        );
        assert!(!lost.same_reading(&again));
    }

    #[test]
    fn names_and_derivations() {
        let names: Vec<_> = GridPresence::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["present", "lost", "unknown"]);
        for v in [[Some(230.0), None, None], [Some(0.0), None, None]] {
            let s = derive(&inputs(v));
            assert!(s.derivation.contains("§13"), "{s:?}");
            assert!(s.derivation.contains("low confidence on the Fit"), "{s:?}");
        }
        assert_eq!(
            serde_json::to_value(GridState::default()).expect("json")["presence"],
            "unknown"
        );
    }
}
