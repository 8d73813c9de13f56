//! One-time-programmable fuses: 32-bit words whose bits can be set (blown) and never cleared,
//! grouped in lock regions that can be frozen for good.
//!
//! The boot crate owns the actual OTP map. The intended shape, one concern per lock region so that
//! provisioning can freeze what must never change and leave the rest programmable:
//!
//! ```text
//!  region  words   content                                    locked after
//!  0       0..8    SHA-256 of the root public key (32 bytes)  provisioning
//!  1       8..16   lifecycle state (thermometer bits), flags  never (bits only go forward)
//!  2..     16..    anti-rollback counters, thermometer-coded  never (see `OtpCounter`)
//! ```
//!
//! Byte helpers are little-endian: byte `i` of a run starting at word `w` is bits
//! `8*(i%4)..8*(i%4)+8` of word `w + i/4`.

use crate::HalError;

/// Bits in one fuse word.
pub const OTP_WORD_BITS: usize = 32;

/// A bank of one-way fuse words.
///
/// Programming only sets bits; a program that would clear a set bit is refused with
/// [`HalError::WouldClearBit`] and changes nothing. Words are grouped in lock regions of
/// `region_words()` words; after [`OtpFuses::lock`] every program in that region fails with
/// [`HalError::Locked`]. Reads are always allowed (a secret belongs in
/// [`crate::HardwareUniqueSecret`], not here).
pub trait OtpFuses {
    /// Number of 32-bit fuse words.
    fn words(&self) -> usize;

    /// Words per lock region (region `r` is words `r*region_words()..(r+1)*region_words()`).
    fn region_words(&self) -> usize;

    /// Reads fuse word `word`.
    fn read(&self, word: usize) -> Result<u32, HalError>;

    /// Programs fuse word `word` to `value`. Every bit already set must be set in `value`
    /// ([`HalError::WouldClearBit`] otherwise); the region must not be locked.
    fn program(&mut self, word: usize, value: u32) -> Result<(), HalError>;

    /// Locks region `region` for good: further programs there fail with [`HalError::Locked`].
    /// Locking a locked region succeeds.
    fn lock(&mut self, region: usize) -> Result<(), HalError>;

    /// True when region `region` is locked.
    fn is_locked(&self, region: usize) -> Result<bool, HalError>;

    /// Number of lock regions.
    fn regions(&self) -> usize {
        self.words().checked_div(self.region_words()).unwrap_or(0)
    }

    /// Reads fuse bit `bit` (bit `b` is bit `b % 32` of word `b / 32`).
    fn read_bit(&self, bit: usize) -> Result<bool, HalError> {
        let word = self.read(bit / OTP_WORD_BITS)?;
        Ok(word & (1 << (bit % OTP_WORD_BITS)) != 0)
    }

    /// Sets the bits of `mask` in word `word`, keeping the bits already set.
    fn set_bits(&mut self, word: usize, mask: u32) -> Result<(), HalError> {
        let current = self.read(word)?;
        self.program(word, current | mask)
    }

    /// Reads `out.len()` bytes (little-endian, see the module doc) starting at word `first_word`.
    fn read_bytes(&self, first_word: usize, out: &mut [u8]) -> Result<(), HalError> {
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            let word = first_word.checked_add(i).ok_or(HalError::OutOfBounds)?;
            let bytes = self.read(word)?.to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes.iter()) {
                *dst = *src;
            }
        }
        Ok(())
    }

    /// Programs `data` (length a multiple of 4, little-endian) from word `first_word` on.
    /// Words are checked first: if any would clear a bit or is locked, nothing is programmed.
    fn program_bytes(&mut self, first_word: usize, data: &[u8]) -> Result<(), HalError> {
        if data.len() % 4 != 0 {
            return Err(HalError::NotAligned);
        }
        let region_words = self.region_words().max(1);
        for (i, chunk) in data.chunks_exact(4).enumerate() {
            let word = first_word.checked_add(i).ok_or(HalError::OutOfBounds)?;
            let value = le_word(chunk)?;
            let current = self.read(word)?;
            if current & !value != 0 {
                return Err(HalError::WouldClearBit);
            }
            if self.is_locked(word / region_words)? {
                return Err(HalError::Locked);
            }
        }
        for (i, chunk) in data.chunks_exact(4).enumerate() {
            let word = first_word.checked_add(i).ok_or(HalError::OutOfBounds)?;
            self.program(word, le_word(chunk)?)?;
        }
        Ok(())
    }
}

fn le_word(chunk: &[u8]) -> Result<u32, HalError> {
    let bytes = <[u8; 4]>::try_from(chunk).map_err(|_| HalError::NotAligned)?;
    Ok(u32::from_le_bytes(bytes))
}

impl<O: OtpFuses + ?Sized> OtpFuses for &mut O {
    fn words(&self) -> usize {
        O::words(self)
    }
    fn region_words(&self) -> usize {
        O::region_words(self)
    }
    fn read(&self, word: usize) -> Result<u32, HalError> {
        O::read(self, word)
    }
    fn program(&mut self, word: usize, value: u32) -> Result<(), HalError> {
        O::program(self, word, value)
    }
    fn lock(&mut self, region: usize) -> Result<(), HalError> {
        O::lock(self, region)
    }
    fn is_locked(&self, region: usize) -> Result<bool, HalError> {
        O::is_locked(self, region)
    }
}
