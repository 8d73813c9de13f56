//! A staged run-time compromise of the device's application, for tests, benchmarks and demos:
//! the same signed and attested image, misbehaving at run time as malware that got in through a
//! vulnerability would. The boot chain sees nothing; the fleet's analysis must.
//!
//! ```text
//!  Healthy      telemetry every interval
//!  ProbeTopics  … and at each telemetry, subscriptions to 10 other devices' topics (refused)
//!  Exfiltrate   … and at each telemetry, 50 more messages (a device sending what it should not)
//! ```

use std::sync::atomic::{AtomicU8, Ordering};

/// What the application does besides its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Behaviour {
    /// Only its job.
    Healthy = 0,
    /// Reaches for other devices' topics.
    ProbeTopics = 1,
    /// Sends far more than its peers.
    Exfiltrate = 2,
}

/// The switch a test or benchmark flips while the agent runs.
#[derive(Debug, Default)]
pub struct Compromise(AtomicU8);

impl Compromise {
    /// Start misbehaving as `b` (or stop, with [`Behaviour::Healthy`]).
    pub fn set(&self, b: Behaviour) {
        self.0.store(b as u8, Ordering::SeqCst);
    }

    /// The current behaviour.
    pub fn get(&self) -> Behaviour {
        match self.0.load(Ordering::SeqCst) {
            1 => Behaviour::ProbeTopics,
            2 => Behaviour::Exfiltrate,
            _ => Behaviour::Healthy,
        }
    }
}

/// Subscriptions a probing device attempts at each telemetry.
pub(crate) const PROBES: usize = 10;
/// Extra messages an exfiltrating device sends at each telemetry.
pub(crate) const EXFILTRATED: usize = 50;
