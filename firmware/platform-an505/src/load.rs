//! RAM loading (MCUboot's RAM-load mode): copy a verified image's payload from flash to the
//! address it runs at, then hash the copy again so that what runs is exactly what was verified
//! (no time-of-check/time-of-use gap through the host-backed flash), and jump to it.

use castellan_hal::{Flash, HalError, Partition};
use castellan_image::{ImageError, ImageLayout, ImageSource};
use castellan_sha256_cortex_m::Sha256;
use sha2::Digest as _;

/// One piece of the payload and where it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the payload (after the image header).
    pub payload_offset: u32,
    /// Length in bytes.
    pub len: u32,
    /// Destination address (secure alias).
    pub dest: u32,
    /// Largest allowed length at `dest` (the execution window).
    pub window: u32,
}

/// Why an image was not loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// A flash read failed.
    Flash(HalError),
    /// The image layout could not be read.
    Image(ImageError),
    /// The payload does not split into the expected segments (sizes or windows).
    Layout(&'static str),
    /// The copy in RAM does not hash to the verified digest.
    DigestMismatch,
}

impl LoadError {
    /// What went wrong, in a fixed phrase (the ROM stage prints it without formatting code);
    /// the image's own reason, if any, is [`ImageError::reason`] of [`LoadError::Image`].
    pub const fn reason(&self) -> &'static str {
        match self {
            LoadError::Flash(_) => "flash read failed while loading",
            LoadError::Image(_) => "image layout unreadable while loading",
            LoadError::Layout(m) => m,
            LoadError::DigestMismatch => {
                "the copy in RAM does not match the verified digest (flash changed after verification)"
            }
        }
    }

    /// The image's refusal behind this one, if the image layout was refused.
    pub const fn image_error(&self) -> Option<&ImageError> {
        match self {
            LoadError::Image(e) => Some(e),
            _ => None,
        }
    }
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Flash(e) => write!(f, "{}: {e}", self.reason()),
            LoadError::Image(e) => write!(f, "{}: {e}", self.reason()),
            LoadError::Layout(m) => write!(f, "payload does not fit the memory map: {m}"),
            LoadError::DigestMismatch => f.write_str(self.reason()),
        }
    }
}

/// A partition read as an image source.
pub struct PartitionSource<'a, F> {
    flash: &'a mut F,
    part: Partition,
    error: Option<HalError>,
}

impl<'a, F: Flash> PartitionSource<'a, F> {
    /// The whole partition.
    pub fn new(flash: &'a mut F, part: Partition) -> Self {
        PartitionSource {
            flash,
            part,
            error: None,
        }
    }
}

impl<F: Flash> ImageSource for PartitionSource<'_, F> {
    fn len(&self) -> u32 {
        self.part.size
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), ImageError> {
        self.part.read(self.flash, offset, buf).map_err(|e| {
            self.error = Some(e);
            ImageError::Read
        })
    }
}

/// The payload's segments must cover it exactly, in order: `[0, img_size)`.
fn check_segments(layout: &ImageLayout, segments: &[Segment]) -> Result<(), LoadError> {
    let mut next = 0u32;
    for s in segments {
        if s.payload_offset != next {
            return Err(LoadError::Layout(
                "segments must cover the payload in order",
            ));
        }
        if s.len > s.window {
            return Err(LoadError::Layout(
                "a segment is larger than its execution window",
            ));
        }
        next = next
            .checked_add(s.len)
            .ok_or(LoadError::Layout("segment overflow"))?;
    }
    if next != layout.header.img_size {
        return Err(LoadError::Layout(
            "segments do not end where the payload ends",
        ));
    }
    Ok(())
}

/// Reads the image layout of `part`.
pub fn layout_of<F: Flash>(flash: &mut F, part: Partition) -> Result<ImageLayout, LoadError> {
    let mut src = PartitionSource::new(flash, part);
    let r = ImageLayout::read(&mut src);
    match (r, src.error) {
        (Err(ImageError::Read), Some(e)) => Err(LoadError::Flash(e)),
        (r, _) => r.map_err(LoadError::Image),
    }
}

/// Copies the payload of the image in `part` to RAM as `segments` say and checks the copy
/// against `digest` (SHA-256 over header, payload and protected TLVs, as verified).
///
/// # Safety
/// Every segment's `dest..dest + window` must be memory this image may overwrite (not its own
/// code, stack or data).
pub unsafe fn load<F: Flash>(
    flash: &mut F,
    part: Partition,
    segments: &[Segment],
    digest: &[u8],
) -> Result<ImageLayout, LoadError> {
    let layout = layout_of(flash, part)?;
    check_segments(&layout, segments)?;
    let hdr = u32::from(layout.header.hdr_size);
    let mut buf = [0u8; 512];
    // Copy.
    for s in segments {
        let mut done = 0u32;
        while done < s.len {
            let n = (s.len - done).min(buf.len() as u32) as usize;
            let chunk = buf.get_mut(..n).ok_or(LoadError::Layout("chunk"))?;
            part.read(flash, hdr + s.payload_offset + done, chunk)
                .map_err(LoadError::Flash)?;
            // Safety: the caller guarantees the destination window is ours to overwrite, and
            // `done + n <= s.len <= s.window`.
            unsafe {
                core::ptr::copy_nonoverlapping(chunk.as_ptr(), (s.dest + done) as *mut u8, n);
            }
            done += n as u32;
        }
    }
    // Hash: header (flash), payload (the RAM copy), protected TLVs (flash).
    let mut h = Sha256::new();
    hash_flash(flash, part, 0, hdr, &mut h, &mut buf)?;
    for s in segments {
        // Safety: just written above, `s.len` bytes at `s.dest`.
        let ram = unsafe { core::slice::from_raw_parts(s.dest as *const u8, s.len as usize) };
        h.update(ram);
    }
    let tlv = hdr + layout.header.img_size;
    hash_flash(
        flash,
        part,
        tlv,
        layout.hashed_end() - tlv,
        &mut h,
        &mut buf,
    )?;
    let got = h.finalize();
    if got.as_slice() != digest {
        return Err(LoadError::DigestMismatch);
    }
    Ok(layout)
}

fn hash_flash<F: Flash>(
    flash: &mut F,
    part: Partition,
    from: u32,
    len: u32,
    h: &mut Sha256,
    buf: &mut [u8; 512],
) -> Result<(), LoadError> {
    let mut done = 0u32;
    while done < len {
        let n = (len - done).min(buf.len() as u32) as usize;
        let chunk = buf.get_mut(..n).ok_or(LoadError::Layout("chunk"))?;
        part.read(flash, from + done, chunk)
            .map_err(LoadError::Flash)?;
        h.update(&*chunk);
        done += n as u32;
    }
    Ok(())
}

/// Starts the secure image whose vector table is at `vectors`: points VTOR_S at it, loads its
/// initial stack pointer and jumps to its reset handler. SysTick (the only interrupt source
/// the stages use) is stopped and its pending state cleared first.
///
/// # Safety
/// `vectors` must hold a loaded, verified image's vector table; nothing of the caller survives.
pub unsafe fn start_secure_image(vectors: u32) -> ! {
    // Safety: SysTick CSR (0xE000E010) and VTOR (0xE000ED08) are architectural registers of
    // this core; stopping SysTick and moving VTOR affect only the image being started.
    unsafe {
        core::ptr::write_volatile(0xE000_E010 as *mut u32, 0);
        // ICSR.PENDSTCLR
        core::ptr::write_volatile(0xE000_ED04 as *mut u32, 1 << 25);
        core::ptr::write_volatile(0xE000_ED08 as *mut u32, vectors);
        cortex_m::asm::dsb();
        cortex_m::asm::isb();
        cortex_m::asm::bootload(vectors as *const u32)
    }
}
