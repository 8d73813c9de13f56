//! TLV areas: the protected area (covered by the hash) and the unprotected area after it.
//!
//! ```text
//!  header | payload | 0x6908 len | TLV TLV ... | 0x6907 len | SHA256 KEYHASH ECDSA_SIG ...
//!  <------- hashed and signed -------------->   <------- unprotected ------------------>
//! ```
//! Each area starts with a 4-byte info (magic u16, total length u16 including the info);
//! each TLV is type u16, length u16, value.

use crate::ImageError;
use crate::error::TlvArea;
use crate::source::{ImageSource, read_u16};

/// Info magic of the unprotected TLV area.
pub const TLV_INFO_MAGIC: u16 = 0x6907;
/// Info magic of the protected TLV area.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;
/// Size of a TLV area info and of a TLV header.
pub const TLV_HEADER_SIZE: u32 = 4;

/// TLV types defined by MCUboot (`bootutil/image.h`).
pub mod kind {
    /// SHA-256 (or matching) hash of the signing public key.
    pub const KEYHASH: u16 = 0x01;
    /// The signing public key (SubjectPublicKeyInfo DER).
    pub const PUBKEY: u16 = 0x02;
    /// SHA-256 of the image.
    pub const SHA256: u16 = 0x10;
    /// SHA-384 of the image.
    pub const SHA384: u16 = 0x11;
    /// SHA-512 of the image.
    pub const SHA512: u16 = 0x12;
    /// RSA-2048 signature.
    pub const RSA2048: u16 = 0x20;
    /// ECDSA signature (P-256 or P-384), DER.
    pub const ECDSA_SIG: u16 = 0x22;
    /// RSA-3072 signature.
    pub const RSA3072: u16 = 0x23;
    /// Ed25519 signature.
    pub const ED25519: u16 = 0x24;
    /// Marks a "pure" signature over the whole image instead of its digest.
    pub const SIG_PURE: u16 = 0x25;
    /// Encrypted AES key: RSA-OAEP.
    pub const ENC_RSA2048: u16 = 0x30;
    /// Encrypted AES key: AES key wrap.
    pub const ENC_KW: u16 = 0x31;
    /// Encrypted AES key: ECIES P-256.
    pub const ENC_EC256: u16 = 0x32;
    /// Encrypted AES key: ECIES X25519.
    pub const ENC_X25519: u16 = 0x33;
    /// Encrypted AES key: ECIES X25519 with SHA-512.
    pub const ENC_X25519_SHA512: u16 = 0x34;
    /// Dependency on another image.
    pub const DEPENDENCY: u16 = 0x40;
    /// Security counter (anti-rollback).
    pub const SEC_CNT: u16 = 0x50;
    /// Boot record (CBOR software component for attestation).
    pub const BOOT_RECORD: u16 = 0x60;
    /// Size of the decompressed image.
    pub const DECOMP_SIZE: u16 = 0x70;
    /// Hash of the decompressed image.
    pub const DECOMP_SHA: u16 = 0x71;
    /// Signature of the decompressed image.
    pub const DECOMP_SIGNATURE: u16 = 0x72;
    /// Decompressed size kept in compressed images.
    pub const COMP_DEC_SIZE: u16 = 0x73;
    /// Vendor UUID.
    pub const UUID_VID: u16 = 0x74;
    /// Class UUID.
    pub const UUID_CID: u16 = 0x75;
    /// First vendor-reserved (custom) type.
    pub const VENDOR_MIN: u16 = 0x00a0;
    /// Last vendor-reserved (custom) type.
    pub const VENDOR_MAX: u16 = 0xfffe;
}

/// The name imgtool uses for a TLV type, or `None` for vendor/unknown types.
pub fn kind_name(k: u16) -> Option<&'static str> {
    Some(match k {
        kind::KEYHASH => "KEYHASH",
        kind::PUBKEY => "PUBKEY",
        kind::SHA256 => "SHA256",
        kind::SHA384 => "SHA384",
        kind::SHA512 => "SHA512",
        kind::RSA2048 => "RSA2048",
        kind::ECDSA_SIG => "ECDSASIG",
        kind::RSA3072 => "RSA3072",
        kind::ED25519 => "ED25519",
        kind::SIG_PURE => "SIG_PURE",
        kind::ENC_RSA2048 => "ENCRSA2048",
        kind::ENC_KW => "ENCKW",
        kind::ENC_EC256 => "ENCEC256",
        kind::ENC_X25519 => "ENCX25519",
        kind::ENC_X25519_SHA512 => "ENCX25519_SHA512",
        kind::DEPENDENCY => "DEPENDENCY",
        kind::SEC_CNT => "SEC_CNT",
        kind::BOOT_RECORD => "BOOT_RECORD",
        kind::DECOMP_SIZE => "DECOMP_SIZE",
        kind::DECOMP_SHA => "DECOMP_SHA",
        kind::DECOMP_SIGNATURE => "DECOMP_SIGNATURE",
        kind::COMP_DEC_SIZE => "COMP_DEC_SIZE",
        kind::UUID_VID => "UUID_VID",
        kind::UUID_CID => "UUID_CID",
        _ => return None,
    })
}

/// Where one TLV's value lies in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvRef {
    /// TLV type.
    pub kind: u16,
    /// Offset of the value (after the 4-byte TLV header) from the start of the image.
    pub offset: u32,
    /// Length of the value.
    pub len: u16,
    /// Area the TLV sits in.
    pub area: TlvArea,
}

/// Bounds of one TLV area, after its info header was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvAreaBounds {
    /// Which area.
    pub area: TlvArea,
    /// Offset of the area info.
    pub start: u32,
    /// Offset just past the area.
    pub end: u32,
}

impl TlvAreaBounds {
    /// Read and check the area info at `start`, requiring `magic`.
    pub fn read<S: ImageSource + ?Sized>(
        src: &mut S,
        area: TlvArea,
        start: u32,
    ) -> Result<TlvAreaBounds, ImageError> {
        let len = src.len();
        let info_end = start.checked_add(TLV_HEADER_SIZE);
        if info_end.is_none_or(|e| e > len) {
            return Err(ImageError::TlvOutOfBounds {
                area,
                offset: start,
            });
        }
        let magic = read_u16(src, start)?;
        let expected = match area {
            TlvArea::Protected => TLV_PROT_INFO_MAGIC,
            TlvArea::Unprotected => TLV_INFO_MAGIC,
        };
        if magic != expected {
            return Err(ImageError::BadTlvInfoMagic { area, found: magic });
        }
        let tot = read_u16(src, start + 2)?;
        if u32::from(tot) < TLV_HEADER_SIZE {
            return Err(ImageError::TlvAreaTooSmall { area, len: tot });
        }
        let end = start + u32::from(tot);
        if end > len {
            return Err(ImageError::TlvOutOfBounds {
                area,
                offset: start,
            });
        }
        Ok(TlvAreaBounds { area, start, end })
    }

    /// Total length including the info header.
    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    /// Whether the area holds no TLV.
    pub fn is_empty(&self) -> bool {
        self.len() == TLV_HEADER_SIZE
    }

    /// Iterate the TLVs of this area. Each item is checked to lie entirely inside the area.
    pub fn iter<'s, S: ImageSource + ?Sized>(&self, src: &'s mut S) -> TlvIter<'s, S> {
        TlvIter {
            src,
            bounds: *self,
            next: self.start + TLV_HEADER_SIZE,
            failed: false,
        }
    }
}

/// Iterator over the TLVs of one area; yields an error (once) for a TLV running past the area.
pub struct TlvIter<'s, S: ImageSource + ?Sized> {
    src: &'s mut S,
    bounds: TlvAreaBounds,
    next: u32,
    failed: bool,
}

impl<S: ImageSource + ?Sized> Iterator for TlvIter<'_, S> {
    type Item = Result<TlvRef, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.bounds.end {
            return None;
        }
        let at = self.next;
        let area = self.bounds.area;
        let out_of_bounds = ImageError::TlvOutOfBounds { area, offset: at };
        let result = (|| {
            if at
                .checked_add(TLV_HEADER_SIZE)
                .is_none_or(|e| e > self.bounds.end)
            {
                return Err(out_of_bounds);
            }
            let kind = read_u16(self.src, at)?;
            let len = read_u16(self.src, at + 2)?;
            let value = at + TLV_HEADER_SIZE;
            let end = value.checked_add(u32::from(len)).ok_or(out_of_bounds)?;
            if end > self.bounds.end {
                return Err(out_of_bounds);
            }
            self.next = end;
            Ok(TlvRef {
                kind,
                offset: value,
                len,
                area,
            })
        })();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}
