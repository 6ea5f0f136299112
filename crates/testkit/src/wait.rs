//! Polling a condition until it holds or a deadline passes — what a test does instead of
//! sleeping "long enough". Deadlines are generous (machines running tests are loaded);
//! the poll interval is short, so a fast machine does not wait for nothing.

use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls the async `check` until it returns `Some`; `None` once `limit` has passed.
pub async fn wait_for_async<T>(
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `check` (from async code) until it returns `Some`; `None` once `limit` has passed.
pub async fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_async(limit, async || check()).await
}

/// Polls `check` until it holds; panics naming `what` once `limit` has passed.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    if wait_for(limit, || check().then_some(())).await.is_none() {
        panic!("timed out after {limit:?} waiting for: {what}");
    }
}

/// Polls `check` on this thread (no async runtime) until it returns `Some`; `None` once
/// `limit` has passed.
pub fn wait_for_blocking<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Polls `check` on this thread until it holds; panics naming `what` once `limit` has passed.
pub fn wait_until_blocking(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    if wait_for_blocking(limit, || check().then_some(())).is_none() {
        panic!("timed out after {limit:?} waiting for: {what}");
    }
}
