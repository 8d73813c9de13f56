//! Castellan host MCU simulator: NOR flash, OTP fuses, UDS and RNG that implement the
//! `castellan-hal` traits, enforce the rules of real parts, and lose power on command, so that
//! boot and storage code can be proven safe by exhaustive power-loss injection.
//!
//! ```text
//!  harness / CLI / tests
//!     │  SimDevice::new(config, seed) · open(dir) · snapshot() · restore() · arm(FaultPlan)
//!     ▼
//!  SimDevice ── PowerRail (op count, fault plan) ── SimFlash · SimOtp · SimUds · SimRng
//!     │ implement castellan_hal::{Flash, OtpFuses, HardwareUniqueSecret, RandomSource}
//!     ▼
//!  boot / secure services, generic over the HAL traits
//! ```
//!
//! Design choices:
//! - **Run-time geometry.** Write size, sector size and erased value are fields of
//!   [`FlashConfig`], not const generics: one [`SimFlash`] type covers the 8-way power-loss
//!   matrix ([`FlashConfig::matrix`]) and a CLI opening a device whose geometry is in a file. As
//!   in MCUboot's simulator, the alignment is a run-time value: generic code reads
//!   `Flash::write_size()`; the `NorFlash` constants of `SimFlash` are 1 and the real rules are
//!   enforced at run time.
//! - **Fast and deterministic.** State is in memory (no file I/O on the hot path);
//!   [`SimDevice::snapshot`]/[`SimDevice::restore`] share pages; torn-write garbage, the seeded
//!   RNG and the UDS of [`SimDevice::new`] come from seeds, never from the OS.
//! - **Power loss.** See [`power`]: a [`FaultPlan`] cuts before, in the middle of (torn), or after
//!   any mutating operation; the device then stays off until [`SimDevice::power_cycle`].
//! - **Copy-on-write flash.** A flash is a list of pages (4 KiB at most), erased pages hold no
//!   memory, and pages are shared with a [`FlashBase`], snapshots, clones and identical pages
//!   of other devices until written, so a fleet of devices costs what they hold apart.
//! - **Counters** are `castellan_hal::OtpCounter` over [`SimOtp`], as on real parts, so they
//!   share the fuses' persistence and power-loss behaviour.

#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod device;
mod error;
mod flash;
mod journal;
mod otp;
mod pages;
mod persist;
pub mod power;
mod prng;
mod secret;

pub use device::{DeviceConfig, DeviceSnapshot, PartitionDesc, SimDevice};
pub use error::SimError;
pub use flash::{ERASED_VALUES, FlashConfig, FlashSnapshot, FlashStats, SimFlash, WRITE_SIZES};
pub use journal::FLASH_JOURNAL_FILE;
pub use otp::{OtpConfig, SimOtp};
pub use pages::{FlashBase, FlashMemory};
pub use persist::{DEVICE_FILE, FLASH_FILE, OTP_FILE};
pub use power::{FaultPhase, FaultPlan, PowerRail};
pub use secret::{SimRng, SimUds};
