//! A readable, serialisable description of an image (std): what `castellan image info`
//! prints, with the same fields as `imgtool dumpinfo` so the two can be compared.

use std::string::String;
use std::vec::Vec;

use crate::ImageError;
use crate::error::TlvArea;
use crate::header::ImageHeader;
use crate::tlv::{TlvAreaBounds, kind_name};
use crate::trailer::{self, TrailerState};
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

/// Everything `image info` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageDescription {
    /// The header.
    pub header: ImageHeader,
    /// Protected TLVs (empty when there is no protected area).
    pub protected_tlvs: Vec<TlvEntry>,
    /// Unprotected TLVs.
    pub tlvs: Vec<TlvEntry>,
    /// Offset just past the TLVs.
    pub image_end: u32,
    /// The trailer, when the file extends past the TLVs (a padded image or a slot dump).
    pub trailer: Option<TrailerState>,
}

fn entries(area: Option<TlvAreaBounds>, mut bytes: &[u8]) -> Result<Vec<TlvEntry>, ImageError> {
    let Some(area) = area else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let refs: Vec<_> = area.iter(&mut bytes).collect::<Result<_, _>>()?;
    for t in refs {
        let start = t.offset as usize;
        let value = bytes.get(start..start + usize::from(t.len)).ok_or(ImageError::Read)?;
        out.push(TlvEntry {
            kind: t.kind,
            type_name: kind_name(t.kind).unwrap_or("UNKNOWN"),
            len: t.len,
            data: value.iter().map(|b| std::format!("{b:02x}")).collect(),
        });
    }
    Ok(out)
}

/// Describe an image file without verifying its signature. Structural errors (bad magic,
/// sizes past the end, TLVs running over) are reported as for verification.
pub fn describe(bytes: &[u8], erased: u8) -> Result<ImageDescription, ImageError> {
    let mut src = bytes;
    let layout = ImageLayout::read(&mut src)?;
    let protected_tlvs = entries(layout.protected, bytes)?;
    let tlvs = entries(Some(layout.unprotected), bytes)?;
    debug_assert_eq!(layout.unprotected.area, TlvArea::Unprotected);
    let image_end = layout.end();
    let trailer = if (image_end as usize) < bytes.len() {
        Some(trailer::read_trailer(&mut src, erased, trailer::DEFAULT_MAX_ALIGN)?)
    } else {
        None
    };
    Ok(ImageDescription { header: layout.header, protected_tlvs, tlvs, image_end, trailer })
}
