//! Public keys that images are verified against, and how an image names its key.
//!
//! Keys travel as DER `SubjectPublicKeyInfo`, exactly the bytes imgtool embeds in a PUBKEY TLV
//! and hashes into a KEYHASH TLV. A device that keeps only a hash of its root key in OTP uses
//! [`TrustedKey::Sha256OfSpki`]; images for it must then carry the full key (PUBKEY TLV), as
//! with MCUboot's hardware-key mode.

use core::fmt;

#[cfg(feature = "sha256-cortex-m")]
use castellan_sha256_cortex_m::Sha256;
#[cfg(any(feature = "ed25519", feature = "p256", feature = "p384"))]
use pkcs8::DecodePublicKey;
use pkcs8::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use sha2::Digest as _;
#[cfg(not(feature = "sha256-cortex-m"))]
use sha2::Sha256;

use crate::ImageError;
use crate::error::Algorithm;

/// `id-Ed25519` (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` (RFC 5480).
const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `secp384r1` (RFC 5480).
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Signature algorithms this crate knows. Which of them a build verifies depends on its
/// features ([`Algorithm::is_supported`]); the others are refused by name.
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

impl KeyType {
    /// The algorithm of a DER SubjectPublicKeyInfo, from its algorithm identifier only (the key
    /// itself is not checked). Works for every key type whatever the build's features.
    pub fn of_spki_der(der: &[u8]) -> Result<KeyType, ImageError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(|_| ImageError::BadPublicKey)?;
        if spki.algorithm.oid == OID_ED25519 {
            return Ok(KeyType::Ed25519);
        }
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
            return Err(ImageError::BadPublicKey);
        }
        match spki.algorithm.parameters_oid() {
            Ok(curve) if curve == OID_SECP256R1 => Ok(KeyType::EcdsaP256),
            Ok(curve) if curve == OID_SECP384R1 => Ok(KeyType::EcdsaP384),
            _ => Err(ImageError::BadPublicKey),
        }
    }
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

/// A parsed public key, of an algorithm this build verifies (one variant per feature).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// Ed25519 (feature `ed25519`).
    #[cfg(feature = "ed25519")]
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256 (feature `p256`).
    #[cfg(feature = "p256")]
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-384 (feature `p384`).
    #[cfg(feature = "p384")]
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parse a DER SubjectPublicKeyInfo (Ed25519, P-256 or P-384).
    ///
    /// A well-formed key of an algorithm left out of this build is
    /// [`ImageError::UnsupportedAlgorithm`]; anything else that is not a valid key of a known
    /// algorithm is [`ImageError::BadPublicKey`].
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, ImageError> {
        match KeyType::of_spki_der(der)? {
            #[cfg(feature = "ed25519")]
            KeyType::Ed25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::Ed25519)
                .map_err(|_| ImageError::BadPublicKey),
            #[cfg(feature = "p256")]
            KeyType::EcdsaP256 => p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::P256)
                .map_err(|_| ImageError::BadPublicKey),
            #[cfg(feature = "p384")]
            KeyType::EcdsaP384 => p384::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::P384)
                .map_err(|_| ImageError::BadPublicKey),
            #[allow(unreachable_patterns)] // every key type built in: nothing left to refuse
            other => Err(ImageError::UnsupportedAlgorithm(Algorithm::Signature(
                other,
            ))),
        }
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        match *self {
            #[cfg(feature = "ed25519")]
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            #[cfg(feature = "p256")]
            PublicKey::P256(_) => KeyType::EcdsaP256,
            #[cfg(feature = "p384")]
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
