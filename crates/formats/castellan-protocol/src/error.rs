//! The crate's one error type: why a message from the other side was refused.

use std::fmt;

/// Why a protocol message, or one of its fields, was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The payload is not the message: not JSON, a field missing or of the wrong type, or an
    /// unknown field where the message refuses them.
    Malformed {
        /// The message ([`crate::WireMessage::NAME`]).
        message: &'static str,
        /// What the JSON reader said (which field, where).
        detail: String,
    },
    /// A binary field is not hex.
    NotHex {
        /// The field (`"challenge nonce"`, `"offer's manifest"`).
        field: &'static str,
    },
    /// A binary field decodes to the wrong number of bytes.
    Length {
        /// The field.
        field: &'static str,
        /// How many bytes it has.
        len: usize,
        /// How many it must have (`"65"`, `"32, 48 or 64"`).
        expected: &'static str,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Malformed { message, detail } => write!(f, "{message}: {detail}"),
            ProtocolError::NotHex { field } => write!(f, "the {field} is not hex"),
            ProtocolError::Length {
                field,
                len,
                expected,
            } => write!(f, "the {field} has {len} bytes ({expected} expected)"),
        }
    }
}

impl std::error::Error for ProtocolError {}
