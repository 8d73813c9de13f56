//! The signature check of [`crate::verify()`]: the image's key as the build reads it, and one
//! check of the signature over the image digest per algorithm.
//!
//! With the `p256-cortex-m` feature on a target that has the P256-Cortex-M4 assembly (the
//! firmware), a P-256 key and signature are read by `castellan-p256-cortex-m`'s fixed-form
//! readers and checked by the assembly: the `p256` crate, `spki` and `der` are then not needed
//! on the verification path at all. Every other build parses with `spki` and checks with the
//! RustCrypto crates.

use crate::ImageError;
use crate::digest::{HashAlg, ImageDigest};
use crate::key::{KeyType, PublicKey};
#[cfg(any(feature = "ed25519", feature = "p256", feature = "p384"))]
use crate::tlv::kind;

/// The image's key, read for the signature check.
#[derive(Debug)]
pub(crate) enum SignerKey {
    /// Parsed by the RustCrypto crates.
    Parsed(PublicKey),
    /// The uncompressed point of a P-256 SubjectPublicKeyInfo, for the assembly.
    #[cfg(feature = "p256-cortex-m")]
    P256Point([u8; castellan_p256_cortex_m::POINT_LEN]),
}

impl SignerKey {
    /// Reads the DER SubjectPublicKeyInfo of the image's key. With the assembly, only the one
    /// DER form of a P-256 key with an uncompressed point is accepted (what imgtool writes).
    pub(crate) fn parse(spki_der: &[u8]) -> Result<Self, ImageError> {
        #[cfg(feature = "p256-cortex-m")]
        if castellan_p256_cortex_m::AVAILABLE {
            return castellan_p256_cortex_m::point_of_spki(spki_der)
                .and_then(|point| point.try_into().ok())
                .map(SignerKey::P256Point)
                .ok_or(ImageError::BadPublicKey);
        }
        PublicKey::from_spki_der(spki_der).map(SignerKey::Parsed)
    }

    /// The key's algorithm.
    pub(crate) fn key_type(&self) -> KeyType {
        match self {
            SignerKey::Parsed(key) => key.key_type(),
            #[cfg(feature = "p256-cortex-m")]
            SignerKey::P256Point(_) => KeyType::EcdsaP256,
        }
    }
}

/// Strip imgtool's optional zero padding after a DER ECDSA signature.
#[cfg(any(feature = "p256", feature = "p384"))]
fn der_signature(sig: &[u8]) -> Result<&[u8], ImageError> {
    let body = usize::from(*sig.get(1).ok_or(ImageError::BadSignature)?);
    let (der, pad) = sig
        .split_at_checked(body + 2)
        .ok_or(ImageError::BadSignature)?;
    if pad.iter().any(|&b| b != 0) {
        return Err(ImageError::BadSignature);
    }
    Ok(der)
}

/// The signature over the digest, for the algorithms this build has. A key type left out never
/// gets here ([`PublicKey::from_spki_der`] refuses it first).
#[cfg_attr(
    not(any(feature = "ed25519", feature = "p256", feature = "p384")),
    allow(unused_variables)
)]
pub(crate) fn check_signature(
    key: &SignerKey,
    alg: HashAlg,
    digest: &ImageDigest,
    sig_kind: u16,
    sig: &[u8],
) -> Result<(), ImageError> {
    // With the assembly, the whole RustCrypto path below is dead code (a constant condition),
    // so a firmware build links neither `p256`'s verifier nor `der`.
    #[cfg(feature = "p256-cortex-m")]
    if castellan_p256_cortex_m::AVAILABLE {
        return match key {
            SignerKey::P256Point(point)
                if sig_kind == kind::ECDSA_SIG && alg == HashAlg::Sha256 =>
            {
                verify_p256_point(point, digest, der_signature(sig)?)
            }
            _ => Err(ImageError::AlgorithmMismatch),
        };
    }
    // One variant unless the build has the assembly path.
    #[allow(clippy::infallible_destructuring_match)]
    let key = match key {
        SignerKey::Parsed(key) => key,
        #[cfg(feature = "p256-cortex-m")]
        SignerKey::P256Point(_) => return Err(ImageError::AlgorithmMismatch),
    };
    match (key, sig_kind, alg) {
        #[cfg(feature = "ed25519")]
        (PublicKey::Ed25519(k), kind::ED25519, HashAlg::Sha256 | HashAlg::Sha512) => {
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
                ImageError::BadTlvLength {
                    kind: sig_kind,
                    len: sig.len() as u16,
                }
            })?;
            k.verify_strict(digest.as_bytes(), &sig)
                .map_err(|_| ImageError::BadSignature)
        }
        #[cfg(feature = "p256")]
        (PublicKey::P256(k), kind::ECDSA_SIG, HashAlg::Sha256) => {
            let sig = p256::ecdsa::Signature::from_der(der_signature(sig)?)
                .map_err(|_| ImageError::BadSignature)?;
            verify_p256(k, digest, &sig)
        }
        #[cfg(feature = "p384")]
        (PublicKey::P384(k), kind::ECDSA_SIG, HashAlg::Sha384) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
            let sig = p384::ecdsa::Signature::from_der(der_signature(sig)?)
                .map_err(|_| ImageError::BadSignature)?;
            k.verify_prehash(digest.as_bytes(), &sig)
                .map_err(|_| ImageError::BadSignature)
        }
        _ => Err(ImageError::AlgorithmMismatch),
    }
}

/// One ECDSA P-256 check of a SHA-256 image digest with the `p256` crate.
#[cfg(feature = "p256")]
fn verify_p256(
    key: &p256::ecdsa::VerifyingKey,
    digest: &ImageDigest,
    sig: &p256::ecdsa::Signature,
) -> Result<(), ImageError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    key.verify_prehash(digest.as_bytes(), sig)
        .map_err(|_| ImageError::BadSignature)
}

/// One ECDSA P-256 check by the assembly: strict-DER signature, SHA-256 digest.
#[cfg(feature = "p256-cortex-m")]
fn verify_p256_point(point: &[u8], digest: &ImageDigest, der: &[u8]) -> Result<(), ImageError> {
    let (r, s) = castellan_p256_cortex_m::signature_of_der(der).ok_or(ImageError::BadSignature)?;
    let prehash: &[u8; 32] = digest
        .as_bytes()
        .try_into()
        .map_err(|_| ImageError::AlgorithmMismatch)?;
    castellan_p256_cortex_m::verify_prehash(point, prehash, &r, &s)
        .map_err(|_| ImageError::BadSignature)
}
