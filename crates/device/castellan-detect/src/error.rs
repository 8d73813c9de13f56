//! The one error type of the model parser and encoder.

use core::fmt;

/// Why a model was refused (or could not be written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// Fewer bytes than the fixed header.
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// The file does not start with the model magic.
    BadMagic,
    /// A format version this scorer does not know.
    UnsupportedVersion {
        /// The version in the file.
        version: u16,
    },
    /// The header's length fields disagree with the bytes given or with the dimensions.
    LengthMismatch {
        /// Length the header and dimensions call for.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A dimension outside the range the scorer's fixed-size state supports.
    DimensionOutOfRange {
        /// Which dimension.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The largest value accepted.
        max: u32,
    },
    /// A scale or cap that is not a finite positive number (or a threshold not below the cap).
    BadScale {
        /// Which scale.
        field: &'static str,
    },
    /// The known event ids are not strictly increasing (the scorer searches them).
    UnsortedVocabulary {
        /// Position of the first id out of order.
        index: usize,
    },
    /// The output buffer is too small for the encoded model.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { len } => {
                write!(
                    f,
                    "model truncated: {len} bytes, the header alone needs more"
                )
            }
            Self::BadMagic => f.write_str("not a Castellan detection model (bad magic)"),
            Self::UnsupportedVersion { version } => {
                write!(
                    f,
                    "detection model format version {version} is not supported"
                )
            }
            Self::LengthMismatch { expected, actual } => write!(
                f,
                "detection model length mismatch: the header calls for {expected} bytes, {actual} given"
            ),
            Self::DimensionOutOfRange { field, value, max } => write!(
                f,
                "detection model dimension {field} = {value} is out of range (1..={max})"
            ),
            Self::BadScale { field } => {
                write!(
                    f,
                    "detection model {field} is out of range (not finite, not positive, or a threshold not below the cap)"
                )
            }
            Self::UnsortedVocabulary { index } => write!(
                f,
                "detection model event ids are not strictly increasing at position {index}"
            ),
            Self::BufferTooSmall { needed } => {
                write!(
                    f,
                    "buffer too small for the detection model: {needed} bytes needed"
                )
            }
        }
    }
}

impl core::error::Error for ModelError {}
