//! Clean shutdown: SIGINT (Ctrl-C) or SIGTERM cancels one [`CancellationToken`].

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT/SIGTERM (spawned on the current runtime).
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let signal = wait_for_signal();
        tokio::select! {
            name = signal => {
                tracing::info!("{name} received; shutting down");
                token.cancel();
            }
            _ = token.cancelled() => {}
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
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

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
