//! SHA-256 for the boot chain on Cortex-M4 and Cortex-M33: OpenSSL's integer block function
//! for ARMv4 and later (`sha256-armv4`, Andy Polyakov's CRYPTOGAMS code, Thumb-2 path), behind
//! the RustCrypto `Digest` traits, so that callers swap `sha2::Sha256` for [`Sha256`] and
//! nothing else. On the M33 it hashes in about 30 instructions per byte where the `sha2`
//! crate's unrolled Rust needs 38 (figures in `docs/benchmarks.md`).
//!
//! Only the compression function is the assembly's: the message buffering and the padding are
//! the `digest` crate's block buffer (`len64_padding_be`), exactly as `sha2` itself uses them.
//! SHA-256 has no secret-dependent branch or memory access in either implementation.
//!
//! On any other target (host builds, tests), and in a build with
//! `--cfg castellan_sha256_portable` (size before speed: the ROM stage),
//! [`AVAILABLE`] is false and [`Sha256`] *is* `sha2::Sha256`.
#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

/// Whether this build hashes with the assembly (Armv7E-M or Armv8-M Mainline target).
pub const AVAILABLE: bool = cfg!(castellan_sha256_asm);

#[cfg(castellan_sha256_asm)]
mod asm;

#[cfg(castellan_sha256_asm)]
pub use asm::Sha256;

#[cfg(not(castellan_sha256_asm))]
pub use sha2::Sha256;

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use digest::Digest as _;

    /// FIPS 180-2 appendix B.1: SHA-256("abc").
    #[test]
    fn known_answer_abc() {
        let d: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(
            d,
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
    }

    /// Off the Cortex-M targets the name is `sha2`'s own hasher, so host builds hash exactly as
    /// before.
    #[test]
    fn host_builds_use_sha2() {
        let portable: sha2::Sha256 = Sha256::new();
        assert_eq!(portable.finalize(), sha2::Sha256::digest(b""));
    }
}
