//! The 32-byte MCUboot image header and the image version.
//!
//! ```text
//!  off  size  field
//!   0    4    magic 0x96f3b83d
//!   4    4    load address
//!   8    2    header size (the payload starts here)
//!  10    2    protected TLV area size (0 when there is none)
//!  12    4    image (payload) size
//!  16    4    flags
//!  20    8    version: major u8, minor u8, revision u16, build u32
//!  28    4    padding
//! ```
//! All fields are little-endian.

use core::fmt;

use crate::ImageError;

/// The MCUboot image magic.
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;
/// Size of the fixed header structure.
pub const IMAGE_HEADER_SIZE: usize = 32;

/// Header flag: position-independent code.
pub const FLAG_PIC: u32 = 0x0000_0001;
/// Header flag: payload encrypted with AES-128.
pub const FLAG_ENCRYPTED_AES128: u32 = 0x0000_0004;
/// Header flag: payload encrypted with AES-256.
pub const FLAG_ENCRYPTED_AES256: u32 = 0x0000_0008;
/// Header flag: the image is not bootable (e.g. a data image).
pub const FLAG_NON_BOOTABLE: u32 = 0x0000_0010;
/// Header flag: load into RAM before running.
pub const FLAG_RAM_LOAD: u32 = 0x0000_0020;
/// Header flag: the image runs from a fixed ROM address.
pub const FLAG_ROM_FIXED: u32 = 0x0000_0100;

/// Names of the header flags, as `imgtool dumpinfo` prints them.
pub const FLAG_NAMES: [(u32, &str); 9] = [
    (FLAG_PIC, "PIC"),
    (FLAG_ENCRYPTED_AES128, "ENCRYPTED_AES128"),
    (FLAG_ENCRYPTED_AES256, "ENCRYPTED_AES256"),
    (FLAG_NON_BOOTABLE, "NON_BOOTABLE"),
    (FLAG_RAM_LOAD, "RAM_LOAD"),
    (FLAG_ROM_FIXED, "ROM_FIXED"),
    (0x0000_0200, "COMPRESSED_LZMA1"),
    (0x0000_0400, "COMPRESSED_LZMA2"),
    (0x0000_0800, "COMPRESSED_ARM_THUMB"),
];

/// An image version `major.minor.revision+build`.
///
/// Ordering compares `major`, `minor`, `revision` and then `build`, as MCUboot does when it
/// is built to consider the build number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number.
    pub minor: u8,
    /// Revision number.
    pub revision: u16,
    /// Build number.
    pub build: u32,
}

impl Version {
    /// Create a version.
    pub const fn new(major: u8, minor: u8, revision: u16, build: u32) -> Self {
        Version {
            major,
            minor,
            revision,
            build,
        }
    }

    /// The security counter imgtool derives with `--security-counter auto`:
    /// `major << 24 | minor << 16 | revision`.
    pub const fn auto_security_counter(&self) -> u32 {
        ((self.major as u32) << 24) | ((self.minor as u32) << 16) | self.revision as u32
    }

    /// Parse `maj[.min[.rev[+build]]]`, the syntax imgtool accepts (no leading zeros).
    pub fn parse(text: &str) -> Option<Version> {
        fn number<T: TryFrom<u64>>(s: &str) -> Option<T> {
            if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                return None;
            }
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            T::try_from(s.parse::<u64>().ok()?).ok()
        }
        let (main, build) = match text.split_once('+') {
            Some((m, b)) => (m, Some(b)),
            None => (text, None),
        };
        let mut parts = main.split('.');
        let major = number(parts.next()?)?;
        let minor = parts.next().map(number).unwrap_or(Some(0))?;
        let revision = parts.next().map(number).unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        // A build number needs all three leading parts, as in imgtool's grammar.
        if build.is_some() && main.split('.').count() != 3 {
            return None;
        }
        let build = build.map(number).unwrap_or(Some(0))?;
        Some(Version {
            major,
            minor,
            revision,
            build,
        })
    }
}

/// Serialised as the text `maj.min.rev+build`, as `imgtool dumpinfo` prints it.
#[cfg(feature = "std")]
impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl castellan_text::Describe for Version {
    fn describe(
        &self,
        out: &mut dyn castellan_text::Sink,
    ) -> Result<(), castellan_text::TextError> {
        use castellan_text::Piece::Dec;
        out.fill(
            "{}.{}.{}+{}",
            &[
                Dec(self.major.into()),
                Dec(self.minor.into()),
                Dec(self.revision.into()),
                Dec(self.build.into()),
            ],
        )
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

/// The decoded image header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct ImageHeader {
    /// Magic (always [`IMAGE_MAGIC`] once parsed).
    pub magic: u32,
    /// Load address (RAM-load or ROM-fixed images), else 0.
    pub load_addr: u32,
    /// Header size: offset of the payload.
    pub hdr_size: u16,
    /// Size of the protected TLV area, 0 if absent.
    pub protected_tlv_size: u16,
    /// Payload size.
    pub img_size: u32,
    /// Flags (`FLAG_*`).
    pub flags: u32,
    /// Version.
    pub version: Version,
}

impl ImageHeader {
    /// Decode and sanity-check the header from its 32 bytes. Bounds against the image length
    /// are checked by the caller, which knows the length.
    #[allow(
        clippy::indexing_slicing,
        reason = "constant offsets into a fixed 32-byte array"
    )]
    pub fn decode(b: &[u8; IMAGE_HEADER_SIZE]) -> Result<ImageHeader, ImageError> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let magic = u32_at(0);
        if magic != IMAGE_MAGIC {
            return Err(ImageError::BadMagic { found: magic });
        }
        let hdr_size = u16_at(8);
        if usize::from(hdr_size) < IMAGE_HEADER_SIZE {
            return Err(ImageError::HeaderSizeTooSmall { hdr_size });
        }
        Ok(ImageHeader {
            magic,
            load_addr: u32_at(4),
            hdr_size,
            protected_tlv_size: u16_at(10),
            img_size: u32_at(12),
            flags: u32_at(16),
            version: Version {
                major: b[20],
                minor: b[21],
                revision: u16_at(22),
                build: u32_at(24),
            },
        })
    }

    /// Encode the header into its 32 bytes.
    pub fn encode(&self) -> [u8; IMAGE_HEADER_SIZE] {
        let mut b = [0u8; IMAGE_HEADER_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.load_addr.to_le_bytes());
        b[8..10].copy_from_slice(&self.hdr_size.to_le_bytes());
        b[10..12].copy_from_slice(&self.protected_tlv_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.img_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        b[20] = self.version.major;
        b[21] = self.version.minor;
        b[22..24].copy_from_slice(&self.version.revision.to_le_bytes());
        b[24..28].copy_from_slice(&self.version.build.to_le_bytes());
        b
    }

    /// Offset of the first TLV area (protected if present): header + payload.
    pub fn tlv_offset(&self) -> u64 {
        u64::from(self.hdr_size) + u64::from(self.img_size)
    }

    /// Whether the payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.flags & (FLAG_ENCRYPTED_AES128 | FLAG_ENCRYPTED_AES256) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_grammar_matches_imgtool() {
        assert_eq!(Version::parse("1.2.3+4"), Some(Version::new(1, 2, 3, 4)));
        assert_eq!(Version::parse("1"), Some(Version::new(1, 0, 0, 0)));
        assert_eq!(Version::parse("0.7"), Some(Version::new(0, 7, 0, 0)));
        assert_eq!(Version::parse("01.2"), None);
        assert_eq!(Version::parse("1.2+3"), None);
        assert_eq!(Version::parse("256.0.0"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse(""), None);
        assert_eq!(Version::parse("1.x"), None);
    }

    #[test]
    fn auto_security_counter_is_major_minor_revision() {
        assert_eq!(
            Version::new(1, 2, 3, 9).auto_security_counter(),
            0x0102_0003
        );
    }

    #[test]
    fn header_round_trip() {
        let h = ImageHeader {
            magic: IMAGE_MAGIC,
            load_addr: 0x1000,
            hdr_size: 0x200,
            protected_tlv_size: 12,
            img_size: 1234,
            flags: FLAG_RAM_LOAD,
            version: Version::new(1, 2, 3, 4),
        };
        assert_eq!(ImageHeader::decode(&h.encode()), Ok(h));
    }
}
