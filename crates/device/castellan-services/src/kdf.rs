//! Keys the secure partition derives from the DICE CDIs it receives from the boot chain.
//!
//! ```text
//!  CDI_Seal   ── HKDF-SHA256(salt = SALT, info = "its storage wrapping key") ──▶ SWK (AES-256)
//!                 SWK wraps the random storage root key (SRK) kept in the key area
//!  CDI_Seal   ── HKDF-SHA256(salt = SALT, info = "attestation key P-256" ‖ i) ──▶ IAK scalar
//!                 i = 0, 1, ... until the 32 bytes are a valid P-256 scalar (1 ≤ d < n)
//! ```
//!
//! `CDI_Seal` depends on the boot chain's signing authorities, the lifecycle (DICE mode) and the
//! UDS only, so sealed storage *and the attestation key* survive updates signed by the same
//! authority: the registry records the IAK once, at the factory, and every later token —
//! after any number of updates — verifies with it (as TF-M's device-bound IAK). What runs is
//! reported in the token's measured components (the bootloader's boot record), which the
//! verifier compares with the release's reference values. A firmware signed by another
//! authority, or a device in debug mode, gets another key and its tokens do not verify.
//! (`CDI_Attest`, which changes with every measurement, is not used for a long-lived key:
//! see docs/updates.md, "Attestation key across updates".)

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ServiceError;

/// Salt of every derivation of this crate (domain separation from other CDI users).
const SALT: &[u8] = b"castellan/secure-services/v1";
/// HKDF info of the storage wrapping key.
const INFO_SWK: &[u8] = b"its storage wrapping key";
/// HKDF info prefix of the attestation key.
const INFO_IAK: &[u8] = b"attestation key P-256";

/// Length of a CDI and of the keys derived here.
pub const KEY_LEN: usize = 32;

/// The storage wrapping key: AES-256 key that wraps the storage root key.
pub(crate) fn storage_wrapping_key(
    cdi_seal: &[u8; KEY_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, ServiceError> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(SALT), cdi_seal)
        .expand(INFO_SWK, out.as_mut_slice())
        .map_err(|_| ServiceError::Crypto("HKDF output length"))?;
    Ok(out)
}

/// The attestation key, a P-256 private scalar derived from `CDI_Seal` (stable across updates
/// by the same authority; separated from the storage key by its HKDF info).
pub(crate) fn attestation_key(
    cdi_seal: &[u8; KEY_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, ServiceError> {
    let hk = Hkdf::<Sha256>::new(Some(SALT), cdi_seal);
    for i in 0u8..=u8::MAX {
        let mut d = Zeroizing::new([0u8; KEY_LEN]);
        hk.expand_multi_info(&[INFO_IAK, &[i]], d.as_mut_slice())
            .map_err(|_| ServiceError::Crypto("HKDF output length"))?;
        // Out of range (0 or ≥ n) with probability about 2^-32: try the next counter.
        if crate::crypto::ecc::private_key_ok(d.as_slice()) {
            return Ok(d);
        }
    }
    Err(ServiceError::Crypto("no valid P-256 scalar in 256 tries"))
}

/// HKDF-SHA256 (extract then expand) into `out`, for the crypto service's derive keys.
pub(crate) fn hkdf_sha256(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), ServiceError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| ServiceError::InvalidArgument("HKDF-SHA256 output is at most 8160 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_deterministic_and_separated() {
        let cdi = [7u8; KEY_LEN];
        let a = storage_wrapping_key(&cdi).unwrap();
        let b = storage_wrapping_key(&cdi).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *storage_wrapping_key(&[8u8; KEY_LEN]).unwrap());
        let k1 = attestation_key(&cdi).unwrap();
        let k2 = attestation_key(&cdi).unwrap();
        assert_eq!(*k1, *k2);
        assert_ne!(k1.as_slice(), a.as_slice());
        assert_ne!(*attestation_key(&[8u8; KEY_LEN]).unwrap(), *k1);
        assert!(crate::crypto::ecc::private_key_ok(k1.as_slice()));
    }
}
