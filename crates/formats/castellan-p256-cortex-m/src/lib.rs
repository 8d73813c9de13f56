//! ECDSA P-256 on Cortex-M4 and Cortex-M33 with Emil Lenngren's P256-Cortex-M4 assembly
//! (through the `p256-cortex-m4-sys` bindings): signature verification for the boot chain's
//! image checks (ten times fewer instructions than the generic field arithmetic of the `p256`
//! crate on the M33; figures in `docs/benchmarks.md`), and for the secure partition also key
//! pairs, signing and public-key checks ([`public_key`], [`sign_prehash`],
//! [`private_key_in_range`], [`check_public_key`]).
//!
//! Verification handles only public data (the key, the digest, the signature). Key pairs and
//! signing (the secure partition's IAK, device keys, `psa_sign_hash`) handle secrets, on the
//! library's constant-time code. `p256_verify` itself refuses `r` or `s` outside `1..n-1`, coordinates outside the field and
//! points off the curve.
//!
//! On any other target [`AVAILABLE`] is false and [`verify_prehash`] answers
//! [`VerifyError::Unavailable`]: callers keep their portable verifier for that case.
#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

use core::fmt;

mod encoding;
mod sign;

pub use encoding::{POINT_LEN, point_of_spki, signature_of_der};
pub use sign::{SignError, check_public_key, private_key_in_range, public_key, sign_prehash};

/// Whether this build has the assembly verifier (Armv7E-M or Armv8-M Mainline target).
pub const AVAILABLE: bool = cfg!(castellan_p256_asm);

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The public key is not an uncompressed SEC1 point (`0x04 ‖ X ‖ Y`, 65 bytes).
    NotUncompressedPoint,
    /// The signature does not verify (or `r`, `s` or the key is out of range).
    BadSignature,
    /// The public key's coordinates are not in the field or the point is not on the curve.
    NotOnCurve,
    /// This target has no assembly verifier ([`AVAILABLE`] is false).
    Unavailable,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyError::NotUncompressedPoint => {
                "the P-256 public key is not an uncompressed SEC1 point"
            }
            VerifyError::BadSignature => "the ECDSA P-256 signature does not verify",
            VerifyError::NotOnCurve => "the P-256 public key is not a point on the curve",
            VerifyError::Unavailable => {
                "no P256-Cortex-M4 verifier on this target (Cortex-M4/M33 only)"
            }
        })
    }
}

impl core::error::Error for VerifyError {}

/// Writes a 256-bit big-endian integer as the library's eight little-endian 32-bit words.
pub(crate) fn words_into(out: &mut [u32; 8], be: &[u8; 32]) {
    for (word, chunk) in out.iter_mut().zip(be.rchunks_exact(4)) {
        if let [a, b, c, d] = *chunk {
            *word = u32::from_be_bytes([a, b, c, d]);
        }
    }
}

/// A 256-bit big-endian integer as the library's eight little-endian 32-bit words.
#[cfg(test)]
fn words(be: &[u8; 32]) -> [u32; 8] {
    let mut out = [0u32; 8];
    words_into(&mut out, be);
    out
}

/// The affine coordinates `X`, `Y` of an uncompressed SEC1 point (`0x04 ‖ X ‖ Y`).
fn coordinates(sec1: &[u8]) -> Result<(&[u8; 32], &[u8; 32]), VerifyError> {
    let Some((&0x04, xy)) = sec1.split_first() else {
        return Err(VerifyError::NotUncompressedPoint);
    };
    let (x, y) = xy
        .split_at_checked(32)
        .ok_or(VerifyError::NotUncompressedPoint)?;
    let x = x
        .try_into()
        .map_err(|_| VerifyError::NotUncompressedPoint)?;
    let y = y
        .try_into()
        .map_err(|_| VerifyError::NotUncompressedPoint)?;
    Ok((x, y))
}

/// Verifies the ECDSA P-256 signature (`r`, `s`, big-endian) of the SHA-256 digest `prehash`
/// with the uncompressed SEC1 public key `public_key`.
///
/// The four integers are converted into one array of words in place (no copies passed by
/// value: this runs on the ROM stage's deepest path, under the library's own 1.5 KiB frame).
pub fn verify_prehash(
    public_key: &[u8],
    prehash: &[u8; 32],
    r: &[u8; 32],
    s: &[u8; 32],
) -> Result<(), VerifyError> {
    let (x, y) = coordinates(public_key)?;
    let mut w = [[0u32; 8]; 4];
    for (out, be) in w.iter_mut().zip([x, y, r, s]) {
        words_into(out, be);
    }
    let [x, y, r, s] = &w;
    if verify_words(x, y, prehash, r, s)? {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// `p256_verify` on the eight-word arrays, or [`VerifyError::Unavailable`] without the assembly.
// The one `unsafe` of the crate: the call into the assembly library.
#[allow(unsafe_code)]
fn verify_words(
    x: &[u32; 8],
    y: &[u32; 8],
    prehash: &[u8; 32],
    r: &[u32; 8],
    s: &[u32; 8],
) -> Result<bool, VerifyError> {
    #[cfg(castellan_p256_asm)]
    {
        // Safety: every pointer refers to a live, aligned array of the size `p256_verify` reads
        // (eight words each, 32 hash bytes as `hashlen_in_bytes` says); it writes through none.
        let ok = unsafe {
            p256_cortex_m4_sys::p256_verify(
                x.as_ptr(),
                y.as_ptr(),
                prehash.as_ptr(),
                32,
                r.as_ptr(),
                s.as_ptr(),
            )
        };
        Ok(ok)
    }
    #[cfg(not(castellan_p256_asm))]
    {
        let _ = (x, y, prehash, r, s);
        Err(VerifyError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn big_endian_integers_become_little_endian_words() {
        let mut be = [0u8; 32];
        be[31] = 0x01;
        be[28] = 0xaa;
        be[0] = 0x80;
        let w = words(&be);
        assert_eq!(w[0], 0xaa00_0001);
        assert_eq!(w[7], 0x8000_0000);
        assert_eq!(w[1..7], [0; 6]);
    }

    #[test]
    fn attack_compressed_or_truncated_keys_are_refused_before_the_assembly() {
        let r = [1u8; 32];
        let compressed = [[0x02u8].as_slice(), &[7u8; 32]].concat();
        let truncated = [[0x04u8].as_slice(), &[7u8; 63]].concat();
        for key in [&compressed[..], &truncated[..], &[][..]] {
            assert_eq!(
                verify_prehash(key, &[0; 32], &r, &r),
                Err(VerifyError::NotUncompressedPoint)
            );
        }
    }

    #[test]
    fn the_host_says_it_has_no_assembly_verifier() {
        const { assert!(!AVAILABLE) };
        let key = [[0x04u8].as_slice(), &[7u8; 64]].concat();
        assert_eq!(
            verify_prehash(&key, &[0; 32], &[1; 32], &[1; 32]),
            Err(VerifyError::Unavailable)
        );
    }
}
