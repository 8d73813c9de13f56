//! The crate's one error type, [`DiceError`].

use core::fmt;

/// Why a DICE derivation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiceError {
    /// HKDF-SHA512 refused to produce the requested number of output bytes
    /// (it can produce at most 255 × 64 bytes; this crate only asks for 20 or 32,
    /// so seeing this means a KDF backend misbehaved).
    KdfOutputLength {
        /// The number of output bytes that was requested.
        requested: usize,
    },
    /// The ROM stage was given an empty bootloader measurement: CDIs derived from
    /// it would attest to no code at all, so the ROM refuses to derive them.
    EmptyMeasurement,
}

impl fmt::Display for DiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiceError::KdfOutputLength { requested } => write!(
                f,
                "DICE: HKDF-SHA512 refused to derive {requested} output bytes"
            ),
            DiceError::EmptyMeasurement => f.write_str(
                "DICE: the bootloader measurement is empty; refusing to derive CDIs that measure nothing",
            ),
        }
    }
}

impl core::error::Error for DiceError {}
