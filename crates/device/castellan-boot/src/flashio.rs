//! Flash access for the boot stages: images read in place through [`SlotReader`] (keeping a
//! flash failure apart from a bad image), slot verification, and sector copies through a
//! fixed stack buffer.

use castellan_hal::{Flash, HalError, Partition};
use castellan_image::{ImageError, ImageLayout, ImageSource, TrustedKey, VerifiedImage, verify};

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
pub(crate) fn data_end(part: Partition, g: &Geometry) -> u32 {
    part.size.saturating_sub(g.trailer_reserved())
}

/// Verifies the image in a slot against `key`. The outer error is a flash failure; the inner
/// one the verdict (an image running into the trailer area is
/// [`ImageError::TooLargeForSlot`]).
pub(crate) fn verify_slot<F: Flash>(
    flash: &mut F,
    part: Partition,
    g: &Geometry,
    key: TrustedKey<'_>,
) -> Result<Result<VerifiedImage, ImageError>, BootError> {
    let limit = data_end(part, g);
    let mut whole = SlotReader::new(flash, part);
    let layout = ImageLayout::read(&mut whole);
    if let Ok(layout) = whole.split(layout)? {
        if layout.end() > limit {
            let needed = u64::from(layout.end()) + u64::from(g.trailer_reserved());
            return Ok(Err(ImageError::TooLargeForSlot {
                needed,
                slot_size: part.size,
            }));
        }
    }
    let mut src = SlotReader::with_len(flash, part, limit);
    let r = verify(&mut src, key);
    src.split(r)
}

/// End of the image whose header is at the start of `part` (header and TLV bounds only, no
/// signature check), clamped to the slot's data area; the whole data area when there is no
/// readable image.
pub(crate) fn used_end<F: Flash>(
    flash: &mut F,
    part: Partition,
    g: &Geometry,
) -> Result<u32, BootError> {
    let limit = data_end(part, g);
    let mut src = SlotReader::with_len(flash, part, limit);
    let r = ImageLayout::read(&mut src);
    Ok(match src.split(r)? {
        Ok(l) => l.end().min(limit),
        Err(_) => limit,
    })
}

/// Copies `len` bytes (a multiple of the write size) from `from` at `from_off` to `to` at
/// `to_off` (erased beforehand), through a stack buffer. Chunks that read fully erased are not
/// written, so that no write unit is programmed with erased bytes only.
pub(crate) fn copy<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    (from, from_off): (Partition, u32),
    (to, to_off): (Partition, u32),
    len: u32,
) -> Result<(), HalError> {
    let mut buf = [0u8; COPY_CHUNK];
    let mut done = 0u32;
    while done < len {
        let n = (len - done).min(COPY_CHUNK as u32);
        let chunk = buf.get_mut(..n as usize).ok_or(HalError::OutOfBounds)?;
        from.read(flash, from_off + done, chunk)?;
        if chunk.iter().any(|b| *b != g.erased) {
            to.write(flash, to_off + done, chunk)?;
        }
        done += n;
    }
    Ok(())
}

/// Writes `value` at `off` in `part`, padded with erased bytes to whole write units.
pub(crate) fn write_padded<F: Flash>(
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
pub(crate) fn erase_sector<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
    index: u32,
) -> Result<(), HalError> {
    let from = index.checked_mul(g.sector).ok_or(HalError::OutOfBounds)?;
    part.erase(flash, from, from + g.sector)
}
