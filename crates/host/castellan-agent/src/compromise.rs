//! A staged run-time compromise of the device's application, for tests, benchmarks and demos:
//! the same signed and attested image, misbehaving at run time as malware that got in through a
//! vulnerability would. The boot chain sees nothing; the fleet's analysis must.
//!
//! ```text
//!  Healthy      telemetry every interval
//!  ProbeTopics  … and at each telemetry, subscriptions to 10 other devices' topics (refused)
//!  Exfiltrate   … and at each telemetry, 50 more messages (a device sending what it should not)
//! ```
//!
//! Two marks change what ends it: a compromise that lives in RAM ends at any reboot (the
//! signed reboot-and-reattest's point); one flashed as an image ([`Compromise::flash`], a
//! validly signed but unexpected build) survives reboots and ends only when an update replaces
//! the image. An application that refuses updates ([`Compromise::refuse_updates`]) answers every
//! offer with a failure: healing by update cannot reach it, decommissioning must.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

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
pub struct Compromise {
    behaviour: AtomicU8,
    flashed: AtomicBool,
    refuses_updates: AtomicBool,
}

impl Compromise {
    /// Start misbehaving as `b` (or stop, with [`Behaviour::Healthy`]).
    pub fn set(&self, b: Behaviour) {
        self.behaviour.store(b as u8, Ordering::SeqCst);
    }

    /// The misbehaviour is in the flashed image, not in RAM: it survives reboots and ends when
    /// an update replaces the image.
    pub fn flash(&self, flashed: bool) {
        self.flashed.store(flashed, Ordering::SeqCst);
    }

    /// Whether the misbehaviour is in the flashed image.
    pub fn is_flashed(&self) -> bool {
        self.flashed.load(Ordering::SeqCst)
    }

    /// The application answers every update offer with a failure.
    pub fn refuse_updates(&self, refuse: bool) {
        self.refuses_updates.store(refuse, Ordering::SeqCst);
    }

    /// Whether the application refuses updates.
    pub fn refuses_updates(&self) -> bool {
        self.refuses_updates.load(Ordering::SeqCst)
    }

    /// The device rebooted: what ran in RAM is gone; a flashed compromise stays.
    pub(crate) fn rebooted(&self) {
        if !self.is_flashed() {
            self.set(Behaviour::Healthy);
        }
    }

    /// An update replaced the image: whatever misbehaved is gone.
    pub(crate) fn replaced(&self) {
        self.set(Behaviour::Healthy);
        self.flash(false);
        self.refuse_updates(false);
    }

    /// The current behaviour.
    pub fn get(&self) -> Behaviour {
        match self.behaviour.load(Ordering::SeqCst) {
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
