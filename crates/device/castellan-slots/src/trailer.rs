//! The MCUboot slot trailer as the boot stages read and write it (magic, image_ok, copy_done,
//! swap_info, swap_size at MCUboot's offsets, `max_align = max(8, write size)`), and the two
//! operations the running application performs on it: request an upgrade, confirm an image.
//!
//! ```text
//!  end of slot ──────────────────────────────────────────────────────────────────────▶|
//!  … image … | (unused) | swap_size | swap_info | copy_done | image_ok | magic (16 B) |
//!                         max_align   max_align   max_align   max_align  align_up(16, max_align)
//! ```
//!
//! Each field is written once, in whole write units padded with erased bytes, so that
//! `castellan image info` and MCUboot's tools read slot dumps the same way. Castellan does not
//! keep MCUboot's swap-status records here: swaps are journaled in the status partition.

use castellan_hal::{Flash, HalError, Partition};
use castellan_image::trailer::{FLAG_SET, FlagState, MagicState, SwapType, boot_magic};

use crate::BootError;
use crate::flash::{erase_sector, write_padded};
use crate::layout::{FlashLayout, Geometry};

/// The decoded trailer of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTrailer {
    /// The boot magic (for this flash's `max_align`).
    pub magic: MagicState,
    /// The image_ok flag.
    pub image_ok: FlagState,
    /// The copy_done flag.
    pub copy_done: FlagState,
    /// The raw swap_info byte.
    pub swap_info: u8,
    /// True when swap_info was never written.
    pub swap_info_erased: bool,
    /// The swap type in swap_info.
    pub swap_type: SwapType,
    /// The swap_size field.
    pub swap_size: u32,
}

impl SlotTrailer {
    /// A pending upgrade request in the secondary slot: magic set by the requester, swap_info
    /// still untouched by the bootloader (which marks refused and consumed requests there).
    pub fn is_upgrade_request(&self) -> bool {
        self.magic == MagicState::Good && self.swap_info_erased
    }

    /// A test image in the primary slot that the application has not confirmed: it was
    /// swapped in (copy_done) and image_ok is not exactly set (unset, or torn by a power cut
    /// during confirmation). The bootloader reverts it.
    pub fn is_unconfirmed_test(&self) -> bool {
        self.magic == MagicState::Good
            && self.copy_done == FlagState::Set
            && self.image_ok != FlagState::Set
    }
}

/// Reads the trailer of `part`.
pub fn read_slot_trailer<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
) -> Result<SlotTrailer, BootError> {
    let t = g.trailer(part.size);
    let mut magic = [0u8; 16];
    part.read(flash, t.magic_off(), &mut magic)?;
    let magic = if magic == boot_magic(g.max_align) {
        MagicState::Good
    } else if magic.iter().all(|b| *b == g.erased) {
        MagicState::Unset
    } else {
        MagicState::Bad
    };
    let mut byte = [0u8; 1];
    part.read(flash, t.image_ok_off(), &mut byte)?;
    let image_ok = FlagState::from_byte(byte[0], g.erased);
    part.read(flash, t.copy_done_off(), &mut byte)?;
    let copy_done = FlagState::from_byte(byte[0], g.erased);
    part.read(flash, t.swap_info_off(), &mut byte)?;
    let swap_info = byte[0];
    let mut size = [0u8; 4];
    part.read(flash, t.swap_size_off(), &mut size)?;
    Ok(SlotTrailer {
        magic,
        image_ok,
        copy_done,
        swap_info,
        swap_info_erased: swap_info == g.erased,
        swap_type: SwapType::from_swap_info(swap_info, g.erased),
        swap_size: u32::from_le_bytes(size),
    })
}

/// The swap_info byte for image 0 and `kind`.
pub fn swap_info_byte(kind: SwapType) -> u8 {
    kind.code() & 0x0f
}

/// Writes the trailer of a slot whose trailer area is erased: swap_size, swap_info, then
/// image_ok (when `confirmed`), copy_done, and the magic last.
pub fn write_trailer<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
    swap: SwapType,
    swap_size: u32,
    confirmed: bool,
) -> Result<(), HalError> {
    let t = g.trailer(part.size);
    write_padded(flash, g, part, t.swap_size_off(), &swap_size.to_le_bytes())?;
    write_padded(flash, g, part, t.swap_info_off(), &[swap_info_byte(swap)])?;
    if confirmed {
        write_padded(flash, g, part, t.image_ok_off(), &[FLAG_SET])?;
    }
    write_padded(flash, g, part, t.copy_done_off(), &[FLAG_SET])?;
    write_padded(flash, g, part, t.magic_off(), &boot_magic(g.max_align))
}

/// Marks the request in the secondary slot as handled by writing `swap` into its swap_info
/// (`Fail` for a refused image, `None` for a consumed one), so that it is never acted on again.
/// If that unit cannot be written, the slot's last sector is erased instead (removing the
/// magic, and so the request).
pub fn mark_request<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    part: Partition,
    swap: SwapType,
) -> Result<(), HalError> {
    let t = g.trailer(part.size);
    match write_padded(flash, g, part, t.swap_info_off(), &[swap_info_byte(swap)]) {
        Err(HalError::NotErased) => erase_sector(flash, g, part, part.size / g.sector - 1),
        r => r,
    }
}

/// Requests an upgrade to the image in the secondary slot (what the application does once it
/// has written and checked the image there): writes the boot magic, and image_ok too when
/// `permanent` (no test run: the new image is confirmed at once). As MCUboot's
/// `boot_set_pending`. The bootloader verifies the image at the next boot before it installs
/// anything. The slot must have been erased before the image was written into it (a trailer
/// left from an earlier request keeps its mark, and the new request would not be seen).
pub fn request_upgrade<F: Flash>(
    flash: &mut F,
    layout: &FlashLayout,
    permanent: bool,
) -> Result<(), BootError> {
    let g = Geometry::of(flash)?;
    let part = layout.secondary;
    let t = g.trailer(part.size);
    let cur = read_slot_trailer(flash, &g, part)?;
    match cur.magic {
        MagicState::Unset => {
            write_padded(flash, &g, part, t.magic_off(), &boot_magic(g.max_align))?
        }
        MagicState::Good => {}
        MagicState::Bad => {
            return Err(BootError::Layout(
                "the secondary slot trailer holds a bad magic: erase the slot and write the image again",
            ));
        }
    }
    if permanent && cur.image_ok == FlagState::Unset {
        write_padded(flash, &g, part, t.image_ok_off(), &[FLAG_SET])?;
    }
    Ok(())
}

/// Confirms the running image (what the application does once it has checked it works):
/// writes image_ok in the primary slot, so that the bootloader keeps it instead of reverting,
/// and raises the anti-rollback counter to its security counter at the next boot. As MCUboot's
/// `boot_set_confirmed`. Confirming a confirmed image does nothing.
pub fn confirm_image<F: Flash>(flash: &mut F, layout: &FlashLayout) -> Result<(), BootError> {
    let g = Geometry::of(flash)?;
    let part = layout.primary;
    let cur = read_slot_trailer(flash, &g, part)?;
    match cur.image_ok {
        FlagState::Set => Ok(()),
        FlagState::Unset => {
            let off = g.trailer(part.size).image_ok_off();
            write_padded(flash, &g, part, off, &[FLAG_SET])?;
            Ok(())
        }
        FlagState::Bad => Err(BootError::Layout(
            "the primary slot's image_ok holds a bad value: the bootloader will revert this image",
        )),
    }
}
