//! The hardware the secure partition owns ([`Platform`]: flash, monotonic counters, random
//! source) and [`OtpCounterMap`], monotonic counters of different widths carved out of one fuse
//! bank (the lifecycle word and the storage replay counter), as the HAL's `OtpCounter` codes them.
//!
//! ```text
//!  SecureServices ── Platform { flash: F, counter: C, rng: R }
//!                                 │
//!                  C = OtpCounterMap<O>:  id 0 → lifecycle        (OTP word 16, thermometer, as castellan-boot)
//!                                         id 1 → storage intent   (OTP words 32..48: values 0..=512)
//!                                         id 2 → storage commit   (OTP words 48..64: values 0..=512)
//!                  (on a part with RPMB-like counters, C routes ids 1 and 2 there instead)
//! ```

use castellan_hal::{HalError, MonotonicCounter, OTP_WORD_BITS, OtpCounter, OtpFuses};

/// The hardware parts the secure services use. Fields are public so that the owner can lend
/// them out (for example to a bootloader-owned flash driver) between calls.
#[derive(Debug)]
pub struct Platform<F, C, R> {
    /// The NOR flash that holds trusted storage, the storage key area and the update slots.
    pub flash: F,
    /// Monotonic counters: the lifecycle and the storage replay counter (ids in the config).
    pub counter: C,
    /// The random source (key generation, nonces, boot seed).
    pub rng: R,
}

impl<F, C, R> Platform<F, C, R> {
    /// Bundles the parts.
    pub const fn new(flash: F, counter: C, rng: R) -> Self {
        Platform {
            flash,
            counter,
            rng,
        }
    }
}

/// Counter id of the PSA lifecycle in [`OtpCounterMap::castellan`].
pub const LIFECYCLE_COUNTER: usize = 0;
/// Counter id of the trusted-storage intent counter in [`OtpCounterMap::castellan`] (raised
/// before a protected write, see [`crate::its`]).
pub const STORAGE_INTENT_COUNTER: usize = 1;
/// Counter id of the trusted-storage commit counter in [`OtpCounterMap::castellan`] (raised
/// after a protected write).
pub const STORAGE_COMMIT_COUNTER: usize = 2;
/// OTP word of the lifecycle thermometer (the word `castellan-boot`'s OTP map uses).
pub const LIFECYCLE_WORD: usize = 16;
/// First OTP word of the storage counters in [`OtpCounterMap::castellan`] (intent first, then
/// commit).
pub const STORAGE_COUNTER_WORD: usize = 32;
/// Words of each storage counter in [`OtpCounterMap::castellan`] (16 words: 512 values).
pub const STORAGE_COUNTER_WORDS: usize = 16;

/// Most counters an [`OtpCounterMap`] holds.
pub const MAX_MAPPED_COUNTERS: usize = 4;

/// Monotonic counters of different widths in one fuse bank, each a thermometer code exactly as
/// [`castellan_hal::OtpCounter`] writes it (it does the programming).
///
/// A fuse counter wears out: every protected trusted-storage write takes one value of each
/// storage counter, so production parts put the storage counters in RPMB-like authenticated
/// counters with a 32-bit range and keep fuses for the lifecycle; the services only need
/// [`MonotonicCounter`].
#[derive(Debug)]
pub struct OtpCounterMap<O> {
    otp: O,
    ranges: [(usize, usize); MAX_MAPPED_COUNTERS],
    count: usize,
}

impl<O: OtpFuses> OtpCounterMap<O> {
    /// Counters `0..ranges.len()`, counter `i` in words `ranges[i].0 .. ranges[i].0 + ranges[i].1`.
    /// Fails with [`HalError::OutOfBounds`] when a range leaves the bank or there are more than
    /// [`MAX_MAPPED_COUNTERS`], and [`HalError::CounterExhausted`] for an empty range.
    pub fn new(otp: O, ranges: &[(usize, usize)]) -> Result<Self, HalError> {
        if ranges.len() > MAX_MAPPED_COUNTERS {
            return Err(HalError::OutOfBounds);
        }
        let mut table = [(0usize, 0usize); MAX_MAPPED_COUNTERS];
        for (slot, &(first, words)) in table.iter_mut().zip(ranges) {
            if words == 0 || words.saturating_mul(OTP_WORD_BITS) > u32::MAX as usize {
                return Err(HalError::CounterExhausted);
            }
            let end = first.checked_add(words).ok_or(HalError::OutOfBounds)?;
            if end > otp.words() {
                return Err(HalError::OutOfBounds);
            }
            *slot = (first, words);
        }
        Ok(OtpCounterMap {
            otp,
            ranges: table,
            count: ranges.len(),
        })
    }

    /// Castellan's map: [`LIFECYCLE_COUNTER`] at [`LIFECYCLE_WORD`] (1 word), then
    /// [`STORAGE_INTENT_COUNTER`] and [`STORAGE_COMMIT_COUNTER`] of [`STORAGE_COUNTER_WORDS`]
    /// words each from [`STORAGE_COUNTER_WORD`] on.
    pub fn castellan(otp: O) -> Result<Self, HalError> {
        Self::new(
            otp,
            &[
                (LIFECYCLE_WORD, 1),
                (STORAGE_COUNTER_WORD, STORAGE_COUNTER_WORDS),
                (
                    STORAGE_COUNTER_WORD + STORAGE_COUNTER_WORDS,
                    STORAGE_COUNTER_WORDS,
                ),
            ],
        )
    }

    /// The fuses underneath.
    pub fn inner(&self) -> &O {
        &self.otp
    }

    /// The fuses underneath, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.otp
    }

    fn range(&self, id: usize) -> Result<(usize, usize), HalError> {
        if id >= self.count {
            return Err(HalError::OutOfBounds);
        }
        self.ranges.get(id).copied().ok_or(HalError::OutOfBounds)
    }
}

impl<O: OtpFuses> MonotonicCounter for OtpCounterMap<O> {
    fn counters(&self) -> usize {
        self.count
    }

    /// The widest counter's limit (the storage counter's in [`OtpCounterMap::castellan`]);
    /// each counter's own limit is enforced by [`MonotonicCounter::increment_to`].
    fn max_value(&self) -> u32 {
        let widest = self.ranges.iter().take(self.count).map(|r| r.1).max();
        (widest.unwrap_or(0) * OTP_WORD_BITS) as u32
    }

    fn read(&self, id: usize) -> Result<u32, HalError> {
        let (first, words) = self.range(id)?;
        let mut value = 0u32;
        for k in 0..words {
            let word = self.otp.read(first + k)?;
            if word != 0 {
                let top = OTP_WORD_BITS as u32 - word.leading_zeros();
                value = (k * OTP_WORD_BITS) as u32 + top;
            }
        }
        Ok(value)
    }

    fn increment_to(&mut self, id: usize, value: u32) -> Result<(), HalError> {
        let (first, words) = self.range(id)?;
        OtpCounter::new(&mut self.otp, first, words, 1)?.increment_to(0, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan_sim::{OtpConfig, SimOtp};

    #[test]
    fn counters_are_independent_thermometers() {
        let otp = SimOtp::new(OtpConfig::default()).unwrap();
        let mut map = OtpCounterMap::castellan(otp).unwrap();
        assert_eq!(map.read(LIFECYCLE_COUNTER), Ok(0));
        map.increment_to(LIFECYCLE_COUNTER, 2).unwrap();
        map.increment_to(STORAGE_INTENT_COUNTER, 40).unwrap();
        assert_eq!(map.read(LIFECYCLE_COUNTER), Ok(2));
        assert_eq!(map.read(STORAGE_INTENT_COUNTER), Ok(40));
        assert_eq!(map.read(STORAGE_COMMIT_COUNTER), Ok(0));
        map.increment_to(STORAGE_COMMIT_COUNTER, 512).unwrap();
        assert_eq!(
            map.increment_to(STORAGE_COMMIT_COUNTER, 513),
            Err(HalError::CounterExhausted)
        );
        assert_eq!(map.inner().contents()[LIFECYCLE_WORD], 0b11);
        assert_eq!(
            map.increment_to(LIFECYCLE_COUNTER, 1),
            Err(HalError::Rollback)
        );
        assert_eq!(
            map.increment_to(LIFECYCLE_COUNTER, 33),
            Err(HalError::CounterExhausted)
        );
        assert_eq!(map.read(3), Err(HalError::OutOfBounds));
    }

    #[test]
    fn ranges_outside_the_bank_are_refused() {
        let otp = SimOtp::new(OtpConfig::default()).unwrap();
        assert_eq!(
            OtpCounterMap::new(otp, &[(60, 8)]).err(),
            Some(HalError::OutOfBounds)
        );
    }
}
