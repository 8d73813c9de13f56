//! The login rate limit per client address: at most N attempts per window, whatever the account
//! (a password-spraying address is slowed across accounts; the per-account lockout is in the
//! store). Memory is bounded: when too many addresses are tracked, expired windows are dropped,
//! and if that is not enough, the oldest are.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many addresses are tracked at most.
const MAX_TRACKED: usize = 10_000;

/// Fixed-window attempt counters per address.
pub(crate) struct Limiter {
    per_window: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// `per_window` attempts per `window_secs` seconds.
    pub(crate) fn new(per_window: u32, window_secs: u64) -> Limiter {
        Limiter {
            per_window,
            window: Duration::from_secs(window_secs),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count an attempt from `addr`; false when it is over the limit.
    pub(crate) fn allow(&self, addr: IpAddr) -> bool {
        let now = Instant::now();
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&addr) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= MAX_TRACKED {
                let oldest = seen.iter().min_by_key(|(_, (s, _))| *s).map(|(a, _)| *a);
                if let Some(a) = oldest {
                    seen.remove(&a);
                }
            }
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.per_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_password_spraying_from_one_address_is_slowed() {
        let l = Limiter::new(3, 60);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert!(l.allow(a) && l.allow(a) && l.allow(a));
        assert!(!l.allow(a), "the fourth attempt in the window is refused");
        assert!(l.allow(b), "another address has its own budget");
    }
}
