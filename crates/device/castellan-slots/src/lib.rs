//! Castellan slots: what the running image and its secure partition share with the bootloader,
//! without the swap engine (as MCUboot splits `bootutil_public` from its loader). `no_std`,
//! without heap, generic over the `castellan-hal` traits.
//!
//! ```text
//!  castellan-boot (ROM stage, bootloader, swap engine) ──┐ re-exports
//!                                                        ▼
//!  castellan-slots  layout     FlashLayout · Geometry · partition names
//!                   trailer    SlotTrailer · read_slot_trailer · request_upgrade · confirm_image
//!                   flash      SlotReader (a slot as an image source) · padded writes
//!                   measure    Measurement · BootRecord · SwType
//!                   report     BootReport · Lifecycle · CounterChange
//!                   verdict    UpgradeAction · InstallKind · UpgradeRefusal · DowngradePolicy
//!                   error      BootError (one error type for the boot chain and this side of it)
//!                                                        ▲
//!  castellan-services (secure partition: FWU, update client, attestation) ──┘
//! ```
//!
//! The slot trailer keeps MCUboot's format and offsets (magic, image_ok, copy_done, swap_info,
//! swap_size, `max_align = max(8, write size)`): the running image requests an upgrade
//! ([`request_upgrade`], MCUboot's `boot_set_pending`) and confirms a test image
//! ([`confirm_image`], `boot_set_confirmed`); the bootloader reads and writes the same fields.
//! The flash layout and the swap journal are described in castellan-boot's crate doc.

#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod error;
mod flash;
mod layout;
mod measure;
mod report;
mod trailer;
mod verdict;

pub use error::BootError;
pub use flash::{SlotReader, data_end, erase_sector, write_padded};
pub use layout::{
    COPY_CHUNK, FlashLayout, Geometry, PARTITION_BOOTLOADER, PARTITION_PRIMARY, PARTITION_SCRATCH,
    PARTITION_SECONDARY, PARTITION_STATUS, align_up,
};
pub use measure::{BOOT_RECORD_CAPACITY, BootRecord, Measurement, SW_TYPE_MAX, SwType};
pub use report::{BootReport, CounterChange, Lifecycle, Slot};
pub use trailer::{
    SlotTrailer, confirm_image, mark_request, read_slot_trailer, request_upgrade, swap_info_byte,
    write_trailer,
};
pub use verdict::{DowngradePolicy, InstallKind, UpgradeAction, UpgradeRefusal};
