//! Public keys that images are verified against, and how an image names its key.
//!
//! Keys travel as DER `SubjectPublicKeyInfo`, exactly the bytes imgtool embeds in a PUBKEY TLV
//! and hashes into a KEYHASH TLV. A device that keeps only a hash of its root key in OTP uses
//! [`TrustedKey::Sha256OfSpki`]; images for it must then carry the full key (PUBKEY TLV), as
//! with MCUboot's hardware-key mode.

use core::fmt;

use pkcs8::DecodePublicKey;
use sha2::{Digest as _, Sha256};

use crate::ImageError;

/// Signature algorithms this crate verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "kebab-case"))]
pub enum KeyType {
    /// Ed25519 over the image digest (TLV 0x24).
    Ed25519,
    /// ECDSA P-256 with SHA-256 (TLV 0x22).
    EcdsaP256,
    /// ECDSA P-384 with SHA-384 (TLV 0x22).
    EcdsaP384,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
        })
    }
}

/// A parsed public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-384.
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parse a DER SubjectPublicKeyInfo (Ed25519, P-256 or P-384).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, ImageError> {
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::Ed25519(k));
        }
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::P384(k));
        }
        Err(ImageError::BadPublicKey)
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::P256(_) => KeyType::EcdsaP256,
            PublicKey::P384(_) => KeyType::EcdsaP384,
        }
    }
}

/// The key a verifier trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustedKey<'a> {
    /// The full key, as DER SubjectPublicKeyInfo. Images may name it by KEYHASH or PUBKEY.
    Spki(&'a [u8]),
    /// Only the SHA-256 of the key's DER SubjectPublicKeyInfo (e.g. a root-key hash burnt in
    /// OTP). Images must carry the key itself in a PUBKEY TLV.
    Sha256OfSpki([u8; 32]),
}

/// SHA-256 of a DER SubjectPublicKeyInfo: Castellan's signer id for a key.
pub fn signer_id(spki_der: &[u8]) -> [u8; 32] {
    Sha256::digest(spki_der).into()
}
