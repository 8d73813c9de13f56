//! MCUboot-compatible signed firmware images.
//!
//! An image is what every stage of Castellan's chain of trust verifies before it runs or
//! installs anything. The format is MCUboot's, so images signed with MCUboot's `imgtool` are
//! accepted here and images signed here are accepted by MCUboot:
//!
//! ```text
//!  ┌────────┬─────────┬────────────────┬──────────────────────────────┐ ┄ ┌─────────┐
//!  │ header │ payload │ protected TLVs │ unprotected TLVs             │   │ trailer │
//!  │ 32 B + │         │ SEC_CNT, deps, │ SHA256, KEYHASH/PUBKEY, sig  │   │ (slot)  │
//!  │ padding│         │ boot record    │                              │   │         │
//!  └────────┴─────────┴────────────────┴──────────────────────────────┘ ┄ └─────────┘
//!  <──────────── hashed; the hash is signed ──>
//! ```
//!
//! The verification path ([`verify()`]) is `no_std`, uses no heap, reads the image through
//! [`ImageSource`] in small chunks (so images in flash need not be copied), and returns an
//! [`ImageError`] naming the problem for any input; it never panics. With the `std` feature
//! the crate also signs images ([`sign_image`]) byte-identically to `imgtool sign`, handles
//! PKCS#8 key files, and describes images for `castellan image info`.
//!
//! Features choose the algorithms the verifier links (all on by default and with `std`):
//! `ed25519`, `p256`, `p384` (signatures) and `sha512` (SHA-384 and SHA-512 image hashes;
//! SHA-256 is always built in). A device that only ever sees ECDSA P-256 over SHA-256 builds
//! with `default-features = false, features = ["p256"]`; an image using an algorithm left out
//! is refused with [`ImageError::UnsupportedAlgorithm`] naming it, never verified by a
//! weaker path.
#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

#[cfg(feature = "std")]
extern crate std;

mod digest;
mod error;
pub mod header;
mod key;
mod signature;
mod source;
pub mod tlv;
pub mod trailer;
mod verify;

#[cfg(feature = "std")]
mod describe;
#[cfg(feature = "std")]
mod keyfile;
#[cfg(feature = "std")]
mod sign;

pub use digest::{HashAlg, ImageDigest};
pub use error::{Algorithm, ImageError, TlvArea};
pub use header::{ImageHeader, Version};
pub use key::{KeyType, PublicKey, TrustedKey, signer_id};
pub use source::ImageSource;
pub use tlv::TlvRef;
pub use verify::{
    Dependency, ImageLayout, MAX_DEPENDENCIES, VerifiedImage, check_trusted_key, verify,
};

#[cfg(feature = "std")]
pub use describe::{ImageDescription, TlvAreas, TlvEntry, TlvInfo, TrailerDescription, describe};
#[cfg(feature = "std")]
pub use keyfile::{KeyFileError, SigningKey, public_key_pem, public_spki_from_pem};
#[cfg(feature = "std")]
pub use sign::{PublicKeyFormat, SignError, SignOptions, boot_record, sign_image};
