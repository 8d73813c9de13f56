//! A readable, serialisable description of an image (std): what `castellan image info`
//! prints. Its JSON uses the field names and raw values of `imgtool dumpinfo --format json`
//! (header, `tlv_area`, `trailer`), so the two can be compared, plus decoded trailer states.

use std::string::String;
use std::vec::Vec;

use crate::ImageError;
use crate::header::ImageHeader;
use crate::tlv::{TlvAreaBounds, kind_name};
use crate::trailer::{self, FlagState, MagicState, SwapType};
use crate::verify::ImageLayout;

/// One TLV as found in the image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlvEntry {
    /// Type.
    #[serde(rename = "type")]
    pub kind: u16,
    /// imgtool's name for the type, or "UNKNOWN".
    pub type_name: &'static str,
    /// Length of the value.
    pub len: u16,
    /// Value, hex-encoded.
    pub data: String,
}

/// A TLV area info header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlvInfo {
    /// Area magic.
    pub magic: u16,
    /// Area length including this info.
    pub tlv_tot: u16,
}

/// Both TLV areas.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlvAreas {
    /// Protected area info, if there is a protected area.
    pub tlv_hdr_prot: Option<TlvInfo>,
    /// Protected TLVs.
    pub tlvs_prot: Vec<TlvEntry>,
    /// Unprotected area info.
    pub tlv_hdr: TlvInfo,
    /// Unprotected TLVs.
    pub tlvs: Vec<TlvEntry>,
}

/// Trailer fields: raw bytes as imgtool prints them, and their meaning.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TrailerDescription {
    /// The 16 magic bytes, hex.
    pub magic: String,
    /// Raw image_ok byte.
    pub image_ok: u8,
    /// Raw copy_done byte.
    pub copy_done: u8,
    /// Raw swap_info byte.
    pub swap_info: u8,
    /// Raw swap size.
    pub swap_size: u32,
    /// Magic state.
    pub magic_state: MagicState,
    /// image_ok state.
    pub image_ok_state: FlagState,
    /// copy_done state.
    pub copy_done_state: FlagState,
    /// Swap type.
    pub swap_type: SwapType,
    /// Trailer field alignment.
    pub max_align: u32,
}

/// Everything `image info` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageDescription {
    /// The header.
    pub header: ImageHeader,
    /// The TLV areas.
    pub tlv_area: TlvAreas,
    /// Offset just past the TLVs.
    pub image_end: u32,
    /// The trailer, when the file extends past the TLVs (a padded image or a slot dump).
    pub trailer: Option<TrailerDescription>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| std::format!("{b:02x}")).collect()
}

fn entries(area: &TlvAreaBounds, mut bytes: &[u8]) -> Result<Vec<TlvEntry>, ImageError> {
    let refs: Vec<_> = area.iter(&mut bytes).collect::<Result<_, _>>()?;
    refs.into_iter()
        .map(|t| {
            let start = t.offset as usize;
            let value = bytes
                .get(start..start + usize::from(t.len))
                .ok_or(ImageError::Read)?;
            Ok(TlvEntry {
                kind: t.kind,
                type_name: kind_name(t.kind).unwrap_or("UNKNOWN"),
                len: t.len,
                data: hex(value),
            })
        })
        .collect()
}

fn info(area: &TlvAreaBounds, magic: u16) -> TlvInfo {
    TlvInfo {
        magic,
        tlv_tot: area.len() as u16,
    }
}

/// Describe an image file without verifying its signature. Structural errors (bad magic,
/// sizes past the end, TLVs running over) are reported as for verification.
pub fn describe(bytes: &[u8], erased: u8) -> Result<ImageDescription, ImageError> {
    let mut src = bytes;
    let layout = ImageLayout::read(&mut src)?;
    let tlv_area = TlvAreas {
        tlv_hdr_prot: layout
            .protected
            .as_ref()
            .map(|a| info(a, crate::tlv::TLV_PROT_INFO_MAGIC)),
        tlvs_prot: match &layout.protected {
            Some(a) => entries(a, bytes)?,
            None => Vec::new(),
        },
        tlv_hdr: info(&layout.unprotected, crate::tlv::TLV_INFO_MAGIC),
        tlvs: entries(&layout.unprotected, bytes)?,
    };
    let image_end = layout.end();
    let trailer = if (image_end as usize) < bytes.len() {
        let t = trailer::read_trailer(&mut src, erased, trailer::DEFAULT_MAX_ALIGN)?;
        Some(TrailerDescription {
            magic: hex(&t.magic_bytes),
            image_ok: t.image_ok_raw,
            copy_done: t.copy_done_raw,
            swap_info: t.swap_info,
            swap_size: t.swap_size,
            magic_state: t.magic,
            image_ok_state: t.image_ok,
            copy_done_state: t.copy_done,
            swap_type: t.swap_type,
            max_align: t.max_align,
        })
    } else {
        None
    };
    Ok(ImageDescription {
        header: layout.header,
        tlv_area,
        image_end,
        trailer,
    })
}
