//! NOR flash: the [`Flash`] trait (an `embedded-storage` `NorFlash` that also tells its geometry
//! at run time) and the means to cut one flash into partitions ([`Partition`], [`FlashRegion`]).
//!
//! ```text
//!  flash (capacity bytes, sectors of erase_size() bytes)
//!  ┌──────────────┬────────────────────────┬────────────────────────┬─────────┐
//!  │ bootloader   │ primary slot           │ secondary slot         │ scratch │
//!  └──────────────┴────────────────────────┴────────────────────────┴─────────┘
//!   Partition { offset, size }: offsets relative to the partition, bounds-checked
//! ```
//!
//! Rules every implementation follows (the simulator enforces them):
//! - a write unit (`write_size()` bytes, aligned) may be written once between two erases;
//! - writes are aligned to `write_size()` in offset and length, erases to `erase_size()`;
//! - an erased byte reads as `erased_value()` (0xFF on most parts, 0x00 on some).
//!
//! Generic code must take the geometry from [`Flash::write_size`], [`Flash::erase_size`] and
//! [`Flash::erased_value`], not from the `NorFlash` constants: a flash whose geometry is chosen at
//! run time (the simulator) declares the weakest constants (1) and checks the real values.

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};

use crate::HalError;

/// A NOR flash with run-time geometry and the project's error type.
pub trait Flash: NorFlash<Error = HalError> {
    /// Write granularity in bytes (a power of two): offsets and lengths of writes are multiples.
    fn write_size(&self) -> usize {
        Self::WRITE_SIZE
    }

    /// Sector (erase) size in bytes (a power of two, a multiple of `write_size()`).
    fn erase_size(&self) -> usize {
        Self::ERASE_SIZE
    }

    /// Value of every byte of an erased sector (0xFF or 0x00).
    fn erased_value(&self) -> u8;

    /// True when every byte of `offset..offset + len` reads as the erased value.
    ///
    /// A range may read erased and still have been written since its last erase (with
    /// erased-value bytes); such units cannot be written again before an erase.
    fn is_erased(&mut self, offset: u32, len: u32) -> Result<bool, HalError> {
        let erased = Self::erased_value(self);
        let mut buf = [0u8; 64];
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(buf.len() as u32);
            let chunk = buf.get_mut(..n as usize).ok_or(HalError::OutOfBounds)?;
            let at = offset.checked_add(done).ok_or(HalError::OutOfBounds)?;
            self.read(at, chunk)?;
            if chunk.iter().any(|b| *b != erased) {
                return Ok(false);
            }
            done += n;
        }
        Ok(true)
    }
}

impl<F: Flash> Flash for &mut F {
    fn write_size(&self) -> usize {
        F::write_size(self)
    }
    fn erase_size(&self) -> usize {
        F::erase_size(self)
    }
    fn erased_value(&self) -> u8 {
        F::erased_value(self)
    }
}

/// An (unnamed) partition of a flash: `size` bytes from `offset`, both sector-aligned.
///
/// A `Partition` holds no reference to the flash, so a bootloader can keep several (primary,
/// secondary, scratch) and use them on one `&mut F` in turn. Offsets given to its methods are
/// relative to the partition start and bounds-checked against its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    /// Start of the partition in the flash, in bytes.
    pub offset: u32,
    /// Length of the partition in bytes.
    pub size: u32,
}

impl Partition {
    /// A partition of `size` bytes at `offset` (checked by [`Partition::validate`] when used).
    pub const fn new(offset: u32, size: u32) -> Self {
        Partition { offset, size }
    }

    /// Checks that the partition lies inside `flash` and starts and ends on sector boundaries.
    pub fn validate<F: Flash>(&self, flash: &F) -> Result<(), HalError> {
        let end = self
            .offset
            .checked_add(self.size)
            .ok_or(HalError::OutOfBounds)?;
        if end as usize > flash.capacity() {
            return Err(HalError::OutOfBounds);
        }
        let sector = flash.erase_size() as u32;
        if sector == 0 || self.offset % sector != 0 || self.size % sector != 0 {
            return Err(HalError::NotAligned);
        }
        Ok(())
    }

    /// Absolute flash offset of `offset..offset + len` inside the partition.
    pub fn absolute(&self, offset: u32, len: usize) -> Result<u32, HalError> {
        let len = u32::try_from(len).map_err(|_| HalError::OutOfBounds)?;
        let end = offset.checked_add(len).ok_or(HalError::OutOfBounds)?;
        if end > self.size {
            return Err(HalError::OutOfBounds);
        }
        self.offset.checked_add(offset).ok_or(HalError::OutOfBounds)
    }

    /// Reads `buf.len()` bytes at partition-relative `offset`.
    pub fn read<F: Flash>(
        &self,
        flash: &mut F,
        offset: u32,
        buf: &mut [u8],
    ) -> Result<(), HalError> {
        let at = self.absolute(offset, buf.len())?;
        flash.read(at, buf)
    }

    /// Writes `data` at partition-relative `offset` (alignment is checked by the flash).
    pub fn write<F: Flash>(&self, flash: &mut F, offset: u32, data: &[u8]) -> Result<(), HalError> {
        let at = self.absolute(offset, data.len())?;
        flash.write(at, data)
    }

    /// Erases partition-relative `from..to` (sector-aligned; `from > to` is out of bounds).
    pub fn erase<F: Flash>(&self, flash: &mut F, from: u32, to: u32) -> Result<(), HalError> {
        let len = to.checked_sub(from).ok_or(HalError::OutOfBounds)?;
        let at = self.absolute(from, len as usize)?;
        let end = at.checked_add(len).ok_or(HalError::OutOfBounds)?;
        flash.erase(at, end)
    }

    /// Erases the whole partition.
    pub fn erase_all<F: Flash>(&self, flash: &mut F) -> Result<(), HalError> {
        self.erase(flash, 0, self.size)
    }

    /// True when partition-relative `offset..offset + len` reads as erased.
    pub fn is_erased<F: Flash>(
        &self,
        flash: &mut F,
        offset: u32,
        len: u32,
    ) -> Result<bool, HalError> {
        let at = self.absolute(offset, len as usize)?;
        flash.is_erased(at, len)
    }
}

/// A partition of a flash seen as a flash of its own (offset 0 = partition start).
///
/// `F` may be owned or a `&mut` borrow (`&mut F` is a [`Flash`] too).
#[derive(Debug)]
pub struct FlashRegion<F> {
    flash: F,
    part: Partition,
}

impl<F: Flash> FlashRegion<F> {
    /// Wraps `flash`, restricted to `part` (validated: inside the flash, sector-aligned).
    pub fn new(flash: F, part: Partition) -> Result<Self, HalError> {
        part.validate(&flash)?;
        Ok(FlashRegion { flash, part })
    }

    /// The partition this region covers.
    pub fn partition(&self) -> Partition {
        self.part
    }

    /// The whole underlying flash.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the underlying flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }
}

impl<F: Flash> ErrorType for FlashRegion<F> {
    type Error = HalError;
}

impl<F: Flash> ReadNorFlash for FlashRegion<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), HalError> {
        self.part.read(&mut self.flash, offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.part.size as usize
    }
}

impl<F: Flash> NorFlash for FlashRegion<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), HalError> {
        self.part.erase(&mut self.flash, from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), HalError> {
        self.part.write(&mut self.flash, offset, bytes)
    }
}

impl<F: Flash> Flash for FlashRegion<F> {
    fn write_size(&self) -> usize {
        self.flash.write_size()
    }
    fn erase_size(&self) -> usize {
        self.flash.erase_size()
    }
    fn erased_value(&self) -> u8 {
        self.flash.erased_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_offsets_are_bounds_checked_without_overflow() {
        let p = Partition::new(4096, 8192);
        assert_eq!(p.absolute(0, 8192), Ok(4096));
        assert_eq!(p.absolute(100, 16), Ok(4196));
        assert_eq!(p.absolute(8190, 4), Err(HalError::OutOfBounds));
        assert_eq!(p.absolute(u32::MAX, 2), Err(HalError::OutOfBounds));
        assert_eq!(p.absolute(0, usize::MAX), Err(HalError::OutOfBounds));
        let high = Partition::new(u32::MAX - 10, 20);
        assert_eq!(high.absolute(15, 1), Err(HalError::OutOfBounds));
    }
}
