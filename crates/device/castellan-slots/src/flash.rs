//! Flash access shared by the boot stages and the running image: a slot read in place as an
//! image ([`SlotReader`], keeping a flash failure apart from a bad image), and the padded writes
//! and sector erases the trailer fields are made of.

use castellan_hal::{Flash, HalError, Partition};
use castellan_image::{ImageError, ImageSource};

use crate::BootError;
use crate::layout::{COPY_CHUNK, Geometry, align_up};

/// A partition of a flash read as an [`ImageSource`].
///
/// A flash failure (a power cut above all) is returned to the image code as
/// [`ImageError::Read`] and kept here: callers ask [`SlotReader::hal_error`] before treating a
/// `Read` error as a verdict on the image, so that a power cut never makes a good image look
/// bad (and never gets a slot erased or marked because of it).
#[derive(Debug)]
pub struct SlotReader<'a, F> {
    flash: &'a mut F,
    part: Partition,
    len: u32,
    error: Option<HalError>,
}

impl<'a, F: Flash> SlotReader<'a, F> {
    /// The whole partition.
    pub fn new(flash: &'a mut F, part: Partition) -> Self {
        SlotReader {
            flash,
            part,
            len: part.size,
            error: None,
        }
    }

    /// The first `len` bytes of the partition (at most its size).
    pub fn with_len(flash: &'a mut F, part: Partition, len: u32) -> Self {
        SlotReader {
            flash,
            part,
            len: len.min(part.size),
            error: None,
        }
    }

    /// The flash error behind the last [`ImageError::Read`], if any.
    pub fn hal_error(&self) -> Option<HalError> {
        self.error
    }

    /// Splits the result of an image operation on this reader: a flash failure becomes the
    /// outer error, anything else is the image's verdict.
    pub fn split<T>(&self, r: Result<T, ImageError>) -> Result<Result<T, ImageError>, BootError> {
        match (r, self.error) {
            (Err(ImageError::Read), Some(e)) => Err(BootError::from(e)),
            (r, _) => Ok(r),
        }
    }
}

impl<F: Flash> ImageSource for SlotReader<'_, F> {
    fn len(&self) -> u32 {
        self.len
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ImageError> {
        let end = offset
            .checked_add(u32::try_from(buf.len()).map_err(|_| ImageError::Read)?)
            .ok_or(ImageError::Read)?;
        if end > self.len {
            return Err(ImageError::Read);
        }
        self.part.read(self.flash, offset, buf).map_err(|e| {
            self.error = Some(e);
            ImageError::Read
        })
    }
}

/// Bytes of a slot an image may use: everything before the trailer area.
pub fn data_end(part: Partition, g: &Geometry) -> u32 {
    part.size.saturating_sub(g.trailer_reserved())
}

/// Writes `value` at `off` in `part`, padded with erased bytes to whole write units.
pub fn write_padded<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
    off: u32,
    value: &[u8],
) -> Result<(), HalError> {
    let len = align_up(
        u32::try_from(value.len()).map_err(|_| HalError::OutOfBounds)?,
        g.write,
    );
    let mut buf = [g.erased; COPY_CHUNK];
    let unit = buf.get_mut(..len as usize).ok_or(HalError::OutOfBounds)?;
    for (d, s) in unit.iter_mut().zip(value) {
        *d = *s;
    }
    part.write(flash, off, unit)
}

/// Erases sector `index` of `part`.
pub fn erase_sector<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
    index: u32,
) -> Result<(), HalError> {
    let from = index.checked_mul(g.sector).ok_or(HalError::OutOfBounds)?;
    part.erase(flash, from, from + g.sector)
}
