//! The local path (protocol §14): the device's Modbus TCP source run beside the cloud's,
//! its readings applied to the store the way a pushed stream frame is (they are live
//! readings of the same device, so they keep its core flows and its stream channel
//! fresh), and its status — "not enabled" in one line among them — kept in
//! [`model::BridgeStats`] for `/api/devices`. docs/modbus.md.
//!
//! Which path's value is shown when both report a state is the store's path rule
//! (`[modbus] prefer`, `failover_after`; docs/modbus.md, "Two paths, one truth").
//! Only the catalog states a reading carries (load, grid, solar, battery power, SoC) go
//! to the store; its lifetime counters stay extras, never mixed with the cloud's (§14:
//! they differ by a large offset).

use model::BridgeStats;
use sources::modbus::{ModbusConfig, ModbusError, ModbusReading, ModbusSource, ModbusStatus};
use store::StateStore;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Readings waiting for the store; one poll every `interval`, so a few are plenty (a
/// full queue drops the reading, the next poll brings fresher values).
const QUEUE: usize = 8;

/// Starts the Modbus source of `config` on `tasks`: the connection loop, the task that
/// applies its readings to `store`, and the one that reports its status into `stats`.
pub fn spawn(
    config: ModbusConfig,
    store: StateStore,
    stats: BridgeStats,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), ModbusError> {
    store.set_path_rules(model::PathRules {
        prefer_modbus: config.prefer == sources::modbus::Prefer::Modbus,
        stale_after: config.failover_after,
    });
    let (tx, rx) = mpsc::channel(QUEUE);
    let source = ModbusSource::new(config, tx)?;
    let status = source.status();
    let first = status.borrow().clone();
    stats.modbus_status(first.kind(), first.to_string());
    tasks.spawn(report(status, stats.clone()));
    tasks.spawn(apply(rx, store, stats));
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = source.run(shutdown).await {
            tracing::error!("Modbus TCP source stopped: {e}");
        }
    });
    Ok(())
}

/// Each reading to the store, as live as a push: it is the device's own value (§14).
async fn apply(mut rx: mpsc::Receiver<ModbusReading>, store: StateStore, stats: BridgeStats) {
    while let Some(reading) = rx.recv().await {
        let held = store.apply_modbus(&reading.decoded, reading.received_at);
        stats.add_dropped("placeholder", held.placeholder);
        stats.add_dropped("counter_backwards", held.counter_backwards);
        stats.add_dropped("device_limit", held.device_limit);
        stats.modbus_reading();
    }
}

/// Every status change into the stats; the source itself logs it (once per change).
async fn report(mut status: watch::Receiver<ModbusStatus>, stats: BridgeStats) {
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        stats.modbus_status(now.kind(), now.to_string());
    }
}
