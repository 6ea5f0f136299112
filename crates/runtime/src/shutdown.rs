//! Clean shutdown: SIGINT (Ctrl-C), SIGTERM or a time limit cancels one
//! [`CancellationToken`] that every task watches.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT/SIGTERM (spawned on the current runtime).
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            name = wait_for_signal() => {
                tracing::info!("{name} received; shutting down");
                token.cancel();
            }
            _ = token.cancelled() => {}
        }
    });
}

/// Cancels `token` after `secs` seconds (spawned); `None`, zero or not finite: never.
pub fn cancel_after(token: CancellationToken, secs: Option<f64>) {
    if let Some(secs) = secs.filter(|s| s.is_finite() && *s > 0.0) {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs.min(1e9))).await;
            token.cancel();
        });
    }
}

/// Waits for the first SIGINT or SIGTERM; returns its name.
#[cfg(unix)]
pub async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Waits for Ctrl-C; returns its name.
#[cfg(not(unix))]
pub async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
