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
