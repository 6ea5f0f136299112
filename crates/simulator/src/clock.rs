//! The simulated clock: simulated epoch seconds advance `speed` times faster than real time.

use tokio::time::Instant;

/// Maps real (monotonic) time to simulated epoch seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    start_epoch: f64,
    speed: f64,
    origin: Instant,
}

impl SimClock {
    pub(crate) fn new(start_epoch: f64, speed: f64) -> SimClock {
        SimClock {
            start_epoch,
            speed,
            origin: Instant::now(),
        }
    }

    /// Simulated time now, epoch seconds.
    pub(crate) fn now(&self) -> f64 {
        self.start_epoch + self.origin.elapsed().as_secs_f64() * self.speed
    }
}

/// Simulated epoch seconds at start: `start_time` if configured, else the real time.
pub(crate) fn start_epoch(start_time: Option<u64>) -> f64 {
    start_time.map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        },
        |t| t as f64,
    )
}
