//! A device description: flash geometry (size, sector, the write sizes and erased values it comes
//! in), named partitions packed one after the other from address 0, and the fuse bank; and the
//! simulator and bootloader views of it.
//!
//! ```text
//!  DeviceSpec ──flash(write, erased)──▶ FlashConfig ──config()──▶ DeviceConfig (partition table)
//!      │                                                               │
//!      └──geometries(): every write size × erased value                └──layout()──▶ FlashLayout
//! ```

use std::borrow::Cow;

use castellan_boot::{
    BootError, FlashLayout, PARTITION_BOOTLOADER, PARTITION_PRIMARY, PARTITION_SCRATCH,
    PARTITION_SECONDARY, PARTITION_STATUS,
};
use castellan_hal::Partition;
use castellan_sim::{DeviceConfig, FlashConfig, OtpConfig};

/// Name of the trusted-storage log partition (two banks).
pub const PARTITION_ITS: &str = "its";
/// Name of the trusted-storage key partition (the wrapped storage key).
pub const PARTITION_ITS_KEY: &str = "its-key";

/// The fuse bank of every catalog device: 64 words (256 bytes) in lock regions of 8 words.
pub const DEFAULT_OTP: OtpConfig = OtpConfig {
    words: 64,
    region_words: 8,
};

/// A named partition of a [`DeviceSpec`]; it starts where the one before it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Part {
    /// Name the boot code, the services and the command line look it up by.
    pub name: &'static str,
    /// Length in bytes (a multiple of the sector size).
    pub size: u32,
}

impl Part {
    /// A partition of `size` bytes called `name`.
    pub const fn new(name: &'static str, size: u32) -> Self {
        Part { name, size }
    }
}

/// How many of [`swap_layout`]'s partitions the boot chain uses (the rest is trusted storage).
pub const BOOT_PARTS: usize = 5;

/// The partitions of a device with swap upgrades and trusted storage, in flash order:
/// bootloader, primary and secondary slots, scratch and status (one sector each), the storage
/// key (one sector) and the trusted-storage log (`its` bytes: two banks).
pub const fn swap_layout(sector: u32, bootloader: u32, slot: u32, its: u32) -> [Part; 7] {
    [
        Part::new(PARTITION_BOOTLOADER, bootloader),
        Part::new(PARTITION_PRIMARY, slot),
        Part::new(PARTITION_SECONDARY, slot),
        Part::new(PARTITION_SCRATCH, sector),
        Part::new(PARTITION_STATUS, sector),
        Part::new(PARTITION_ITS_KEY, sector),
        Part::new(PARTITION_ITS, its),
    ]
}

/// The bytes `parts` take, packed from address 0.
pub const fn packed_size(parts: &[Part]) -> u32 {
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        total += parts[i].size;
        i += 1;
    }
    total
}

/// One device of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Short name (`castellan_devkit::by_name`).
    pub name: &'static str,
    /// What the device is for, in one line.
    pub summary: &'static str,
    /// Flash capacity in bytes (what the partitions leave is unused).
    pub flash_size: u32,
    /// Flash erase unit in bytes.
    pub sector_size: u32,
    /// The write sizes the device is built and tested with (the first is the default).
    pub write_sizes: &'static [u32],
    /// The erased values the device is built and tested with (the first is the default).
    pub erased_values: &'static [u8],
    /// The partitions, in flash order from address 0.
    pub parts: Cow<'static, [Part]>,
    /// The fuse bank.
    pub otp: OtpConfig,
}

impl DeviceSpec {
    /// The flash of this device with `write_size` and `erased_value`.
    pub fn flash(&self, write_size: u32, erased_value: u8) -> FlashConfig {
        FlashConfig::new(self.flash_size, self.sector_size, write_size, erased_value)
    }

    /// The flash with the first write size and erased value.
    pub fn default_flash(&self) -> FlashConfig {
        let write = self.write_sizes.first().copied().unwrap_or(4);
        let erased = self.erased_values.first().copied().unwrap_or(0xFF);
        self.flash(write, erased)
    }

    /// Every flash geometry of the device: for each erased value, each write size (the order of
    /// `castellan_sim::FlashConfig::matrix`).
    pub fn geometries(&self) -> impl Iterator<Item = FlashConfig> + '_ {
        self.erased_values
            .iter()
            .flat_map(move |e| self.write_sizes.iter().map(move |w| self.flash(*w, *e)))
    }

    /// The partitions with their place in the flash.
    pub fn partitions(&self) -> impl Iterator<Item = (&'static str, Partition)> + '_ {
        self.parts.iter().scan(0u32, |offset, p| {
            let at = *offset;
            *offset += p.size;
            Some((p.name, Partition::new(at, p.size)))
        })
    }

    /// The partition called `name`.
    pub fn partition(&self, name: &str) -> Option<Partition> {
        self.partitions().find(|(n, _)| *n == name).map(|(_, p)| p)
    }

    /// The simulated device with flash `flash`: its fuse bank and partition table.
    pub fn config(&self, flash: FlashConfig) -> DeviceConfig {
        let mut config = DeviceConfig::new(flash);
        config.otp = self.otp;
        self.partitions().fold(config, |c, (name, p)| {
            c.with_partition(name, p.offset, p.size)
        })
    }

    /// [`DeviceSpec::config`] with the default flash.
    pub fn device_config(&self) -> DeviceConfig {
        self.config(self.default_flash())
    }

    /// The bootloader's view of the partition table (`Err` for a device without boot slots).
    pub fn layout(&self) -> Result<FlashLayout, BootError> {
        FlashLayout::from_table(|name| self.partition(name))
    }
}
