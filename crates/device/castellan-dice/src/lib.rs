//! Measured boot for Castellan per the [Open Profile for DICE] (google/open-dice,
//! `docs/specification.md`): derivation of the attestation and sealing CDIs, the
//! CDI key pair and the CDI identifier, byte for byte as open-dice computes them
//! (SHA-512, HKDF-SHA512, Ed25519). `no_std`, no heap, no `unsafe`.
//!
//! # How Castellan uses DICE
//!
//! ```text
//!  OTP: UDS (32 bytes, all zero if unprovisioned)
//!    │
//!  ROM stage ── verifies the bootloader (MCUboot format, root key) ──┐
//!    │  rom_stage_cdis(UDS, bootloader SHA-256, root-key hash, mode)   │
//!    │  then LOCKS the UDS (HAL fuse/lock bit) before jumping          │
//!    ▼                                                               ▼
//!  Bootloader: CDI_Attest[1], CDI_Seal[1]  ── derive_cdis(...) ──▶ secure image: CDI[2] ...
//! ```
//!
//! 1. The ROM stage verifies the bootloader image, then calls [`rom_stage_cdis`]
//!    with the UDS (used as both current CDIs, as the profile says for the first
//!    layer), the image's SHA-256 digest as code input (zero-padded to 64 bytes,
//!    see [`measurement_to_code_hash`]), the verified-boot signer (hash of the
//!    root public key) as authority input, and the mode decision (Normal on a
//!    secured device, Debug when debug is open, ...). It then locks the UDS so no
//!    later code can read it, and hands the [`Cdis`] to the bootloader.
//! 2. Each later stage that measures the next one calls [`derive_cdis`] (or
//!    [`Cdis::derive_next`]) with its own CDIs and destroys them before jumping.
//! 3. `CDI_Attest` changes whenever any input changes, so it identifies exactly
//!    what booted: [`derive_attestation_keypair_seed`] turns it into the Ed25519
//!    `CDI_Private` key (whose public key and [`derive_cdi_id`] name the layer in
//!    certificates) that certifies the device's attestation key. The same
//!    derivation applied to the UDS gives `UDS_Public`, certified at the factory.
//! 4. `CDI_Seal` depends only on authority, mode and hidden inputs: data sealed
//!    under it survives updates signed by the same authority, but not a change of
//!    signer or a switch to Debug mode.
//!
//! ```
//! use castellan_dice::{Mode, ed25519_cdi_id, rom_stage_cdis};
//!
//! # fn main() -> Result<(), castellan_dice::DiceError> {
//! let uds = [0x5a; 32]; // read from OTP by the ROM stage
//! let bootloader_sha256 = [0x11; 32]; // from the verified image's hash TLV
//! let root_key_hash = [0x22; 32]; // hash of the key that verified it
//! let cdis = rom_stage_cdis(&uds, &bootloader_sha256, &root_key_hash, Mode::Normal)?;
//! // ... lock the UDS here, then hand `cdis` to the bootloader ...
//! let cdi_id = ed25519_cdi_id(cdis.attest())?; // names the bootloader's CDI key
//! assert_eq!(cdi_id[0] & 0x80, 0);
//! # Ok(())
//! # }
//! ```
//!
//! Certificate generation (X.509 / CBOR CDI certificates) is not part of this
//! crate; the inputs it needs are the [`InputValues`], the keys and the IDs here.
//!
//! [Open Profile for DICE]: https://pigweed.googlesource.com/open-dice/+/HEAD/docs/specification.md
#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod derive;
mod error;
mod input;
mod keys;
mod rom;

pub use derive::{CDI_SIZE, Cdis, derive_cdis};
pub use error::DiceError;
pub use input::{
    Config, HASH_SIZE, HIDDEN_SIZE, INLINE_CONFIG_SIZE, InputValues, Mode,
    measurement_to_authority_hash, measurement_to_code_hash,
};
pub use keys::{
    ED25519_PUBLIC_KEY_SIZE, ID_SIZE, PRIVATE_KEY_SEED_SIZE, PrivateKeySeed,
    derive_attestation_keypair_seed, derive_cdi_id, ed25519_cdi_id, ed25519_public_key,
};
pub use rom::{ROM_STAGE_CONFIG, rom_stage_cdis, rom_stage_input_values};
