//! Exponential reconnect backoff with jitter ("equal jitter": half fixed, half random) that
//! starts again at the shortest delay only after a *stable* connection.
//!
//! Why not reset at every CONNACK: a connection that the broker accepts and that then
//! fails at once — a retained message the client cannot take, a broker that drops every
//! client after its SUBSCRIBE — would otherwise reconnect at the shortest delay forever
//! (measured: ~6 reconnects a second, each re-announcing everything to Home Assistant).
//! A connection counts as stable once it stayed up for [`STABLE_AFTER`]; a shorter one
//! is one more failure, so the delays keep doubling up to the longest.

use std::time::{Duration, Instant};

/// How long a connection must stay up before the next failure starts again at the
/// shortest delay. Longer than any keep-alive round trip and than what a broker takes to
/// deliver a new subscription's retained messages, short against a healthy connection's
/// life (hours); the same for the cloud, fleet and Home Assistant connections.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Delays `min, 2·min, 4·min … max`, each scaled by a random factor in [0.5, 1.0].
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    stable_after: Duration,
    /// When the current connection came up (`None` while not connected).
    connected_at: Option<Instant>,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            stable_after: STABLE_AFTER,
            connected_at: None,
        }
    }

    /// Another stability threshold than [`STABLE_AFTER`] (for tests of the callers).
    pub fn with_stable_after(mut self, stable_after: Duration) -> Self {
        self.stable_after = stable_after;
        self
    }

    /// The connection is up (CONNACK) now.
    pub fn connected(&mut self) {
        self.connected_at(Instant::now());
    }

    /// The connection came up at `at`. It does not reset the delays by itself: only a
    /// failure after [`STABLE_AFTER`] does (see the module doc).
    pub fn connected_at(&mut self, at: Instant) {
        self.connected_at = Some(at);
    }

    /// After a failed attempt or a lost connection: the delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_at(Instant::now())
    }

    /// [`Backoff::next_delay`] at `now`: first at `min` again when the connection that
    /// just ended had been up for the stability threshold, otherwise doubling.
    pub fn next_delay_at(&mut self, now: Instant) -> Duration {
        if let Some(at) = self.connected_at.take()
            && now.saturating_duration_since(at) >= self.stable_after
        {
            self.failures = 0;
        }
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

    /// Start again at `min` at once (a planned reconnect, e.g. renewed credentials, is
    /// no failure).
    pub fn reset(&mut self) {
        self.failures = 0;
        self.connected_at = None;
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

    /// The attack of a retained message the client cannot take: every connection is
    /// accepted and fails a moment later. The delays still double to the longest.
    #[test]
    fn connections_that_fail_at_once_do_not_reset_the_delay() {
        let (min, max) = (Duration::from_millis(200), Duration::from_secs(30));
        let mut b = Backoff::new(min, max);
        let mut now = Instant::now();
        let mut waited = Duration::ZERO;
        for _ in 0..20 {
            b.connected_at(now);
            now += Duration::from_millis(50);
            let d = b.next_delay_at(now);
            waited += d;
            now += d;
        }
        assert_eq!(b.ceiling(), max);
        // 20 short connections need at least half the un-jittered sum: minutes, not seconds.
        assert!(waited >= Duration::from_secs(120), "{waited:?}");
    }

    #[test]
    fn a_stable_connection_starts_again_at_the_shortest_delay() {
        let (min, max) = (Duration::from_millis(200), Duration::from_secs(30));
        let mut b = Backoff::new(min, max);
        let start = Instant::now();
        for _ in 0..6 {
            b.next_delay_at(start);
        }
        assert_eq!(b.ceiling(), min * 64);
        // Up for just under the threshold: still a failure, the delay doubles.
        b.connected_at(start);
        b.next_delay_at(start + STABLE_AFTER - Duration::from_millis(1));
        assert_eq!(b.ceiling(), min * 128);
        // Up for the threshold: the next failure waits the shortest delay.
        b.connected_at(start);
        let d = b.next_delay_at(start + STABLE_AFTER);
        assert!(d <= min, "{d:?}");
        assert_eq!(b.ceiling(), min * 2);
        // A failed attempt without a connection does not count as stable.
        b.next_delay_at(start + STABLE_AFTER * 10);
        assert_eq!(b.ceiling(), min * 4);
    }

    #[test]
    fn the_threshold_can_be_set() {
        let min = Duration::from_millis(10);
        let mut b =
            Backoff::new(min, Duration::from_secs(1)).with_stable_after(Duration::from_millis(100));
        let start = Instant::now();
        b.next_delay_at(start);
        b.connected_at(start);
        b.next_delay_at(start + Duration::from_millis(100));
        assert_eq!(b.ceiling(), min * 2);
    }
}
