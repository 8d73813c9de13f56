//! Firmware update (after PSA Firmware Update 1.0 and TF-M's MCUboot binding): the application
//! streams a candidate image into the secondary slot, requests its installation, reboots, and
//! accepts the new image once it runs — or does not, and the bootloader reverts it.
//!
//! ```text
//!  READY ──start(size)──▶ WRITING ──write(off, data)…──▶ WRITING ──install(test|perm)──▶ STAGED
//!    (erase secondary)          (bounds: off + len ≤ size)        (header sane, trailer magic)
//!  reboot → bootloader verifies, swaps (or refuses and says why) → trial → accept → confirmed
//! ```
//!
//! As with TF-M, the cryptographic verdict belongs to the bootloader at the next boot (it
//! verifies signature, key, security counter and version before installing anything); the
//! service only checks that what it stages is shaped like an image that fits the slot.

use castellan_gate::psa;
use castellan_hal::Flash;
use castellan_platform_an505::console::line;
use castellan_platform_an505::load::layout_of;
use castellan_platform_an505::map::{
    PART_BOOTLOADER, PART_PRIMARY, PART_SCRATCH, PART_SECONDARY, PART_STATUS,
};
use castellan_slots::{FlashLayout, confirm_image, request_upgrade};
use castellan_text::Piece::{Dec, Str, Text};

use crate::state::State;

/// The flash layout (as the bootloader's).
pub const LAYOUT: FlashLayout = FlashLayout {
    bootloader: PART_BOOTLOADER,
    primary: PART_PRIMARY,
    secondary: PART_SECONDARY,
    scratch: Some(PART_SCRATCH),
    status: Some(PART_STATUS),
};

/// Bytes reserved for the slot trailer at the end of a slot (MCUboot's fields with a 4-byte
/// write unit: 4 × 8 + 16).
const TRAILER_RESERVED: u32 = 48;

/// The update state machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fwu {
    /// Nothing in progress.
    #[default]
    Ready,
    /// A candidate of `size` bytes is being written.
    Writing {
        /// Declared size.
        size: u32,
    },
    /// A candidate is staged for the next boot.
    Staged,
}

/// Starts a candidate of `size` bytes: erases the secondary slot.
pub fn start(s: &mut State, size: u32) -> Result<(), i32> {
    if size == 0 || size > PART_SECONDARY.size - TRAILER_RESERVED {
        return Err(psa::ERROR_INVALID_ARGUMENT);
    }
    PART_SECONDARY
        .erase_all(s.flash())
        .map_err(|_| psa::ERROR_STORAGE_FAILURE)?;
    s.fwu = Fwu::Writing { size };
    line(
        "[secure] fwu: receiving a candidate image of {} bytes into the secondary slot",
        &[Dec(size.into())],
    );
    Ok(())
}

/// Writes `data` at `offset` of the candidate.
pub fn write(s: &mut State, offset: u32, data: &[u8]) -> Result<(), i32> {
    let Fwu::Writing { size } = s.fwu else {
        return Err(psa::ERROR_BAD_STATE);
    };
    let len = u32::try_from(data.len()).map_err(|_| psa::ERROR_INVALID_ARGUMENT)?;
    let end = offset.checked_add(len).ok_or(psa::ERROR_INVALID_ARGUMENT)?;
    let unit = s.flash().write_size() as u32;
    if end > size || !offset.is_multiple_of(unit) || (!len.is_multiple_of(unit) && end != size) {
        return Err(psa::ERROR_INVALID_ARGUMENT);
    }
    // The last chunk is padded with erased bytes to the write unit.
    let mut buf = [0xffu8; 260];
    let padded = len.div_ceil(unit) * unit;
    let dst = buf
        .get_mut(..padded as usize)
        .ok_or(psa::ERROR_INVALID_ARGUMENT)?;
    if let Some(d) = dst.get_mut(..data.len()) {
        d.copy_from_slice(data);
    }
    PART_SECONDARY
        .write(s.flash(), offset, dst)
        .map_err(|_| psa::ERROR_STORAGE_FAILURE)?;
    Ok(())
}

/// Requests installation at the next boot.
pub fn install(s: &mut State, permanent: bool) -> Result<(), i32> {
    let Fwu::Writing { size } = s.fwu else {
        return Err(psa::ERROR_BAD_STATE);
    };
    let layout = layout_of(s.flash(), PART_SECONDARY).map_err(|_| psa::ERROR_INVALID_SIGNATURE)?;
    if layout.end() > size {
        return Err(psa::ERROR_INVALID_SIGNATURE);
    }
    request_upgrade(s.flash(), &LAYOUT, permanent).map_err(|_| psa::ERROR_STORAGE_FAILURE)?;
    s.fwu = Fwu::Staged;
    line(
        "[secure] fwu: candidate {} staged for a {} install at the next boot",
        &[
            Text(&layout.header.version),
            Str(if permanent { "permanent" } else { "test" }),
        ],
    );
    Ok(())
}

/// Accepts the running image.
pub fn accept(s: &mut State) -> Result<(), i32> {
    if s.confirmed {
        return Ok(());
    }
    confirm_image(s.flash(), &LAYOUT).map_err(|_| psa::ERROR_STORAGE_FAILURE)?;
    s.confirmed = true;
    line(
        "[secure] fwu: running image accepted (image_ok set; the counter rises at the next boot)",
        &[],
    );
    Ok(())
}
