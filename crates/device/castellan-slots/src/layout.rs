//! Where things are in flash ([`FlashLayout`]) and the flash geometry the boot code works with
//! ([`Geometry`]: write size, sector size and erased value, read at run time from the HAL).

use castellan_hal::{Flash, Partition};
use castellan_image::trailer::{DEFAULT_MAX_ALIGN, TrailerLayout};

use crate::BootError;

/// Name of the bootloader partition in a device description.
pub const PARTITION_BOOTLOADER: &str = "bootloader";
/// Name of the primary slot (the image that runs).
pub const PARTITION_PRIMARY: &str = "primary";
/// Name of the secondary slot (the upgrade candidate, or the previous image after a swap).
pub const PARTITION_SECONDARY: &str = "secondary";
/// Name of the scratch partition (one sector buffer of the swap).
pub const PARTITION_SCRATCH: &str = "scratch";
/// Name of the swap status journal partition.
pub const PARTITION_STATUS: &str = "status";

/// Size of the stack buffer used to copy flash (a multiple of every supported write size).
pub const COPY_CHUNK: usize = 512;

/// The partitions the boot stages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlashLayout {
    /// The bootloader image, verified by the ROM stage.
    pub bootloader: Partition,
    /// The primary slot: the application image that boots.
    pub primary: Partition,
    /// The secondary slot: where an upgrade is staged (same size as the primary).
    pub secondary: Partition,
    /// One sector (or more; only the first is used) of swap buffer. Needed by swap upgrades.
    pub scratch: Option<Partition>,
    /// The swap status journal (see the crate doc). Needed by swap upgrades.
    pub status: Option<Partition>,
}

impl FlashLayout {
    /// Builds the layout from a partition table looked up by name ([`PARTITION_BOOTLOADER`],
    /// [`PARTITION_PRIMARY`], [`PARTITION_SECONDARY`], and optionally [`PARTITION_SCRATCH`] and
    /// [`PARTITION_STATUS`]), e.g. `FlashLayout::from_table(|n| device.partition(n))`.
    pub fn from_table(lookup: impl Fn(&str) -> Option<Partition>) -> Result<Self, BootError> {
        let need = |name: &str, msg: &'static str| lookup(name).ok_or(BootError::Layout(msg));
        Ok(FlashLayout {
            bootloader: need(PARTITION_BOOTLOADER, "no \"bootloader\" partition")?,
            primary: need(PARTITION_PRIMARY, "no \"primary\" partition")?,
            secondary: need(PARTITION_SECONDARY, "no \"secondary\" partition")?,
            scratch: lookup(PARTITION_SCRATCH),
            status: lookup(PARTITION_STATUS),
        })
    }

    /// Checks the layout against the flash: every partition inside it, sector-aligned and
    /// disjoint; slots of equal size with room for the trailer; for swap upgrades a scratch
    /// partition and a status journal large enough for a whole-slot swap.
    pub fn validate<F: Flash>(&self, flash: &F, swap: bool) -> Result<Geometry, BootError> {
        let g = Geometry::of(flash)?;
        let parts = [
            Some(self.bootloader),
            Some(self.primary),
            Some(self.secondary),
            self.scratch,
            self.status,
        ];
        for (i, p) in parts.iter().enumerate() {
            let Some(p) = p else { continue };
            p.validate(flash).map_err(|_| {
                BootError::Layout("partitions must be sector-aligned, inside the flash")
            })?;
            if p.size == 0 {
                return Err(BootError::Layout("partitions must not be empty"));
            }
            for q in parts.iter().skip(i + 1).flatten() {
                let (ps, pe) = (u64::from(p.offset), u64::from(p.offset) + u64::from(p.size));
                let (qs, qe) = (u64::from(q.offset), u64::from(q.offset) + u64::from(q.size));
                if qs < pe && ps < qe {
                    return Err(BootError::Layout("partitions must not overlap"));
                }
            }
        }
        if self.primary.size != self.secondary.size {
            return Err(BootError::Layout(
                "primary and secondary slots must have the same size",
            ));
        }
        if g.trailer_reserved() >= g.sector {
            return Err(BootError::Layout(
                "the slot trailer must fit in the last sector",
            ));
        }
        if swap {
            if self.scratch.is_none() {
                return Err(BootError::Layout(
                    "swap upgrades need a \"scratch\" partition",
                ));
            }
            let status = self.status.ok_or(BootError::Layout(
                "swap upgrades need a \"status\" partition",
            ))?;
            let sectors = self.slot_sectors(&g);
            let needed =
                u64::from(g.status_header_len()) + 3 * u64::from(sectors) * u64::from(g.write);
            if needed > u64::from(status.size) {
                return Err(BootError::Layout(
                    "the status partition is too small to journal a whole-slot swap",
                ));
            }
        }
        Ok(g)
    }

    /// Sectors per slot.
    pub fn slot_sectors(&self, g: &Geometry) -> u32 {
        self.primary.size / g.sector
    }
}

/// Flash geometry, read at run time from [`Flash::write_size`], [`Flash::erase_size`] and
/// [`Flash::erased_value`] (never from the `NorFlash` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Write unit in bytes.
    pub write: u32,
    /// Sector (erase unit) in bytes.
    pub sector: u32,
    /// Value of an erased byte.
    pub erased: u8,
    /// Alignment of the trailer fields: `max(8, write)`, as imgtool chooses it.
    pub max_align: u32,
}

impl Geometry {
    /// The geometry of `flash`. Write sizes up to the copy buffer (512 bytes) are supported.
    pub fn of<F: Flash>(flash: &F) -> Result<Self, BootError> {
        let write =
            u32::try_from(flash.write_size()).map_err(|_| BootError::Layout("write size"))?;
        let sector =
            u32::try_from(flash.erase_size()).map_err(|_| BootError::Layout("sector size"))?;
        if !write.is_power_of_two() || write as usize > COPY_CHUNK {
            return Err(BootError::Layout(
                "write size must be a power of two up to 512 bytes",
            ));
        }
        if !sector.is_power_of_two() || sector < write {
            return Err(BootError::Layout(
                "sector size must be a power of two, at least the write size",
            ));
        }
        Ok(Geometry {
            write,
            sector,
            erased: flash.erased_value(),
            max_align: write.max(DEFAULT_MAX_ALIGN),
        })
    }

    /// Bytes reserved at the end of a slot for the trailer (MCUboot's fields, without its swap
    /// status area: Castellan journals swaps in the status partition).
    pub const fn trailer_reserved(&self) -> u32 {
        TrailerLayout::trailer_size(self.write, self.max_align, 0, false)
    }

    /// Length of the journal header record.
    pub const fn status_header_len(&self) -> u32 {
        align_up(16, self.write)
    }

    /// The trailer layout of a slot of `slot_size` bytes.
    pub const fn trailer(&self, slot_size: u32) -> TrailerLayout {
        TrailerLayout::new(slot_size, self.max_align)
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub const fn align_up(n: u32, align: u32) -> u32 {
    (n + align - 1) & !(align - 1)
}
