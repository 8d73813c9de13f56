//! Where image bytes come from: a slice on the host, a flash partition on a device.
//!
//! Verification reads the image through [`ImageSource`] in small pieces, so that an image in
//! flash can be verified without copying it into RAM.

use crate::ImageError;

/// Random-access, read-only view of an image (or of the slot holding it).
pub trait ImageSource {
    /// Number of bytes readable from offset 0.
    fn len(&self) -> u32;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    ///
    /// Callers never ask past [`ImageSource::len`]; an implementation returns
    /// [`ImageError::Read`] if the underlying storage fails.
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ImageError>;
}

impl ImageSource for &[u8] {
    fn len(&self) -> u32 {
        u32::try_from(<[u8]>::len(self)).unwrap_or(u32::MAX)
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ImageError> {
        let start = usize::try_from(offset).map_err(|_| ImageError::Read)?;
        let end = start.checked_add(buf.len()).ok_or(ImageError::Read)?;
        let src = self.get(start..end).ok_or(ImageError::Read)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Read a little-endian `u16` at `offset`.
pub(crate) fn read_u16<S: ImageSource + ?Sized>(
    src: &mut S,
    offset: u32,
) -> Result<u16, ImageError> {
    let mut b = [0u8; 2];
    src.read(offset, &mut b)?;
    Ok(u16::from_le_bytes(b))
}
