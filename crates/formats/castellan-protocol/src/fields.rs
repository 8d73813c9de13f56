//! Readers of the binary fields the JSON messages carry as hex: decoded once, here, with the
//! length rules of the protocol.

use crate::ProtocolError;

/// The nonce lengths a PSA attestation token accepts (bytes): what the server's challenges
/// (onboarding and post-update) may carry.
pub const NONCE_LENGTHS: [usize; 3] = [32, 48, 64];

/// `text` as bytes (surrounding whitespace ignored), or [`ProtocolError::NotHex`].
pub(crate) fn hex_bytes(field: &'static str, text: &str) -> Result<Vec<u8>, ProtocolError> {
    hex::decode(text.trim()).map_err(|_| ProtocolError::NotHex { field })
}

/// A challenge nonce: hex of 32, 48 or 64 bytes.
pub(crate) fn nonce(field: &'static str, text: &str) -> Result<Vec<u8>, ProtocolError> {
    let bytes = hex_bytes(field, text)?;
    if NONCE_LENGTHS.contains(&bytes.len()) {
        Ok(bytes)
    } else {
        Err(ProtocolError::Length {
            field,
            len: bytes.len(),
            expected: "32, 48 or 64",
        })
    }
}

/// A P-256 public key, SEC1 uncompressed: hex of 65 bytes.
pub(crate) fn sec1_key(field: &'static str, text: &str) -> Result<[u8; 65], ProtocolError> {
    let bytes = hex_bytes(field, text)?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| ProtocolError::Length {
        field,
        len,
        expected: "65",
    })
}
