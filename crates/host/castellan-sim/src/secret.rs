//! Simulated random source and hardware unique secret.

use castellan_hal::{HalError, HardwareUniqueSecret, RandomSource, UDS_LEN};

use crate::power::PowerRail;
use crate::prng::SplitMix64;

#[derive(Debug, Clone)]
enum RngKind {
    Seeded(SplitMix64),
    Os,
}

/// A random source: seeded and deterministic (tests, harness) or the operating system's (CLI).
///
/// The seeded kind is SplitMix64: reproducible, not secure. Simulated devices are test devices.
#[derive(Debug)]
pub struct SimRng {
    kind: RngKind,
    rail: PowerRail,
}

impl SimRng {
    /// A deterministic generator: the same seed gives the same bytes.
    pub fn seeded(seed: u64) -> Self {
        SimRng {
            kind: RngKind::Seeded(SplitMix64::new(seed)),
            rail: PowerRail::new(),
        }
    }

    /// Bytes from the operating system's generator.
    pub fn from_os() -> Self {
        SimRng {
            kind: RngKind::Os,
            rail: PowerRail::new(),
        }
    }

    /// The generator's state when seeded (saving it resumes the same stream), `None` for OS.
    pub fn seeded_state(&self) -> Option<u64> {
        match &self.kind {
            RngKind::Seeded(g) => Some(g.state()),
            RngKind::Os => None,
        }
    }

    pub(crate) fn restore_state(&mut self, state: Option<u64>) {
        self.kind = match state {
            Some(s) => RngKind::Seeded(SplitMix64::new(s)),
            None => RngKind::Os,
        };
    }

    pub(crate) fn set_rail(&mut self, rail: PowerRail) {
        self.rail = rail;
    }
}

impl Clone for SimRng {
    /// A copy at the same position of the stream, on a rail of its own.
    fn clone(&self) -> Self {
        SimRng {
            kind: self.kind.clone(),
            rail: self.rail.fork(),
        }
    }
}

impl RandomSource for SimRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), HalError> {
        self.rail.check_on()?;
        match &mut self.kind {
            RngKind::Seeded(g) => {
                g.fill(buf);
                Ok(())
            }
            RngKind::Os => getrandom::fill(buf).map_err(|_| HalError::RngFailure),
        }
    }
}

/// The simulated hardware unique secret: readable until locked, locked until reset.
#[derive(Debug)]
pub struct SimUds {
    secret: [u8; UDS_LEN],
    locked: bool,
    rail: PowerRail,
}

impl SimUds {
    /// An unlocked secret.
    pub fn new(secret: [u8; UDS_LEN]) -> Self {
        SimUds {
            secret,
            locked: false,
            rail: PowerRail::new(),
        }
    }

    /// Unlocks, as a reset does (`SimDevice::power_cycle` calls it).
    pub fn reset(&mut self) {
        self.locked = false;
    }

    /// The secret regardless of the lock: the test oracle (e.g. to check a derived CDI) and what
    /// device.json stores. Device code must use [`HardwareUniqueSecret::read`].
    pub fn secret_for_tests(&self) -> [u8; UDS_LEN] {
        self.secret
    }

    pub(crate) fn set_rail(&mut self, rail: PowerRail) {
        self.rail = rail;
    }
}

impl Clone for SimUds {
    /// A copy (same secret and lock state) on a rail of its own.
    fn clone(&self) -> Self {
        SimUds {
            secret: self.secret,
            locked: self.locked,
            rail: self.rail.fork(),
        }
    }
}

impl HardwareUniqueSecret for SimUds {
    fn read(&self, out: &mut [u8; UDS_LEN]) -> Result<(), HalError> {
        self.rail.check_on()?;
        if self.locked {
            return Err(HalError::UdsLocked);
        }
        *out = self.secret;
        Ok(())
    }

    fn lock(&mut self) {
        self.locked = true;
    }

    fn is_locked(&self) -> bool {
        self.locked
    }
}
