//! Reconnection delays: exponential backoff with jitter (fleet protocol: 1 s doubling to 60 s),
//! so that a fleet that lost its server does not come back in one synchronized wave.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is drawn uniformly from
/// `[d/2, d]` where `d` doubles from `initial` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    attempts: u32,
}

impl Backoff {
    /// The protocol's schedule: 1 s doubling to 60 s.
    pub fn protocol_default() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// A schedule from `initial` doubling to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
            attempts: 0,
        }
    }

    /// The next delay to wait before retrying (and doubles the ceiling).
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        let span = (ceiling - half).as_millis() as u64;
        half + Duration::from_millis(random_below(span + 1))
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Back to the initial delay (after a successful connection).
    pub fn reset(&mut self) {
        self.current = self.initial;
        self.attempts = 0;
    }
}

/// A random number in `0..n` (n > 0) from the OS; 0 if the OS has none.
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() || n == 0 {
        return 0;
    }
    u64::from_le_bytes(b) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_and_reset() {
        let mut b = Backoff::protocol_default();
        let mut ceilings = vec![];
        for _ in 0..10 {
            let before = b.current;
            let d = b.next_delay();
            assert!(
                d >= before / 2 && d <= before,
                "{d:?} outside [{:?}, {before:?}]",
                before / 2
            );
            ceilings.push(before.as_secs());
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(b.attempts(), 10);
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_a_fleet() {
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|_| Backoff::new(Duration::from_secs(8), Duration::from_secs(60)).next_delay())
            .collect();
        assert!(delays.len() > 5, "delays are not spread: {delays:?}");
    }
}
