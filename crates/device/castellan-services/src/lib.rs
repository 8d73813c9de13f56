//! Castellan secure services: the secure partition's Crypto, Internal Trusted Storage, Initial
//! Attestation, Firmware Update and lifecycle services, shaped after the PSA Certified APIs
//! (and TF-M's semantics and status codes) so that a TrustZone call gate can expose them one
//! call and one `psa_status_t` at a time. `no_std`, no heap; the `std` feature (default, off
//! for devices: the workspace dependency disables it) builds for the host with every algorithm.
//! The simulator glue is `castellan-devkit`'s `sim_services`, the exhaustive power-loss campaign
//! over trusted storage `castellan-powerfail`'s `its`.
//!
//! # Starting the services
//!
//! ```text
//!  let report = castellan_boot::boot(&mut flash, &mut otp, &mut uds, &layout, &boot_config)?;
//!  let platform = Platform::new(flash, OtpCounterMap::castellan(otp)?, rng);
//!  let config = ServicesConfig::new(ItsConfig::new(its_area, its_key_area), implementation_id)
//!      .with_fwu(FwuConfig::new(layout, TrustedKey::Sha256OfSpki(app_key_hash), true))
//!      .with_update(UpdateConfig::for_class("castellan", "sensor-v1"));
//!  let mut services = SecureServices::from_boot_report(platform, config, &report)?;
//!  // call gate: status_of(&services.its_set(uid, data, flags)) → i32 …
//! ```
//!
//! ```text
//!  boot chain ── Cdis (CDI_Attest, CDI_Seal) + boot record ──┐
//!                                                            ▼
//!  NS call gate ──▶ SecureServices<F: Flash, C: MonotonicCounter, R: RandomSource>
//!                    ├─ its        log-structured store, AES-256-GCM, intent/commit replay counters
//!                    ├─ crypto     P-256 ECDSA, AES-GCM, HKDF-SHA-256; keys in RAM or in ITS
//!                    ├─ attest     RFC 9783 token, IAK derived from CDI_Seal
//!                    ├─ fwu        PSA FWU state machine over castellan-boot's slots
//!                    ├─ update     SUIT update client: manifest checks, download, install
//!                    └─ lifecycle  OTP thermometer; decommission = crypto-erase + fuse
//! ```
//!
//! # Keys and where they come from
//!
//! | key | derived from / made by | lives in | leaves the service? |
//! |---|---|---|---|
//! | storage wrapping key (SWK) | HKDF(CDI_Seal) | RAM (derived at boot) | never |
//! | storage root key (SRK) | RNG at format | key area, wrapped under SWK | never |
//! | attestation key (IAK) | HKDF(CDI_Seal) → P-256 | RAM | public key only |
//! | device identity key | RNG on the device at provisioning | ITS, namespace crypto | public key only |
//! | caller keys | generate / import / derive | RAM slots or ITS | only with `EXPORT` |
//!
//! How the attestation key is bound to the device is explained in [`attest`]; the storage
//! replay protection and its power-loss argument in [`its`].
//!
//! The ROM stage locks the UDS before the bootloader runs, so the hardware-unique secret that
//! reaches the secure partition is DICE `CDI_Seal` (stable across updates from the same signing
//! authority, changed by a new authority or debug mode). Sealing uses it, not the UDS; tests
//! derive the CDIs from the simulator's UDS with `castellan-dice`, as the ROM stage does.
//!
//! # Flash and OTP usage
//!
//! ```text
//!  flash:  key area (≥ 1 sector): wrapped SRK record (68 bytes + padding)
//!          ITS area (even number of sectors ≥ 2): two banks, log entries (see `its`)
//!  OTP:    word 16        lifecycle thermometer (shared with castellan-boot's OTP map)
//!          words 32..48   storage INTENT counter (512 values)
//!          words 48..64   storage COMMIT counter (512 values)
//! ```
//! (counter ids and words are configurable: [`OtpCounterMap`], [`ItsConfig`]). The update
//! service uses the bootloader's primary and secondary slots and their MCUboot trailers
//! (castellan-slots).
//!
//! # Errors
//!
//! One error type, [`ServiceError`]; [`ServiceError::psa_status`] gives the PSA status code a
//! call gate returns.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod aead;
pub mod attest;
pub mod crypto;
mod crypto_api;
#[cfg(feature = "detect")]
pub mod detect;
mod error;
pub mod fwu;
mod fwu_api;
pub mod gate;
pub mod its;
mod kdf;
pub mod lifecycle;
mod platform;
mod services;
pub mod update;
mod update_api;

pub use attest::{BootRecordEntry, ImageVersion};
pub use castellan_attest::Lifecycle;
pub use crypto::types::{
    Algorithm, KEY_ID_DEVICE_IDENTITY, KEY_ID_IAK, KeyAttributes, KeyId, KeyType, KeyUsage,
    Lifetime,
};
#[cfg(feature = "detect")]
pub use detect::DetectConfig;
pub use error::{ServiceError, UpdateRefusal, psa, status_of};
pub use fwu::{ComponentInfo, FwuConfig, FwuState, InstallStatus, LastBoot};
pub use its::{Its, ItsConfig, ItsFlags, ItsInfo, ItsStatus};
pub use platform::{
    LIFECYCLE_COUNTER, LIFECYCLE_WORD, MAX_MAPPED_COUNTERS, OtpCounterMap, Platform,
    STORAGE_COMMIT_COUNTER, STORAGE_COUNTER_WORD, STORAGE_COUNTER_WORDS, STORAGE_INTENT_COUNTER,
};
pub use services::{SecureServices, ServicesConfig};
pub use update::{UpdateConfig, UpdatePlan, UpdateState, UpdateStatus};
