//! `/api/events`: live updates as server-sent events.
//!
//! Events: `hello` (on connect), `states` (`{device, t, states: [{key, value,
//! out_of_range}]}`), `status` (`{device, online, t}`), `stage` (`{device, channel, stage,
//! t}`; `channel` null for the device as a whole; `stage` fresh, stale or unavailable),
//! `settings` (`{device, settings: {work_mode, backup_reserve, …}}`, the 96/8 read-back of
//! protocol §10), `grid` (`{device, grid: {presence, derivation, since_ms}, t}` on every
//! change of grid presence, protocol §13), and
//! `resync` when this client fell behind and should re-read `/api/states`. The stream ends when the server shuts down.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use model::{StoreEvent, unix_ms};
use protocol::DeviceStatus;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;

fn to_sse(event: &StoreEvent) -> Event {
    match event {
        StoreEvent::States { device_sn, at, changes, source } => {
            let states: Vec<_> = changes
                .iter()
                .map(|c| json!({"key": c.state.key, "value": c.value, "out_of_range": c.out_of_range}))
                .collect();
            Event::default()
                .event("states")
                .data(json!({"device": &**device_sn, "t": unix_ms(*at), "source": source.as_str(), "states": states}).to_string())
        }
        StoreEvent::Status { device_sn, status, at } => Event::default().event("status").data(
            json!({"device": &**device_sn, "online": *status == DeviceStatus::Online, "t": unix_ms(*at)})
                .to_string(),
        ),
        StoreEvent::Stage {
            device_sn,
            channel,
            stage,
            at,
        } => Event::default().event("stage").data(
            json!({"device": &**device_sn, "channel": channel.map(|c| c.as_str()),
                   "stage": stage.as_str(), "t": unix_ms(*at)})
            .to_string(),
        ),
        StoreEvent::Settings {
            device_sn,
            settings,
        } => Event::default()
            .event("settings")
            .data(json!({"device": &**device_sn, "settings": settings}).to_string()),
        StoreEvent::Grid {
            device_sn,
            grid,
            at,
        } => Event::default().event("grid").data(
            json!({"device": &**device_sn, "grid": grid, "t": unix_ms(*at)}).to_string(),
        ),
    }
}

pub async fn events(
    State(app): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = app.store.subscribe();
    let hello = Event::default()
        .event("hello")
        .data(json!({"now_ms": unix_ms(SystemTime::now())}).to_string());
    let shutdown = app.shutdown.clone();
    let live = stream::unfold((receiver, shutdown), |(mut rx, shutdown)| async move {
        let event = tokio::select! {
            () = shutdown.cancelled() => return None,
            r = rx.recv() => match r {
                Ok(e) => to_sse(&e),
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            },
        };
        Some((Ok(event), (rx, shutdown)))
    });
    let all = futures_util::StreamExt::chain(stream::once(async { Ok(hello) }), live);
    Sse::new(all).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
