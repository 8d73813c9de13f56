//! Why an image was refused: one error type for the whole crate, each variant naming what is wrong.

use core::fmt;

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

impl fmt::Display for TlvArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlvArea::Protected => "protected",
            TlvArea::Unprotected => "unprotected",
        })
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

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Signature(KeyType::Ed25519) => "Ed25519",
            Algorithm::Signature(KeyType::EcdsaP256) => "ECDSA P-256",
            Algorithm::Signature(KeyType::EcdsaP384) => "ECDSA P-384",
            Algorithm::Hash(HashAlg::Sha256) => "SHA-256",
            Algorithm::Hash(HashAlg::Sha384) => "SHA-384",
            Algorithm::Hash(HashAlg::Sha512) => "SHA-512",
        })
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

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImageError::*;
        match *self {
            TooShortForHeader { len } => {
                write!(
                    f,
                    "truncated: {len} bytes is shorter than the 32-byte image header"
                )
            }
            BadMagic { found } => {
                write!(
                    f,
                    "not an MCUboot image: header magic is {found:#010x}, expected 0x96f3b83d"
                )
            }
            HeaderSizeTooSmall { hdr_size } => {
                write!(
                    f,
                    "header size {hdr_size:#x} is smaller than the 32-byte header"
                )
            }
            SizeOutOfBounds { end, len } => write!(
                f,
                "truncated or lying header: sizes point to offset {end:#x} but the image has only {len:#x} bytes"
            ),
            BadTlvInfoMagic { area, found } => {
                write!(
                    f,
                    "{area} TLV area has magic {found:#06x}, which is not a TLV info magic"
                )
            }
            ProtectedSizeMismatch { header, info } => write!(
                f,
                "protected TLV size lies: header says {header:#x}, the area says {info:#x}"
            ),
            TlvAreaTooSmall { area, len } => {
                write!(
                    f,
                    "{area} TLV area length {len:#x} is smaller than its own info header"
                )
            }
            TlvOutOfBounds { area, offset } => write!(
                f,
                "{area} TLV at offset {offset:#x} runs past the end of its area or of the image"
            ),
            UnknownTlv { area, kind } => write!(f, "unknown TLV type {kind:#x} in the {area} area"),
            DuplicateTlv { kind } => write!(f, "TLV type {kind:#x} appears more than once"),
            TlvInWrongArea { kind, found } => write!(
                f,
                "TLV type {kind:#x} is in the {found} area, where it is not allowed (a security counter or boot record must be protected by the signature)"
            ),
            BadTlvLength { kind, len } => {
                write!(
                    f,
                    "TLV type {kind:#x} has length {len}, which is wrong for its type"
                )
            }
            UnsupportedTlv { kind } => write!(f, "TLV type {kind:#x} is not supported"),
            UnsupportedAlgorithm(alg) => write!(
                f,
                "{alg} is not supported by this build of the verifier (castellan-image feature `{}` is off)",
                alg.feature()
            ),
            TooLargeForSlot { needed, slot_size } => write!(
                f,
                "image and trailer need {needed:#x} bytes but the slot holds only {slot_size:#x}"
            ),
            // The variants without figures say exactly their reason.
            _ => f.write_str(self.reason()),
        }
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
