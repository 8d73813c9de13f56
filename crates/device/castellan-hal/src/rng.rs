//! Random source: the hardware TRNG (or the simulator's seeded generator).

use crate::HalError;

/// A source of random bytes.
pub trait RandomSource {
    /// Fills `buf` with random bytes, or fails with [`HalError::RngFailure`] (never returns
    /// predictable bytes on failure).
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), HalError>;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), HalError> {
        R::fill(self, buf)
    }
}
