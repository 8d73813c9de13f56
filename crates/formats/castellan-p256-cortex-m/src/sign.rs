//! Key pairs and signing on the P256-Cortex-M4 assembly: the public key of a private scalar
//! (`p256_keygen`), ECDSA signing with a caller-chosen nonce (`p256_sign`), the range check of
//! a private scalar (`P256_check_range_n`) and the curve check of a public point
//! (`p256_octet_string_to_point`).
//!
//! These handle secrets (the private scalar, the nonce `k`). The library processes them in
//! constant time (its README: "code that processes secret data runs in constant time"; no
//! secret-dependent branch or memory index on Cortex-M4/M33, which have no data cache); the
//! conversions here between big-endian bytes and the library's little-endian words are
//! straight-line code, and every word copy of a secret is wiped before returning.
//!
//! The library must be built with signing, key generation and point decoding
//! (`include_p256_sign`, `include_p256_keygen`, `include_p256_decode_point`: the secure
//! partition's build); the boot stages build it for verification only and do not call these.
//! On any other target every function answers [`SignError::Unavailable`] (or `false`).

use core::fmt;

use zeroize::Zeroize;

use crate::{VerifyError, words_into};

/// Why a key or a signature was not produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The private scalar is not in `1..n-1`.
    PrivateKeyOutOfRange,
    /// The nonce `k` is not usable (outside `1..n-1`, or it gives `r = 0` or `s = 0`): the
    /// caller takes the next candidate `k` (RFC 6979 §3.2 h.3).
    UnsuitableNonce,
    /// This target has no assembly ([`crate::AVAILABLE`] is false).
    Unavailable,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignError::PrivateKeyOutOfRange => "the P-256 private key is not in 1..n-1",
            SignError::UnsuitableNonce => "the ECDSA nonce is not usable for this signature",
            SignError::Unavailable => {
                "no P256-Cortex-M4 assembly on this target (Cortex-M4/M33 only)"
            }
        })
    }
}

impl core::error::Error for SignError {}

/// Writes the library's eight little-endian words as a 256-bit big-endian integer.
fn bytes_into(out: &mut [u8], words: &[u32; 8]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(words.iter().rev()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// The private scalar as words, wiped on drop.
struct SecretWords([u32; 8]);

impl SecretWords {
    fn of(be: &[u8; 32]) -> Self {
        let mut w = SecretWords([0; 8]);
        words_into(&mut w.0, be);
        w
    }
}

impl Drop for SecretWords {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Whether `private` (big-endian) is a valid P-256 private scalar, `1 ≤ d ≤ n-1`. (The
/// library's check branches only on an all-zero scalar, which is refused: its time says
/// nothing about a scalar that is used.)
#[allow(unsafe_code)]
pub fn private_key_in_range(private: &[u8; 32]) -> bool {
    let d = SecretWords::of(private);
    #[cfg(castellan_p256_asm)]
    {
        // Safety: `d.0` is a live, aligned array of the eight words the function reads.
        unsafe { p256_cortex_m4_sys::P256_check_range_n(d.0.as_ptr()) }
    }
    #[cfg(not(castellan_p256_asm))]
    {
        drop(d);
        false
    }
}

/// The uncompressed SEC1 public key (`0x04 ‖ X ‖ Y`) of the private scalar `private`
/// (big-endian).
#[allow(unsafe_code)]
pub fn public_key(private: &[u8; 32]) -> Result<[u8; crate::POINT_LEN], SignError> {
    let d = SecretWords::of(private);
    let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
    let ok = keygen_words(&mut x, &mut y, &d)?;
    drop(d);
    if !ok {
        return Err(SignError::PrivateKeyOutOfRange);
    }
    let mut out = [0u8; crate::POINT_LEN];
    if let Some((tag, xy)) = out.split_first_mut() {
        *tag = 0x04;
        let (ox, oy) = xy.split_at_mut(32);
        bytes_into(ox, &x);
        bytes_into(oy, &y);
    }
    Ok(out)
}

/// The ECDSA P-256 signature `r ‖ s` (big-endian) of the SHA-256 digest `prehash` with the
/// private scalar `private` and the nonce `k` (big-endian; from RFC 6979 or a strong random
/// source, never reused). [`SignError::UnsuitableNonce`] asks for the next `k`.
#[allow(unsafe_code)]
pub fn sign_prehash(
    private: &[u8; 32],
    prehash: &[u8; 32],
    k: &[u8; 32],
) -> Result<[u8; 64], SignError> {
    let d = SecretWords::of(private);
    let k = SecretWords::of(k);
    let (mut r, mut s) = ([0u32; 8], [0u32; 8]);
    let ok = sign_words(&mut r, &mut s, prehash, &d, &k)?;
    drop((d, k));
    if !ok {
        return Err(SignError::UnsuitableNonce);
    }
    let mut out = [0u8; 64];
    let (or, os) = out.split_at_mut(32);
    bytes_into(or, &r);
    bytes_into(os, &s);
    Ok(out)
}

/// Checks that `sec1` is an uncompressed SEC1 point (65 bytes) on the curve, with both
/// coordinates in the field.
#[allow(unsafe_code)]
pub fn check_public_key(sec1: &[u8]) -> Result<(), VerifyError> {
    if sec1.len() != crate::POINT_LEN || sec1.first() != Some(&0x04) {
        return Err(VerifyError::NotUncompressedPoint);
    }
    if decode_point(sec1)? {
        Ok(())
    } else {
        Err(VerifyError::NotOnCurve)
    }
}

// The calls into the assembly library (or `Unavailable` without it).

#[allow(unsafe_code)]
fn keygen_words(x: &mut [u32; 8], y: &mut [u32; 8], d: &SecretWords) -> Result<bool, SignError> {
    #[cfg(castellan_p256_asm)]
    {
        // Safety: `x` and `y` are live, aligned eight-word arrays the function writes, `d.0`
        // the eight words it reads.
        Ok(
            unsafe {
                p256_cortex_m4_sys::p256_keygen(x.as_mut_ptr(), y.as_mut_ptr(), d.0.as_ptr())
            },
        )
    }
    #[cfg(not(castellan_p256_asm))]
    {
        let _ = (x, y, d);
        Err(SignError::Unavailable)
    }
}

#[allow(unsafe_code)]
fn sign_words(
    r: &mut [u32; 8],
    s: &mut [u32; 8],
    prehash: &[u8; 32],
    d: &SecretWords,
    k: &SecretWords,
) -> Result<bool, SignError> {
    #[cfg(castellan_p256_asm)]
    {
        // Safety: `r` and `s` are live, aligned eight-word arrays the function writes; `d.0`
        // and `k.0` the eight words it reads, `prehash` the 32 bytes `hashlen_in_bytes` names.
        Ok(unsafe {
            p256_cortex_m4_sys::p256_sign(
                r.as_mut_ptr(),
                s.as_mut_ptr(),
                prehash.as_ptr(),
                32,
                d.0.as_ptr(),
                k.0.as_ptr(),
            )
        })
    }
    #[cfg(not(castellan_p256_asm))]
    {
        let _ = (r, s, prehash, d, k);
        Err(SignError::Unavailable)
    }
}

#[allow(unsafe_code)]
fn decode_point(sec1: &[u8]) -> Result<bool, VerifyError> {
    #[cfg(castellan_p256_asm)]
    {
        let (mut x, mut y) = ([0u32; 8], [0u32; 8]);
        // Safety: `x` and `y` are live, aligned eight-word arrays the function writes; `sec1`
        // holds the `input_len_in_bytes` it reads (its length is passed).
        Ok(unsafe {
            p256_cortex_m4_sys::p256_octet_string_to_point(
                x.as_mut_ptr(),
                y.as_mut_ptr(),
                sec1.as_ptr(),
                sec1.len() as u32,
            )
        })
    }
    #[cfg(not(castellan_p256_asm))]
    {
        let _ = sec1;
        Err(VerifyError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_to_big_endian_bytes() {
        let mut be = [0u8; 32];
        for (i, b) in be.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut w = [0u32; 8];
        words_into(&mut w, &be);
        let mut back = [0u8; 32];
        bytes_into(&mut back, &w);
        assert_eq!(back, be);
    }

    #[test]
    fn the_host_has_no_assembly_signer() {
        assert_eq!(public_key(&[1; 32]), Err(SignError::Unavailable));
        assert_eq!(
            sign_prehash(&[1; 32], &[2; 32], &[3; 32]),
            Err(SignError::Unavailable)
        );
        assert!(!private_key_in_range(&[1; 32]));
        let point = [[0x04u8].as_slice(), &[7u8; 64]].concat();
        assert_eq!(check_public_key(&point), Err(VerifyError::Unavailable));
        assert_eq!(
            check_public_key(&point[..64]),
            Err(VerifyError::NotUncompressedPoint)
        );
    }
}
