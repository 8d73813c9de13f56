//! Monotonic counters (anti-rollback, lifecycle): values that only go up, and [`OtpCounter`],
//! the usual way parts build them from fuses, as a thermometer code.
//!
//! ```text
//!  counter 0 = words 16..18 (64 bits)   value 5 = bits 0..5 set
//!  word 16: 0000 0000 0000 0000 0000 0000 0001 1111    word 17: 0
//! ```
//!
//! The value is the position of the highest set bit plus one, so setting any bit (which is all a
//! fuse can do, even torn by a power cut) can never lower it; an increment programs every bit
//! below the new value, filling holes a torn program may have left.

use crate::{HalError, OtpFuses, otp::OTP_WORD_BITS};

/// A set of counters that never decrease.
pub trait MonotonicCounter {
    /// Number of counters (ids `0..counters()`).
    fn counters(&self) -> usize;

    /// Largest value a counter can hold.
    fn max_value(&self) -> u32;

    /// Current value of counter `id`.
    fn read(&self, id: usize) -> Result<u32, HalError>;

    /// Raises counter `id` to `value`. A lower value is refused with [`HalError::Rollback`]; the
    /// same value succeeds without programming anything; a value above [`Self::max_value`] fails
    /// with [`HalError::CounterExhausted`].
    fn increment_to(&mut self, id: usize, value: u32) -> Result<(), HalError>;

    /// Adds one to counter `id` and returns the new value.
    fn increment(&mut self, id: usize) -> Result<u32, HalError> {
        let next = self
            .read(id)?
            .checked_add(1)
            .ok_or(HalError::CounterExhausted)?;
        self.increment_to(id, next)?;
        Ok(next)
    }
}

impl<C: MonotonicCounter + ?Sized> MonotonicCounter for &mut C {
    fn counters(&self) -> usize {
        C::counters(self)
    }
    fn max_value(&self) -> u32 {
        C::max_value(self)
    }
    fn read(&self, id: usize) -> Result<u32, HalError> {
        C::read(self, id)
    }
    fn increment_to(&mut self, id: usize, value: u32) -> Result<(), HalError> {
        C::increment_to(self, id, value)
    }
}

/// Monotonic counters stored in OTP fuses as thermometer codes.
///
/// Counter `id` uses words `first_word + id * words_per_counter ..` (`words_per_counter` words,
/// so its largest value is `32 * words_per_counter`). Those words must be in an unlocked region.
#[derive(Debug)]
pub struct OtpCounter<O> {
    otp: O,
    first_word: usize,
    words_per_counter: usize,
    counters: usize,
}

impl<O: OtpFuses> OtpCounter<O> {
    /// Counters `0..counters` of `words_per_counter` words each, from fuse word `first_word` on.
    /// Fails with [`HalError::OutOfBounds`] if they do not fit in `otp`, and with
    /// [`HalError::CounterExhausted`] if `words_per_counter` is 0 or the value would not fit in
    /// a `u32`.
    pub fn new(
        otp: O,
        first_word: usize,
        words_per_counter: usize,
        counters: usize,
    ) -> Result<Self, HalError> {
        let bits = words_per_counter
            .checked_mul(OTP_WORD_BITS)
            .ok_or(HalError::CounterExhausted)?;
        if words_per_counter == 0 || u32::try_from(bits).is_err() {
            return Err(HalError::CounterExhausted);
        }
        let end = words_per_counter
            .checked_mul(counters)
            .and_then(|w| w.checked_add(first_word))
            .ok_or(HalError::OutOfBounds)?;
        if end > otp.words() {
            return Err(HalError::OutOfBounds);
        }
        Ok(OtpCounter {
            otp,
            first_word,
            words_per_counter,
            counters,
        })
    }

    /// The fuses underneath.
    pub fn inner(&self) -> &O {
        &self.otp
    }

    /// The fuses underneath, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.otp
    }

    /// Gives the fuses back.
    pub fn into_inner(self) -> O {
        self.otp
    }

    fn first_word_of(&self, id: usize) -> Result<usize, HalError> {
        if id >= self.counters {
            return Err(HalError::OutOfBounds);
        }
        // Cannot overflow: checked in `new`.
        Ok(self.first_word + id * self.words_per_counter)
    }
}

impl<O: OtpFuses> MonotonicCounter for OtpCounter<O> {
    fn counters(&self) -> usize {
        self.counters
    }

    fn max_value(&self) -> u32 {
        // Fits: checked in `new`.
        (self.words_per_counter * OTP_WORD_BITS) as u32
    }

    fn read(&self, id: usize) -> Result<u32, HalError> {
        let first = self.first_word_of(id)?;
        let mut value = 0u32;
        for k in 0..self.words_per_counter {
            let word = self.otp.read(first + k)?;
            if word != 0 {
                let top = OTP_WORD_BITS as u32 - word.leading_zeros();
                value = (k * OTP_WORD_BITS) as u32 + top;
            }
        }
        Ok(value)
    }

    fn increment_to(&mut self, id: usize, value: u32) -> Result<(), HalError> {
        let first = self.first_word_of(id)?;
        if value > self.max_value() {
            return Err(HalError::CounterExhausted);
        }
        let current = self.read(id)?;
        if value < current {
            return Err(HalError::Rollback);
        }
        if value == current {
            return Ok(());
        }
        // Lowest word first: a cut in between leaves a value between old and new.
        for k in 0..self.words_per_counter {
            let below = (value as usize).saturating_sub(k * OTP_WORD_BITS);
            let mask = match below {
                0 => break,
                n if n >= OTP_WORD_BITS => u32::MAX,
                n => (1u32 << n) - 1,
            };
            let word = self.otp.read(first + k)?;
            if word | mask != word {
                self.otp.program(first + k, word | mask)?;
            }
        }
        Ok(())
    }
}
