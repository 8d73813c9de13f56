//! Why an image was refused: one error type for the whole crate, each variant naming what is wrong.

use core::fmt;

use castellan_text::{Describe, Piece, Sink, TextError};

use crate::digest::HashAlg;
use crate::key::KeyType;

/// Which TLV area a TLV was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "snake_case"))]
pub enum TlvArea {
    /// The protected area (magic 0x6908), covered by the image hash and so by the signature.
    Protected,
    /// The unprotected area (magic 0x6907), holding the hash, key and signature.
    Unprotected,
}

impl TlvArea {
    /// `protected` or `unprotected`.
    pub const fn name(self) -> &'static str {
        match self {
            TlvArea::Protected => "protected",
            TlvArea::Unprotected => "unprotected",
        }
    }
}

impl fmt::Display for TlvArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm an image or key uses, named in [`ImageError::UnsupportedAlgorithm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// A signature algorithm (the key's type).
    Signature(KeyType),
    /// An image hash algorithm.
    Hash(HashAlg),
}

impl Algorithm {
    /// The cargo feature of this crate that builds the algorithm in.
    pub fn feature(self) -> &'static str {
        match self {
            Algorithm::Signature(KeyType::Ed25519) => "ed25519",
            Algorithm::Signature(KeyType::EcdsaP256) => "p256",
            Algorithm::Signature(KeyType::EcdsaP384) => "p384",
            // SHA-256 is always built in.
            Algorithm::Hash(HashAlg::Sha256) => "",
            Algorithm::Hash(HashAlg::Sha384 | HashAlg::Sha512) => "sha512",
        }
    }

    /// Whether this build of the crate verifies the algorithm.
    pub fn is_supported(self) -> bool {
        match self {
            Algorithm::Signature(KeyType::Ed25519) => cfg!(feature = "ed25519"),
            Algorithm::Signature(KeyType::EcdsaP256) => cfg!(feature = "p256"),
            Algorithm::Signature(KeyType::EcdsaP384) => cfg!(feature = "p384"),
            Algorithm::Hash(HashAlg::Sha256) => true,
            Algorithm::Hash(HashAlg::Sha384 | HashAlg::Sha512) => cfg!(feature = "sha512"),
        }
    }
}

impl Algorithm {
    /// The algorithm's name (`ECDSA P-256`, `SHA-256`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Signature(KeyType::Ed25519) => "Ed25519",
            Algorithm::Signature(KeyType::EcdsaP256) => "ECDSA P-256",
            Algorithm::Signature(KeyType::EcdsaP384) => "ECDSA P-384",
            Algorithm::Hash(HashAlg::Sha256) => "SHA-256",
            Algorithm::Hash(HashAlg::Sha384) => "SHA-384",
            Algorithm::Hash(HashAlg::Sha512) => "SHA-512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can be wrong with an image, its key or its trailer.
///
/// Verification returns the first problem found; the order of the checks follows MCUboot
/// (header, TLV areas, hash, key, signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// The image source could not be read (flash error or power loss).
    Read,
    /// The file is shorter than the 32-byte header.
    TooShortForHeader {
        /// Bytes available.
        len: u32,
    },
    /// The header does not start with the MCUboot magic 0x96f3b83d.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// The header size field is smaller than the 32-byte header itself.
    HeaderSizeTooSmall {
        /// The header size field.
        hdr_size: u16,
    },
    /// Header size + image size (+ protected TLV size) runs past the end of the image data.
    SizeOutOfBounds {
        /// The offset the header fields point to.
        end: u64,
        /// Bytes available.
        len: u32,
    },
    /// The image is encrypted; this verifier handles plain images only.
    EncryptedNotSupported,
    /// A TLV area does not start with the expected info magic.
    BadTlvInfoMagic {
        /// The area that was expected there.
        area: TlvArea,
        /// The magic found.
        found: u16,
    },
    /// The protected TLV area's own length disagrees with the header's protected-TLV size.
    ProtectedSizeMismatch {
        /// The size in the image header.
        header: u16,
        /// The size in the protected TLV info.
        info: u16,
    },
    /// A TLV area length is smaller than its 4-byte info header.
    TlvAreaTooSmall {
        /// The area.
        area: TlvArea,
        /// Its length.
        len: u16,
    },
    /// A TLV area, or a TLV inside it, runs past the end of the image data or of its area.
    TlvOutOfBounds {
        /// The area.
        area: TlvArea,
        /// The offset of the offending TLV header.
        offset: u32,
    },
    /// A TLV type that MCUboot does not define and that is not a vendor TLV in the protected area.
    UnknownTlv {
        /// The area.
        area: TlvArea,
        /// The type.
        kind: u16,
    },
    /// A TLV that may appear once appears twice.
    DuplicateTlv {
        /// The type.
        kind: u16,
    },
    /// A TLV sits in the wrong area (e.g. a security counter outside the protected area, where it
    /// would not be signed).
    TlvInWrongArea {
        /// The type.
        kind: u16,
        /// Where it was found.
        found: TlvArea,
    },
    /// A TLV has the wrong length for its type.
    BadTlvLength {
        /// The type.
        kind: u16,
        /// Its length.
        len: u16,
    },
    /// A TLV type is recognised but not supported here (e.g. RSA, pure signatures, encryption).
    UnsupportedTlv {
        /// The type.
        kind: u16,
    },
    /// More dependency TLVs than this verifier records.
    TooManyDependencies,
    /// The image has no hash TLV.
    MissingHash,
    /// The image hash does not match the hash TLV: the image was modified.
    HashMismatch,
    /// The image names no key (neither KEYHASH nor PUBKEY).
    MissingKey,
    /// The key named by the image (KEYHASH or PUBKEY) is not the trusted key.
    KeyMismatch,
    /// The image has no signature TLV for the trusted key's algorithm.
    MissingSignature,
    /// The signature TLV's algorithm does not fit the trusted key or the hash algorithm.
    AlgorithmMismatch,
    /// The signature does not verify with the trusted key.
    BadSignature,
    /// The trusted key (or the PUBKEY in the image) is not a supported SubjectPublicKeyInfo.
    BadPublicKey,
    /// The image's hash or the key's signature algorithm is valid MCUboot but left out of this
    /// build (its cargo feature is off): the image cannot be verified here and is refused.
    UnsupportedAlgorithm(Algorithm),
    /// The slot trailer is not valid (bad magic or field value).
    BadTrailer,
    /// An image does not fit in its slot together with its trailer.
    TooLargeForSlot {
        /// Bytes the image and trailer need.
        needed: u64,
        /// Slot size.
        slot_size: u32,
    },
}

impl ImageError {
    /// What is wrong, in a fixed phrase without the variant's figures: for a boot stage that
    /// reports refusals without any formatting code (the ROM stage). [`fmt::Display`] gives the
    /// figures too.
    pub const fn reason(&self) -> &'static str {
        use ImageError::*;
        match self {
            Read => "the image could not be read",
            TooShortForHeader { .. } => "truncated: shorter than the 32-byte image header",
            BadMagic { .. } => "not an MCUboot image: wrong header magic",
            HeaderSizeTooSmall { .. } => "header size is smaller than the 32-byte header",
            SizeOutOfBounds { .. } => "truncated or lying header: sizes point past the image",
            EncryptedNotSupported => "encrypted images are not supported",
            BadTlvInfoMagic { .. } => "a TLV area does not start with a TLV info magic",
            ProtectedSizeMismatch { .. } => "protected TLV size lies",
            TlvAreaTooSmall { .. } => "a TLV area is smaller than its own info header",
            TlvOutOfBounds { .. } => "a TLV runs past the end of its area or of the image",
            UnknownTlv { .. } => "unknown TLV type",
            DuplicateTlv { .. } => "a TLV type appears more than once",
            TlvInWrongArea { .. } => "a TLV is in an area where it is not allowed",
            BadTlvLength { .. } => "a TLV has a length that is wrong for its type",
            UnsupportedTlv { .. } => "unsupported TLV type",
            TooManyDependencies => "too many dependency TLVs",
            MissingHash => "the image has no hash TLV",
            HashMismatch => {
                "image hash does not match the hash TLV: the header, payload or protected TLVs were modified"
            }
            MissingKey => "the image names no key (no KEYHASH or PUBKEY TLV)",
            KeyMismatch => "the image was signed for another key than the trusted one",
            MissingSignature => "the image carries no signature for the trusted key's algorithm",
            AlgorithmMismatch => {
                "the signature algorithm does not fit the trusted key or the image hash algorithm"
            }
            BadSignature => "signature does not verify with the trusted key",
            BadPublicKey => "the public key is not a supported SubjectPublicKeyInfo",
            UnsupportedAlgorithm(_) => "algorithm not supported by this build of the verifier",
            BadTrailer => "the slot trailer is invalid",
            TooLargeForSlot { .. } => "image and trailer do not fit the slot",
        }
    }
}

impl Describe for ImageError {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        use ImageError::*;
        use Piece::{Dec, Hex, Str};
        match *self {
            TooShortForHeader { len } => out.fill("truncated: {} bytes is shorter than the 32-byte image header", &[Dec(len.into())]),
            BadMagic { found } => out.fill("not an MCUboot image: header magic is {}, expected 0x96f3b83d", &[Hex(found.into(), 8)]),
            HeaderSizeTooSmall { hdr_size } => out.fill("header size {} is smaller than the 32-byte header", &[Hex(hdr_size.into(), 1)]),
            SizeOutOfBounds { end, len } => out.fill("truncated or lying header: sizes point to offset {} but the image has only {} bytes", &[Hex(end, 1), Hex(len.into(), 1)]),
            BadTlvInfoMagic { area, found } => out.fill("{} TLV area has magic {}, which is not a TLV info magic", &[Str(area.name()), Hex(found.into(), 4)]),
            ProtectedSizeMismatch { header, info } => out.fill("protected TLV size lies: header says {}, the area says {}", &[Hex(header.into(), 1), Hex(info.into(), 1)]),
            TlvAreaTooSmall { area, len } => out.fill("{} TLV area length {} is smaller than its own info header", &[Str(area.name()), Hex(len.into(), 1)]),
            TlvOutOfBounds { area, offset } => out.fill("{} TLV at offset {} runs past the end of its area or of the image", &[Str(area.name()), Hex(offset.into(), 1)]),
            UnknownTlv { area, kind } => out.fill("unknown TLV type {} in the {} area", &[Hex(kind.into(), 1), Str(area.name())]),
            DuplicateTlv { kind } => out.fill("TLV type {} appears more than once", &[Hex(kind.into(), 1)]),
            TlvInWrongArea { kind, found } => out.fill("TLV type {} is in the {} area, where it is not allowed (a security counter or boot record must be protected by the signature)", &[Hex(kind.into(), 1), Str(found.name())]),
            BadTlvLength { kind, len } => out.fill("TLV type {} has length {}, which is wrong for its type", &[Hex(kind.into(), 1), Dec(len.into())]),
            UnsupportedTlv { kind } => out.fill("TLV type {} is not supported", &[Hex(kind.into(), 1)]),
            UnsupportedAlgorithm(alg) => out.fill("{} is not supported by this build of the verifier (castellan-image feature `{}` is off)", &[Str(alg.name()), Str(alg.feature())]),
            TooLargeForSlot { needed, slot_size } => out.fill("image and trailer need {} bytes but the slot holds only {}", &[Hex(needed, 1), Hex(slot_size.into(), 1)]),
            // The variants without figures say exactly their reason.
            _ => out.put(self.reason()),
        }
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

impl core::error::Error for ImageError {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn variants_without_figures_display_exactly_their_reason() {
        for e in [
            ImageError::Read,
            ImageError::HashMismatch,
            ImageError::BadSignature,
            ImageError::KeyMismatch,
            ImageError::BadTrailer,
        ] {
            assert_eq!(e.to_string(), e.reason());
        }
    }

    #[test]
    fn reasons_carry_no_figures_but_displays_do() {
        let e = ImageError::BadMagic { found: 0x1234_5678 };
        assert_eq!(e.reason(), "not an MCUboot image: wrong header magic");
        assert!(e.to_string().contains("0x12345678"));
    }
}
