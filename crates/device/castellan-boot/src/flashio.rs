//! Flash access of the swap engine: slot verification and sector copies through a fixed stack
//! buffer (reading a slot in place is castellan-slots' [`SlotReader`]).

use castellan_hal::{Flash, HalError, Partition};
use castellan_image::{ImageError, ImageLayout, TrustedKey, VerifiedImage, verify};
use castellan_slots::{COPY_CHUNK, Geometry, SlotReader, data_end};

use castellan_slots::BootError;

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
