//! The catalog: every reference device, one definition each, and the list tests and proofs
//! iterate (as MCUboot's simulator iterates its device list).
//!
//! | device | flash | partitions (packed from 0) | geometries | used by |
//! |---|---|---|---|---|
//! | `reference` | 348 KiB, 4 KiB sectors | bootloader 64 KiB, slots 128 KiB, scratch, status, its-key, its (4 sectors) | write 4, erased 0xFF | agent, CLI, demo |
//! | `boot-matrix` | 8 KiB, 512 B sectors | bootloader 1, slots 4, scratch 1, status 1 (sectors) | write 1, 4, 8, 16 × erased 0xFF, 0x00 | power-loss sweep, boot tests |
//! | `update-matrix` | 12 KiB, 512 B sectors | `boot-matrix`'s, then its-key 1, its 8 | write 1, 4, 8, 16 × erased 0xFF, 0x00 | power-loss update sweep |
//! | `services-its` | 8 KiB, 512 B sectors | its-key 1, its 4 | write 4, 1, 8, 16 × erased 0xFF, 0x00 | secure services tests |
//! | `services-update` | 32 KiB, 1 KiB sectors | bootloader 4, slots 8, scratch 1, status 1, its-key 1, its 4 | write 4, 16 × erased 0xFF | update client tests |
//! | `services-fwu` | 32 KiB, 1 KiB sectors | as `services-update` with its 2 | write 4, 16 × erased 0xFF | firmware-update service tests |

use std::borrow::Cow;

use castellan_sim::{ERASED_VALUES, WRITE_SIZES};

pub use crate::reference::REFERENCE;
use crate::spec::{
    BOOT_PARTS, DEFAULT_OTP, DeviceSpec, PARTITION_ITS, PARTITION_ITS_KEY, Part, swap_layout,
};

/// Sector of the small power-loss devices.
const SMALL_SECTOR: u32 = 512;
/// Sector of the services' update devices.
const SERVICES_SECTOR: u32 = 1024;

/// The power-loss devices: bootloader 1 sector, slots 4, scratch 1, status 1, storage key 1,
/// trusted storage 8 (two banks of 2 KiB).
const MATRIX_PARTS: [Part; 7] = swap_layout(
    SMALL_SECTOR,
    SMALL_SECTOR,
    4 * SMALL_SECTOR,
    8 * SMALL_SECTOR,
);

/// The boot chain's power-loss device: 8 KiB of flash in 512-byte sectors, the boot
/// partitions, in every write size (1, 4, 8, 16) and erased value (0xFF, 0x00). The power-loss
/// sweep runs every scenario (swap and overwrite-only) on each geometry.
///
/// ```text
///  0x0000 bootloader (1 sector) · 0x0200 primary (4) · 0x0A00 secondary (4)
///  0x1200 scratch (1) · 0x1400 status (1) · rest unused
/// ```
pub const BOOT_MATRIX: DeviceSpec = DeviceSpec {
    name: "boot-matrix",
    summary: "the boot chain's power-loss and upgrade-cycle device, every write size and erased value",
    flash_size: 16 * SMALL_SECTOR,
    sector_size: SMALL_SECTOR,
    write_sizes: &WRITE_SIZES,
    erased_values: &ERASED_VALUES,
    parts: Cow::Borrowed(MATRIX_PARTS.split_at(BOOT_PARTS).0),
    otp: DEFAULT_OTP,
};

/// The over-the-air update's power-loss device: [`BOOT_MATRIX`]'s partitions, then the storage
/// key (1 sector) and trusted storage (8 sectors: two banks of 2 KiB) in 12 KiB.
pub const UPDATE_MATRIX: DeviceSpec = DeviceSpec {
    name: "update-matrix",
    summary: "the over-the-air update's power-loss device: boot slots and trusted storage",
    flash_size: 24 * SMALL_SECTOR,
    parts: Cow::Borrowed(&MATRIX_PARTS),
    ..BOOT_MATRIX
};

/// The secure services' storage device: 8 KiB in 512-byte sectors, the storage key in sector
/// 0 and trusted storage in sectors 1..5 (two banks of 1 KiB); no boot slots.
pub const SERVICES_ITS: DeviceSpec = DeviceSpec {
    name: "services-its",
    summary: "the secure services' trusted-storage device (no boot slots)",
    flash_size: 16 * SMALL_SECTOR,
    sector_size: SMALL_SECTOR,
    write_sizes: &[4, 1, 8, 16],
    erased_values: &[0xFF, 0x00],
    parts: Cow::Borrowed(&[
        Part::new(PARTITION_ITS_KEY, SMALL_SECTOR),
        Part::new(PARTITION_ITS, 4 * SMALL_SECTOR),
    ]),
    otp: DEFAULT_OTP,
};

/// The update client's device: 32 KiB in 1 KiB sectors, bootloader (4 sectors), slots (8),
/// scratch, status, storage key, trusted storage (4); write sizes 4 and 16, erased 0xFF.
pub const SERVICES_UPDATE: DeviceSpec = DeviceSpec {
    name: "services-update",
    summary: "the update client's device: boot slots (swap) and trusted storage",
    flash_size: 32 * SERVICES_SECTOR,
    sector_size: SERVICES_SECTOR,
    write_sizes: &[4, 16],
    erased_values: &[0xFF],
    parts: Cow::Borrowed(&swap_layout(
        SERVICES_SECTOR,
        4 * SERVICES_SECTOR,
        8 * SERVICES_SECTOR,
        4 * SERVICES_SECTOR,
    )),
    otp: DEFAULT_OTP,
};

/// The firmware-update service's device: [`SERVICES_UPDATE`] with trusted storage of 2
/// sectors.
pub const SERVICES_FWU: DeviceSpec = DeviceSpec {
    name: "services-fwu",
    summary: "the firmware-update service's device: boot slots (swap) and a small trusted storage",
    parts: Cow::Borrowed(&swap_layout(
        SERVICES_SECTOR,
        4 * SERVICES_SECTOR,
        8 * SERVICES_SECTOR,
        2 * SERVICES_SECTOR,
    )),
    ..SERVICES_UPDATE
};

static CATALOG: [DeviceSpec; 6] = [
    REFERENCE,
    BOOT_MATRIX,
    UPDATE_MATRIX,
    SERVICES_ITS,
    SERVICES_UPDATE,
    SERVICES_FWU,
];

/// Every device of the catalog.
pub fn catalog() -> &'static [DeviceSpec] {
    &CATALOG
}

/// The catalog device called `name`.
pub fn by_name(name: &str) -> Option<&'static DeviceSpec> {
    CATALOG.iter().find(|d| d.name == name)
}
