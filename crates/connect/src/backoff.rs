//! Exponential reconnect backoff with jitter ("equal jitter": half fixed, half random).

use std::time::Duration;

/// Delays `min, 2·min, 4·min … max`, each scaled by a random factor in [0.5, 1.0].
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt; each call without [`Backoff::reset`] doubles it.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let factor = 0.5 + rand::random_range(0.0..0.5);
        ceiling.mul_f64(factor)
    }

    /// The un-jittered delay the next call is based on.
    pub fn ceiling(&self) -> Duration {
        let exp = self.failures.min(30);
        self.min
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// After a good connection: start again at `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let mut b = Backoff::new(min, max);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            ceilings.push(b.ceiling());
            let d = b.next_delay();
            let c = *ceilings.last().unwrap();
            assert!(d >= c / 2 && d <= c, "{d:?} outside [{:?}, {c:?}]", c / 2);
        }
        assert_eq!(ceilings[0], min);
        assert_eq!(ceilings[1], min * 2);
        assert_eq!(ceilings[3], min * 8);
        assert_eq!(ceilings[7], max);
        b.reset();
        assert_eq!(b.ceiling(), min);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), max);
    }
}
