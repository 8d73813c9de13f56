//! The one error type of the hardware layer, shared by every trait so that a power cut
//! ([`HalError::PowerLoss`]) looks the same whether it hit a flash write, a fuse program or a
//! counter increment.

use core::fmt;

use castellan_text::{Describe, Sink, TextError};

use embedded_storage::nor_flash::{NorFlashError, NorFlashErrorKind};

/// What went wrong in a hardware operation.
///
/// Rule violations (`NotAligned`, `NotErased`, `WouldClearBit`, `Locked`, `Rollback`, ...) are
/// refused before anything changes. [`HalError::PowerLoss`] means the device lost power during or
/// around the operation: its effect may be none, partial (torn) or complete, and every later
/// operation fails the same way until the device is powered up again. Code that sees it must stop
/// at once (see [`HalError::is_power_loss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HalError {
    /// An offset or length is not a multiple of the write size (writes) or sector size (erases),
    /// or a partition does not start and end on a sector boundary.
    NotAligned,
    /// An offset, length, fuse word, lock region or counter id lies outside the device.
    OutOfBounds,
    /// A flash write targets a write unit that was already programmed since its last erase.
    NotErased,
    /// Power was lost: the operation may have happened fully, partly or not at all, and the
    /// device is off until it is power cycled.
    PowerLoss,
    /// A fuse program would clear a bit that is already set; fuses are one-way.
    WouldClearBit,
    /// The fuse region is locked: it can no longer be programmed.
    Locked,
    /// A monotonic counter was asked to go below its current value.
    Rollback,
    /// A monotonic counter cannot hold the requested value (all its fuse bits would be used).
    CounterExhausted,
    /// The hardware unique secret is locked until the next reset.
    UdsLocked,
    /// The random source failed to produce bytes.
    RngFailure,
    /// A hardware fault the other variants do not describe (real drivers map their errors here).
    Hardware,
}

impl HalError {
    /// True when this error is a power cut: the caller must stop and let the device reboot.
    pub const fn is_power_loss(&self) -> bool {
        matches!(self, HalError::PowerLoss)
    }
}

impl HalError {
    /// What failed, in a fixed phrase (its [`Describe`] and `Display` text).
    pub const fn text(&self) -> &'static str {
        match self {
            HalError::NotAligned => "offset or length is not aligned to the write or erase size",
            HalError::OutOfBounds => {
                "offset, length, fuse word, region or counter id out of bounds"
            }
            HalError::NotErased => "flash write unit already programmed since its last erase",
            HalError::PowerLoss => "power lost: the device is off until it is power cycled",
            HalError::WouldClearBit => "fuse program refused: it would clear a blown fuse bit",
            HalError::Locked => "fuse region is locked",
            HalError::Rollback => "monotonic counter refused to go below its current value",
            HalError::CounterExhausted => "monotonic counter has no fuse bits left for that value",
            HalError::UdsLocked => "hardware unique secret is locked until reset",
            HalError::RngFailure => "random source failed",
            HalError::Hardware => "hardware fault",
        }
    }
}

impl Describe for HalError {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        out.put(self.text())
    }
}

impl fmt::Display for HalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl NorFlashError for HalError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            HalError::NotAligned => NorFlashErrorKind::NotAligned,
            HalError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

impl core::error::Error for HalError {}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HalError; 11] = [
        HalError::NotAligned,
        HalError::OutOfBounds,
        HalError::NotErased,
        HalError::PowerLoss,
        HalError::WouldClearBit,
        HalError::Locked,
        HalError::Rollback,
        HalError::CounterExhausted,
        HalError::UdsLocked,
        HalError::RngFailure,
        HalError::Hardware,
    ];

    struct Buf([u8; 96], usize);

    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }

    fn text(e: HalError) -> Buf {
        let mut b = Buf([0; 96], 0);
        fmt::write(&mut b, format_args!("{e}")).unwrap();
        b
    }

    #[test]
    fn every_error_has_its_own_message() {
        for (i, a) in ALL.iter().enumerate() {
            let ta = text(*a);
            assert!(ta.1 > 10, "{a:?} has no real message");
            for b in &ALL[i + 1..] {
                let tb = text(*b);
                assert_ne!(ta.0[..ta.1], tb.0[..tb.1], "{a:?} and {b:?} read the same");
            }
        }
    }

    #[test]
    fn only_power_loss_is_power_loss() {
        for e in ALL {
            assert_eq!(e.is_power_loss(), e == HalError::PowerLoss);
        }
    }
}
