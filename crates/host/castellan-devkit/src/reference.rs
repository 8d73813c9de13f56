//! The reference device: what the agent, the factory station, the demo and `castellan sim
//! create` build (with its defaults), and the options that command exposes.
//!
//! ```text
//!  flash (0x57000 bytes, 4 KiB sectors, write size 4, erased 0xFF)
//!  0x00000 bootloader (64 KiB) · 0x10000 primary (128 KiB) · 0x30000 secondary (128 KiB)
//!  0x50000 scratch (1 sector) · 0x51000 status (1) · 0x52000 its-key (1) · 0x53000 its (4)
//! ```
//!
//! Without swap (overwrite-only upgrades) there is no scratch nor status partition.

use std::borrow::Cow;

use castellan_boot::{PARTITION_SCRATCH, PARTITION_STATUS};
use castellan_sim::DeviceConfig;

use crate::spec::{DEFAULT_OTP, DeviceSpec, Part, packed_size, swap_layout};

/// Size of each image slot of the reference device.
pub const SLOT_SIZE: u32 = 0x20000;
/// Size of the bootloader partition of the reference device.
pub const BOOTLOADER_SIZE: u32 = 0x10000;
/// Flash sector size of the reference device.
pub const SECTOR_SIZE: u32 = 0x1000;
/// Flash write size of the reference device.
pub const WRITE_SIZE: u32 = 4;
/// Value of erased flash on the reference device.
pub const ERASED_VALUE: u8 = 0xFF;
/// Sectors of the trusted-storage log (two banks).
pub const ITS_SECTORS: u32 = 4;

/// The partitions of a reference device with these sizes, swap partitions included.
pub const fn parts(bootloader: u32, slot: u32, sector: u32) -> [Part; 7] {
    swap_layout(sector, bootloader, slot, ITS_SECTORS * sector)
}

/// The partitions of the reference device.
pub const PARTS: [Part; 7] = parts(BOOTLOADER_SIZE, SLOT_SIZE, SECTOR_SIZE);

/// The reference device (see the module documentation).
pub const REFERENCE: DeviceSpec = DeviceSpec {
    name: "reference",
    summary: "the device the agent, the factory station, the demo and `castellan sim create` build",
    flash_size: packed_size(&PARTS),
    sector_size: SECTOR_SIZE,
    write_sizes: &[WRITE_SIZE],
    erased_values: &[ERASED_VALUE],
    parts: Cow::Borrowed(&PARTS),
    otp: DEFAULT_OTP,
};

/// A reference device with other sizes or flash geometry (the options of `castellan sim
/// create`); [`ReferenceOptions::DEFAULT`] is [`REFERENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReferenceOptions {
    /// Size of each image slot.
    pub slot_size: u32,
    /// Size of the bootloader partition.
    pub bootloader_size: u32,
    /// Flash erase sector size.
    pub sector_size: u32,
    /// Flash write size.
    pub write_size: u32,
    /// Value of erased flash (0xFF or 0x00).
    pub erased_value: u8,
    /// Swap upgrades (scratch and status partitions); overwrite-only without.
    pub swap: bool,
}

impl ReferenceOptions {
    /// The options of [`REFERENCE`].
    pub const DEFAULT: ReferenceOptions = ReferenceOptions {
        slot_size: SLOT_SIZE,
        bootloader_size: BOOTLOADER_SIZE,
        sector_size: SECTOR_SIZE,
        write_size: WRITE_SIZE,
        erased_value: ERASED_VALUE,
        swap: true,
    };

    /// The reference device with image slots of `slot` bytes, at least [`SLOT_SIZE`], rounded
    /// up to whole sectors (devices that take larger releases: benchmarks).
    pub fn with_slot(slot: u32) -> ReferenceOptions {
        ReferenceOptions {
            slot_size: slot.max(SLOT_SIZE).next_multiple_of(SECTOR_SIZE),
            ..ReferenceOptions::DEFAULT
        }
    }

    /// The device these options describe.
    pub fn spec(&self) -> DeviceSpec {
        let swap_only = [PARTITION_SCRATCH, PARTITION_STATUS];
        let parts: Vec<Part> = parts(self.bootloader_size, self.slot_size, self.sector_size)
            .into_iter()
            .filter(|p| self.swap || !swap_only.contains(&p.name))
            .collect();
        DeviceSpec {
            flash_size: packed_size(&parts),
            sector_size: self.sector_size,
            parts: Cow::Owned(parts),
            ..REFERENCE
        }
    }

    /// The simulated device these options describe.
    pub fn device_config(&self) -> DeviceConfig {
        let spec = self.spec();
        spec.config(spec.flash(self.write_size, self.erased_value))
    }
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        ReferenceOptions::DEFAULT
    }
}
