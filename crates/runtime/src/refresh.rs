//! Stale → ask the source for fresh data (protocol §8): when a channel of a device goes
//! stale, the source re-sends the energy stream switch and a get-all to that device at
//! once; when the whole device goes stale (every channel silent while we are connected),
//! the source also reconnects. The source spaces nudges and honours a reconnect only on
//! a connection old enough, so bursts of stage events cannot become a loop.

use std::sync::Arc;

use model::{Stage, StoreEvent};
use sources::SourceHandle;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Follows the store's stage events until `shutdown` (or the store is gone).
pub async fn run(
    mut events: broadcast::Receiver<Arc<StoreEvent>>,
    handle: SourceHandle,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = shutdown.cancelled() => break,
        };
        match event {
            Ok(event) => on_event(&event, &handle),
            // Missed events are stage changes we cannot replay; the next ones still come.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "stale follower lagged behind the store events");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

fn on_event(event: &StoreEvent, handle: &SourceHandle) {
    let StoreEvent::Stage {
        device_sn,
        channel,
        stage: Stage::Stale,
        ..
    } = event
    else {
        return;
    };
    handle.nudge(device_sn);
    if channel.is_none() {
        tracing::info!(
            sn = %device_sn,
            "device silent on every channel; re-sending the stream switch and reconnecting"
        );
        handle.reconnect();
    }
}
