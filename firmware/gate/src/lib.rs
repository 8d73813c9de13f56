//! The call gate between the non-secure application and the secure partition of mps2-an505:
//! the only way in. Each entry point is an `extern "cmse-nonsecure-entry"` function of the
//! secure partition (GNU ld puts an `SG; B.W` veneer for it in the non-secure-callable page).
//! What both sides agree on — operations, argument layouts, caps, status codes, records — is
//! declared once in `castellan-gate-api` and re-exported here; this crate adds the board's
//! entry point names and, with the `client` feature, the non-secure side's [`client::Veneers`]
//! (a `SecureGate` over the veneers).
//!
//! ```text
//!  non-secure app ── BL csl_x (veneer, NSC page) ── SG ── B.W __acle_se_csl_x ── secure code
//!                                                         │ castellan_gate_api::dispatch:
//!                                                         │ TTAT range checks, copy in,
//!                                                         │ work, copy out
//!                  ◀──────────────── BXNS lr (registers scrubbed) ─────────────┘
//! ```
//!
//! Entry points take at most four 32-bit arguments (registers only: the secure side never reads
//! the non-secure stack) and return a PSA status (`< 0`) or a non-negative result.
#![no_std]
#![cfg_attr(not(feature = "client"), forbid(unsafe_code))]

pub use castellan_gate_api::*;

/// The device class this firmware belongs to: manifests must name its class id
/// (`castellan_suit::ids::class_id(vendor_id("castellan"), "an505-v1")`).
pub const DEVICE_CLASS: &str = "an505-v1";

/// The vendor name the device's vendor id derives from (`castellan_suit::ids::DEFAULT_VENDOR`).
pub const VENDOR: &str = "castellan";

#[cfg(feature = "client")]
pub mod client;
