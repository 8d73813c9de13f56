//! Castellan hardware abstraction: the traits that boot code and secure services are written
//! against, implemented by the Cortex-M33 platform and by the host simulator (`castellan-sim`).
//!
//! ```text
//!  boot (ROM stage, bootloader) · secure services (ITS, attestation, update)
//!        │ generic over
//!  ┌─────┴──────────────────────────────────────────────────────────────────┐
//!  │ Flash (NorFlash + run-time geometry)  OtpFuses   MonotonicCounter      │
//!  │ RandomSource   HardwareUniqueSecret   Partition / FlashRegion          │
//!  └─────┬──────────────────────────────────────────────────────────────────┘
//!        │ implemented by
//!  mps2-an505 drivers (firmware)  ·  castellan-sim (host, power-loss injection)
//! ```
//!
//! Every trait reports failures with the one error type [`HalError`]. A power cut anywhere is
//! [`HalError::PowerLoss`]: the caller must stop at once, as the real CPU would.

#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod counter;
mod error;
mod flash;
mod otp;
mod rng;
mod uds;

pub use counter::{MonotonicCounter, OtpCounter};
pub use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
pub use error::HalError;
pub use flash::{Flash, FlashRegion, Partition};
pub use otp::{OTP_WORD_BITS, OtpFuses};
pub use rng::RandomSource;
pub use uds::{HardwareUniqueSecret, UDS_LEN};
