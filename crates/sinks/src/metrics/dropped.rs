//! `oceanbridge_dropped{reason}`: everything the bridge gave up on, one counter per
//! reason. Every reason in [`REASONS`] is exported from the first scrape on, at 0 until
//! it happens: Prometheus's advice for labelled counters (a series that appears only
//! with the first drop hides that drop from `rate()` and `increase()`). A reason the
//! table lacks is still exported once it counts. `docs/metrics.md` lists the table; its
//! test keeps the two, and the reasons the code counts, in step.

use std::collections::BTreeMap;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Labels;

/// The family's HELP text.
pub const HELP: &str =
    "Messages, samples, connections or commands dropped, by reason (each reason: docs/metrics.md)";

/// Every reason the bridge counts, with what it means: (reason, meaning).
pub const REASONS: &[(&str, &str)] = &[
    // Sources and pipeline.
    (
        "queue_full",
        "a payload from the cloud or fleet broker the pipeline did not keep up with",
    ),
    ("bad_json", "an open-API message that is not JSON"),
    (
        "no_device_topic",
        "a payload on a topic that names no device (the topic names the device)",
    ),
    (
        "serial_mismatch",
        "a frame naming another device than the topic it came on",
    ),
    (
        "device_limit",
        "a report of one device more than `[store] max_devices`",
    ),
    (
        "placeholder",
        "a placeholder that is no reading (4294967295 %, a lifetime counter of 0; protocol §11), never published",
    ),
    (
        "counter_backwards",
        "an energy counter that stepped back (not a midnight reset): held, not published",
    ),
    // History and capture.
    (
        "history_queue_full",
        "samples the SQLite history writer's queue could not take",
    ),
    (
        "postgres_queue_full",
        "samples the PostgreSQL writer's queue could not take",
    ),
    (
        "postgres_write_failed",
        "samples PostgreSQL did not take after the retries",
    ),
    (
        "capture_queue_full",
        "raw-frame copies the capture's queue could not take (the payload itself is kept)",
    ),
    (
        "capture_write_failed",
        "raw-frame copies the capture could not write (a full disk)",
    ),
    // Home Assistant commands (with `[home_assistant] control`).
    (
        "ha_command_queue_full",
        "settings commands from the Home Assistant broker faster than they are handled",
    ),
    (
        "ha_command_busy",
        "settings commands beyond the ones being carried out at once",
    ),
    (
        "ha_command_invalid",
        "settings commands that are no value of their control",
    ),
    (
        "ha_command_retained",
        "retained settings commands (they would repeat at every reconnect)",
    ),
    (
        "ha_command_unknown_device",
        "settings commands for a device the bridge does not know",
    ),
    // The web server.
    (
        "web_accept_failed",
        "connections the server could not accept (out of file descriptors or memory)",
    ),
    (
        "web_connection_replaced",
        "idle connections closed to make room for a new one at the connection cap",
    ),
    (
        "web_connection_refused",
        "connections refused at the connection cap",
    ),
    (
        "web_host_refused",
        "requests whose Host is not this server's (DNS rebinding)",
    ),
    (
        "web_cross_origin_write",
        "writes a page of another origin tried",
    ),
    (
        "web_diagnostics_busy",
        "diagnostics downloads asked for while one was being built",
    ),
];

/// Registers `dropped{reason}`: every known reason (0 until it happens) plus `counted`.
pub(super) fn register(registry: &mut Registry, counted: &BTreeMap<&'static str, u64>) {
    let mut all: BTreeMap<&str, u64> = REASONS.iter().map(|(reason, _)| (*reason, 0)).collect();
    for (reason, n) in counted {
        *all.entry(reason).or_default() += n;
    }
    let family = Family::<Labels, Counter>::default();
    for (reason, n) in all {
        family
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc_by(n);
    }
    registry.register("dropped", HELP, family);
}

#[cfg(test)]
#[path = "dropped_tests.rs"]
mod tests;
