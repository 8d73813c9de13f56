//! Simulated OTP fuses: 32-bit words whose bits only go from 0 to 1, in lock regions.
//!
//! A program takes one operation index on the power rail (so does a lock). A torn program sets
//! a seeded random subset of the new bits; a torn lock may or may not take.

use castellan_hal::{HalError, OtpFuses};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::power::{OpFate, PowerRail};

/// Size and lock granularity of a simulated fuse bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OtpConfig {
    /// Number of 32-bit fuse words.
    pub words: u32,
    /// Words per lock region (`words` is a multiple of it).
    pub region_words: u32,
}

impl Default for OtpConfig {
    /// 64 words (256 bytes) in regions of 8 words (32 bytes: one SHA-256 digest each).
    fn default() -> Self {
        OtpConfig {
            words: 64,
            region_words: 8,
        }
    }
}

impl OtpConfig {
    /// Checks that the simulator can model this bank.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.words == 0 || self.region_words == 0 || self.words % self.region_words != 0 {
            return Err(SimError::InvalidConfig(
                "OTP words must be a non-zero multiple of a non-zero region_words",
            ));
        }
        Ok(())
    }

    /// Number of lock regions.
    pub fn regions(&self) -> usize {
        self.words.checked_div(self.region_words).unwrap_or(0) as usize
    }
}

/// A simulated fuse bank.
#[derive(Debug)]
pub struct SimOtp {
    config: OtpConfig,
    words: Vec<u32>,
    locked: Vec<bool>,
    rail: PowerRail,
}

impl SimOtp {
    /// A blank bank (all bits 0, nothing locked) on a rail of its own.
    pub fn new(config: OtpConfig) -> Result<Self, SimError> {
        config.validate()?;
        Ok(SimOtp {
            config,
            words: vec![0; config.words as usize],
            locked: vec![false; config.regions()],
            rail: PowerRail::new(),
        })
    }

    /// A bank with these fuse words and these locked regions (e.g. loaded from files).
    pub fn from_parts(
        config: OtpConfig,
        words: Vec<u32>,
        locked_regions: &[usize],
    ) -> Result<Self, SimError> {
        let mut otp = SimOtp::new(config)?;
        if words.len() != otp.words.len() {
            return Err(SimError::InvalidConfig(
                "OTP image length differs from OTP size",
            ));
        }
        otp.words = words;
        for r in locked_regions {
            *otp.locked
                .get_mut(*r)
                .ok_or(SimError::InvalidConfig("locked OTP region out of range"))? = true;
        }
        Ok(otp)
    }

    /// The configuration.
    pub fn config(&self) -> OtpConfig {
        self.config
    }

    /// The power rail this bank is on.
    pub fn rail(&self) -> &PowerRail {
        &self.rail
    }

    pub(crate) fn set_rail(&mut self, rail: PowerRail) {
        self.rail = rail;
    }

    /// The raw fuse words, read without power (a debugger's view).
    pub fn contents(&self) -> &[u32] {
        &self.words
    }

    /// Indices of the locked regions.
    pub fn locked_regions(&self) -> Vec<usize> {
        let locked = self.locked.iter().enumerate().filter(|(_, l)| **l);
        locked.map(|(r, _)| r).collect()
    }

    pub(crate) fn state(&self) -> (Vec<u32>, Vec<bool>) {
        (self.words.clone(), self.locked.clone())
    }

    pub(crate) fn set_state(&mut self, words: &[u32], locked: &[bool]) -> Result<(), SimError> {
        if words.len() != self.words.len() || locked.len() != self.locked.len() {
            return Err(SimError::SnapshotMismatch);
        }
        self.words.copy_from_slice(words);
        self.locked.copy_from_slice(locked);
        Ok(())
    }

    fn region_of(&self, word: usize) -> usize {
        word / self.config.region_words as usize
    }
}

impl Clone for SimOtp {
    /// A deep copy on a rail of its own (same power state and plan).
    fn clone(&self) -> Self {
        SimOtp {
            config: self.config,
            words: self.words.clone(),
            locked: self.locked.clone(),
            rail: self.rail.fork(),
        }
    }
}

impl OtpFuses for SimOtp {
    fn words(&self) -> usize {
        self.words.len()
    }

    fn region_words(&self) -> usize {
        self.config.region_words as usize
    }

    fn read(&self, word: usize) -> Result<u32, HalError> {
        self.rail.check_on()?;
        self.words.get(word).copied().ok_or(HalError::OutOfBounds)
    }

    fn program(&mut self, word: usize, value: u32) -> Result<(), HalError> {
        self.rail.check_on()?;
        let current = *self.words.get(word).ok_or(HalError::OutOfBounds)?;
        if self.is_locked(self.region_of(word))? {
            return Err(HalError::Locked);
        }
        if current & !value != 0 {
            return Err(HalError::WouldClearBit);
        }
        let fate = self.rail.begin_op()?;
        let new = match &fate {
            OpFate::Complete | OpFate::CompleteThenCut => value,
            OpFate::Torn(rng) => {
                let mut rng = rng.clone();
                current | (value & rng.next_u64() as u32)
            }
        };
        if let Some(w) = self.words.get_mut(word) {
            *w = new;
        }
        match fate {
            OpFate::Complete => Ok(()),
            _ => Err(HalError::PowerLoss),
        }
    }

    fn lock(&mut self, region: usize) -> Result<(), HalError> {
        self.rail.check_on()?;
        if region >= self.locked.len() {
            return Err(HalError::OutOfBounds);
        }
        let fate = self.rail.begin_op()?;
        let takes = match &fate {
            OpFate::Complete | OpFate::CompleteThenCut => true,
            OpFate::Torn(rng) => rng.clone().next_u64() & 1 == 1,
        };
        if let Some(l) = self.locked.get_mut(region) {
            *l |= takes;
        }
        match fate {
            OpFate::Complete => Ok(()),
            _ => Err(HalError::PowerLoss),
        }
    }

    fn is_locked(&self, region: usize) -> Result<bool, HalError> {
        self.rail.check_on()?;
        self.locked
            .get(region)
            .copied()
            .ok_or(HalError::OutOfBounds)
    }
}
