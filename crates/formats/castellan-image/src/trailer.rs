//! The slot trailer MCUboot keeps at the end of each slot: swap status, swap size, swap info,
//! copy-done, image-ok and the boot magic.
//!
//! ```text
//!  end of slot ─────────────────────────────────────────────────────────────▶|
//!  … | swap status (max_sectors × 3 × write_size) | swap_size | swap_info | copy_done | image_ok | magic |
//!                                                  max_align   max_align   max_align   max_align  align_up(16, max_align)
//! ```
//! The 16 magic bytes are the last 16 bytes of the slot. With the default `max_align` of 8 the
//! magic is [`BOOT_MAGIC`]; otherwise its first two bytes hold `max_align` (little-endian)
//! followed by [`BOOT_MAGIC_TAIL`].

use crate::ImageError;
use crate::source::ImageSource;

/// The boot magic for `max_align == 8`.
pub const BOOT_MAGIC: [u8; 16] = [
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
];
/// The last 14 bytes of the boot magic when `max_align != 8`.
pub const BOOT_MAGIC_TAIL: [u8; 14] = [
    0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
];
/// Default `max_align` (imgtool's `DEFAULT_MAX_ALIGN`).
pub const DEFAULT_MAX_ALIGN: u32 = 8;
/// Default number of sectors tracked in the swap status (imgtool's `DEFAULT_MAX_SECTORS`).
pub const DEFAULT_MAX_SECTORS: u32 = 128;
/// Value of a set flag (image_ok, copy_done).
pub const FLAG_SET: u8 = 0x01;

/// Round `n` up to a multiple of `align` (a power of two).
pub const fn align_up(n: u32, align: u32) -> u32 {
    (n + align - 1) & !(align - 1)
}

/// The boot magic for a given `max_align`.
pub fn boot_magic(max_align: u32) -> [u8; 16] {
    if max_align == DEFAULT_MAX_ALIGN {
        return BOOT_MAGIC;
    }
    let mut m = [0u8; 16];
    let [lo, hi, _, _] = max_align.to_le_bytes();
    let (head, tail) = m.split_at_mut(2);
    head.copy_from_slice(&[lo, hi]);
    tail.copy_from_slice(&BOOT_MAGIC_TAIL);
    m
}

/// Where each trailer field sits, as offsets from the start of a slot of `slot_size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrailerLayout {
    /// Slot size.
    pub slot_size: u32,
    /// Alignment of each trailer field (the largest flash write size supported).
    pub max_align: u32,
}

impl TrailerLayout {
    /// Layout for a slot.
    pub const fn new(slot_size: u32, max_align: u32) -> TrailerLayout {
        TrailerLayout {
            slot_size,
            max_align,
        }
    }

    /// Space taken by the magic.
    pub const fn magic_area(&self) -> u32 {
        align_up(16, self.max_align)
    }

    /// Offset of the 16 magic bytes.
    pub const fn magic_off(&self) -> u32 {
        self.slot_size - 16
    }

    /// Offset of the image-ok flag.
    pub const fn image_ok_off(&self) -> u32 {
        self.slot_size - self.magic_area() - self.max_align
    }

    /// Offset of the copy-done flag.
    pub const fn copy_done_off(&self) -> u32 {
        self.image_ok_off() - self.max_align
    }

    /// Offset of the swap-info byte (swap type in the low nibble, image number in the high).
    pub const fn swap_info_off(&self) -> u32 {
        self.copy_done_off() - self.max_align
    }

    /// Offset of the 4-byte swap size.
    pub const fn swap_size_off(&self) -> u32 {
        self.swap_info_off() - self.max_align
    }

    /// Size of the trailer, as imgtool computes it for `--pad` (unencrypted images).
    pub const fn trailer_size(
        write_size: u32,
        max_align: u32,
        max_sectors: u32,
        overwrite_only: bool,
    ) -> u32 {
        let magic = align_up(16, max_align);
        if overwrite_only {
            max_align * 2 + magic
        } else {
            max_sectors * 3 * write_size + max_align * 4 + magic
        }
    }
}

/// State of the boot magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum MagicState {
    /// The magic is present.
    Good,
    /// The magic area is erased.
    Unset,
    /// Anything else.
    Bad,
}

/// State of a one-byte flag (image_ok, copy_done), with MCUboot's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum FlagState {
    /// 0x01.
    Set,
    /// Erased.
    Unset,
    /// Any other value.
    Bad,
}

impl FlagState {
    /// Classify a flag byte.
    pub fn from_byte(b: u8, erased: u8) -> FlagState {
        if b == FLAG_SET {
            FlagState::Set
        } else if b == erased {
            FlagState::Unset
        } else {
            FlagState::Bad
        }
    }
}

/// MCUboot swap types, stored in the low nibble of swap_info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum SwapType {
    /// No swap.
    None,
    /// Swap once to test; revert unless confirmed.
    Test,
    /// Swap permanently.
    Perm,
    /// Revert a test image that was not confirmed.
    Revert,
    /// Swap failed because the image was invalid.
    Fail,
    /// Unrecoverable error.
    Panic,
    /// Erased or not a defined value.
    Unset,
}

impl SwapType {
    /// The nibble MCUboot stores for this swap type.
    pub fn code(self) -> u8 {
        match self {
            SwapType::None => 1,
            SwapType::Test => 2,
            SwapType::Perm => 3,
            SwapType::Revert => 4,
            SwapType::Fail => 5,
            SwapType::Panic => 0xff,
            SwapType::Unset => 0,
        }
    }

    /// Decode a swap-info byte (`erased` when never written).
    pub fn from_swap_info(b: u8, erased: u8) -> SwapType {
        if b == erased {
            return SwapType::Unset;
        }
        match b & 0x0f {
            1 => SwapType::None,
            2 => SwapType::Test,
            3 => SwapType::Perm,
            4 => SwapType::Revert,
            5 => SwapType::Fail,
            _ => SwapType::Unset,
        }
    }
}

/// Decoded trailer fields of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct TrailerState {
    /// Alignment decoded from the magic (8 for the standard magic).
    pub max_align: u32,
    /// Boot magic.
    pub magic: MagicState,
    /// The 16 magic bytes as found.
    pub magic_bytes: [u8; 16],
    /// image_ok flag.
    pub image_ok: FlagState,
    /// Raw image_ok byte.
    pub image_ok_raw: u8,
    /// copy_done flag.
    pub copy_done: FlagState,
    /// Raw copy_done byte.
    pub copy_done_raw: u8,
    /// Raw swap-info byte.
    pub swap_info: u8,
    /// Swap type from swap-info.
    pub swap_type: SwapType,
    /// Raw swap size.
    pub swap_size: u32,
}

/// Read the trailer at the end of `src` (a whole slot), whose flash erases to `erased`.
///
/// The magic decides `max_align`; when it is unset or bad, `default_max_align` is used to
/// locate the other fields.
pub fn read_trailer<S: ImageSource + ?Sized>(
    src: &mut S,
    erased: u8,
    default_max_align: u32,
) -> Result<TrailerState, ImageError> {
    let slot_size = src.len();
    let mut magic = [0u8; 16];
    if slot_size < 16 {
        return Err(ImageError::BadTrailer);
    }
    src.read(slot_size - 16, &mut magic)?;
    let (state, max_align) = if magic == BOOT_MAGIC {
        (MagicState::Good, DEFAULT_MAX_ALIGN)
    } else if magic.ends_with(&BOOT_MAGIC_TAIL) {
        let a = u32::from(u16::from_le_bytes([magic[0], magic[1]]));
        if !a.is_power_of_two() || !(8..=1024).contains(&a) {
            return Err(ImageError::BadTrailer);
        }
        (MagicState::Good, a)
    } else if magic.iter().all(|&b| b == erased) {
        (MagicState::Unset, default_max_align)
    } else {
        (MagicState::Bad, default_max_align)
    };
    let layout = TrailerLayout::new(slot_size, max_align);
    if slot_size < TrailerLayout::trailer_size(1, max_align, 0, false) {
        return Err(ImageError::BadTrailer);
    }
    let mut byte = [0u8; 1];
    src.read(layout.image_ok_off(), &mut byte)?;
    let image_ok_raw = byte[0];
    src.read(layout.copy_done_off(), &mut byte)?;
    let copy_done_raw = byte[0];
    src.read(layout.swap_info_off(), &mut byte)?;
    let swap_info = byte[0];
    let mut size = [0u8; 4];
    src.read(layout.swap_size_off(), &mut size)?;
    Ok(TrailerState {
        max_align,
        magic: state,
        magic_bytes: magic,
        image_ok: FlagState::from_byte(image_ok_raw, erased),
        image_ok_raw,
        copy_done: FlagState::from_byte(copy_done_raw, erased),
        copy_done_raw,
        swap_info,
        swap_type: SwapType::from_swap_info(swap_info, erased),
        swap_size: u32::from_le_bytes(size),
    })
}
