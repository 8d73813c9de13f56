//! P-256 for the crypto, attestation and update services: the range of a private scalar, its
//! public key, ECDSA over a SHA-256 hash (RFC 6979 nonces, hedged with added entropy when the
//! caller gives some), the validity of a public point, and signature checks.
//!
//! With the `p256-cortex-m` feature on a Cortex-M4/M33 target (the secure partition) every one
//! of these runs on the P256-Cortex-M4 assembly (`castellan-p256-cortex-m`: constant-time for
//! the scalar and the nonce), so no generic field arithmetic is linked; the nonce comes from
//! the `rfc6979` crate's generator, the same one the `ecdsa` crate uses. Everywhere else (the
//! host, the simulated devices) they run on the `p256` crate, as before.

#[cfg(feature = "p256-cortex-m")]
use castellan_p256_cortex_m as asm;
use p256::NistP256;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::Sha256;

use super::{ECDSA_P256_SIGNATURE_LEN, P256_PUBLIC_KEY_LEN, SHA256_LEN};
use crate::ServiceError;

/// Length of a P-256 private scalar (big-endian).
pub(crate) const P256_PRIVATE_KEY_LEN: usize = 32;

/// Whether this build runs P-256 on the assembly.
#[cfg(feature = "p256-cortex-m")]
const ASM: bool = asm::AVAILABLE;

/// Whether `d` is a P-256 private scalar: 32 bytes, big-endian, `1 ≤ d ≤ n-1`.
pub(crate) fn private_key_ok(d: &[u8]) -> bool {
    let Ok(d) = <&[u8; P256_PRIVATE_KEY_LEN]>::try_from(d) else {
        return false;
    };
    #[cfg(feature = "p256-cortex-m")]
    if ASM {
        return asm::private_key_in_range(d);
    }
    SigningKey::from_slice(d).is_ok()
}

/// The SEC1 uncompressed public key of the private scalar `d`.
pub(crate) fn public_key(d: &[u8]) -> Result<[u8; P256_PUBLIC_KEY_LEN], ServiceError> {
    let bad = ServiceError::Crypto("stored P-256 key");
    let d = <&[u8; P256_PRIVATE_KEY_LEN]>::try_from(d).map_err(|_| bad)?;
    #[cfg(feature = "p256-cortex-m")]
    if ASM {
        return asm::public_key(d).map_err(|_| bad);
    }
    let sk = SigningKey::from_slice(d).map_err(|_| bad)?;
    let mut out = [0u8; P256_PUBLIC_KEY_LEN];
    out.copy_from_slice(sk.verifying_key().to_sec1_point(false).as_bytes());
    Ok(out)
}

/// Whether `sec1` is a P-256 public key: an uncompressed SEC1 point on the curve.
pub(crate) fn public_key_ok(sec1: &[u8]) -> bool {
    if sec1.len() != P256_PUBLIC_KEY_LEN {
        return false;
    }
    #[cfg(feature = "p256-cortex-m")]
    if ASM {
        return asm::check_public_key(sec1).is_ok();
    }
    VerifyingKey::from_sec1_bytes(sec1).is_ok()
}

/// ECDSA P-256 over the SHA-256 `hash` with the private scalar `d`: the RFC 6979 nonce, with
/// `added_entropy` mixed in (RFC 6979 §3.6; empty for the deterministic variant).
pub(crate) fn sign(
    d: &[u8],
    hash: &[u8],
    added_entropy: &[u8],
) -> Result<[u8; ECDSA_P256_SIGNATURE_LEN], ServiceError> {
    let bad = ServiceError::Crypto("stored P-256 key");
    let hash: &[u8; SHA256_LEN] = hash
        .try_into()
        .map_err(|_| ServiceError::InvalidArgument("hash must be 32 bytes (SHA-256)"))?;
    let d = <&[u8; P256_PRIVATE_KEY_LEN]>::try_from(d).map_err(|_| bad)?;
    #[cfg(feature = "p256-cortex-m")]
    if ASM {
        return sign_asm(d, hash, added_entropy);
    }
    let sk = SigningKey::from_slice(d).map_err(|_| bad)?;
    let (sig, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<NistP256, Sha256>(
        sk.as_nonzero_scalar(),
        hash,
        added_entropy,
    );
    let mut out = [0u8; ECDSA_P256_SIGNATURE_LEN];
    out.copy_from_slice(&sig.to_bytes());
    Ok(out)
}

/// [`sign`] on the assembly: candidate nonces from RFC 6979's generator (already in `1..n-1`)
/// until one gives a signature (`r ≠ 0`, `s ≠ 0`; a miss has probability about 2^-256).
#[cfg(feature = "p256-cortex-m")]
fn sign_asm(
    d: &[u8; P256_PRIVATE_KEY_LEN],
    hash: &[u8; SHA256_LEN],
    added_entropy: &[u8],
) -> Result<[u8; ECDSA_P256_SIGNATURE_LEN], ServiceError> {
    use rfc6979::bigint::U256;
    /// The order `n` of the P-256 group.
    const ORDER: U256 =
        U256::from_be_hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    let mut nonces = rfc6979::KGenerator::<Sha256, U256>::new(d, hash, added_entropy, &ORDER);
    let mut k = zeroize::Zeroizing::new([0u8; P256_PRIVATE_KEY_LEN]);
    for _ in 0..8 {
        nonces.fill_next_k(k.as_mut_slice());
        match asm::sign_prehash(d, hash, &k) {
            Ok(sig) => return Ok(sig),
            Err(asm::SignError::UnsuitableNonce) => continue,
            Err(_) => break,
        }
    }
    Err(ServiceError::Crypto("stored P-256 key"))
}

/// Verifies an ECDSA P-256 `r‖s` signature over a SHA-256 hash with the SEC1 key `public`.
pub(crate) fn verify(public: &[u8], hash: &[u8], signature: &[u8]) -> Result<(), ServiceError> {
    if hash.len() != SHA256_LEN {
        return Err(ServiceError::InvalidArgument(
            "hash must be 32 bytes (SHA-256)",
        ));
    }
    #[cfg(feature = "p256-cortex-m")]
    if ASM {
        // The assembly refuses `r`, `s` outside `1..n-1` as `Signature::from_slice` does, and
        // a key off the curve.
        let half = |range: core::ops::Range<usize>| {
            signature
                .get(range)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
        };
        let (Some(r), Some(s), 64) = (half(0..32), half(32..64), signature.len()) else {
            return Err(ServiceError::InvalidSignature);
        };
        let digest: &[u8; 32] = hash
            .try_into()
            .map_err(|_| ServiceError::InvalidArgument("hash must be 32 bytes (SHA-256)"))?;
        return match asm::verify_prehash(public, digest, &r, &s) {
            Ok(()) => Ok(()),
            Err(asm::VerifyError::NotUncompressedPoint) => Err(ServiceError::Crypto("public key")),
            Err(_) => Err(ServiceError::InvalidSignature),
        };
    }
    let vk =
        VerifyingKey::from_sec1_bytes(public).map_err(|_| ServiceError::Crypto("public key"))?;
    let sig = Signature::from_slice(signature).map_err(|_| ServiceError::InvalidSignature)?;
    vk.verify_prehash(hash, &sig)
        .map_err(|_| ServiceError::InvalidSignature)
}
