//! What the boot stages measured: one [`Measurement`] per verified image, collected in the
//! [`BootRecord`] that attestation reports (PSA software components: type, digest, signer id,
//! version).

use core::fmt;

use castellan_hal::{Flash, Partition};
use castellan_image::{ImageDigest, VerifiedImage, Version};

use crate::BootError;
use crate::flash::SlotReader;

/// Longest measurement type (as MCUboot's boot record allows: 12 characters).
pub const SW_TYPE_MAX: usize = 12;
/// Entries a boot record holds.
pub const BOOT_RECORD_CAPACITY: usize = 4;

/// A measurement type such as "BL", "SPE", "NSPE" or "APP": printable ASCII, up to 12 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwType {
    bytes: [u8; SW_TYPE_MAX],
    len: u8,
}

impl SwType {
    /// The type `s`, or `None` when it is empty, longer than 12 bytes or not printable ASCII.
    pub fn new(s: &str) -> Option<Self> {
        Self::from_bytes(s.as_bytes())
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.is_empty() || b.len() > SW_TYPE_MAX || !b.iter().all(|c| (0x20..0x7f).contains(c)) {
            return None;
        }
        let mut bytes = [0u8; SW_TYPE_MAX];
        for (d, s) in bytes.iter_mut().zip(b) {
            *d = *s;
        }
        Some(SwType {
            bytes,
            len: b.len() as u8,
        })
    }

    /// The type as text.
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(b).unwrap_or("")
    }
}

impl fmt::Debug for SwType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for SwType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a stage measured about the image it verified and hands control to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// Measurement type: from the image's boot-record TLV when it has one, else the stage's
    /// default ("BL" for the bootloader, "APP" for the primary slot).
    pub sw_type: SwType,
    /// Digest over header, payload and protected TLVs (the image's hash TLV).
    pub digest: ImageDigest,
    /// SHA-256 of the public key that signed it.
    pub signer_id: [u8; 32],
    /// Image version.
    pub version: Version,
    /// Security counter from the protected TLVs, if any.
    pub security_counter: Option<u32>,
}

impl Measurement {
    /// The measurement of a verified image in `part`, its type read from the boot-record TLV.
    pub fn of<F: Flash>(
        flash: &mut F,
        part: Partition,
        v: &VerifiedImage,
        default_type: &str,
    ) -> Result<Self, BootError> {
        let fallback = SwType::new(default_type).ok_or(BootError::Layout("measurement type"))?;
        let sw_type = match v.boot_record {
            Some(t) => {
                let mut buf = [0u8; 128];
                match buf.get_mut(..usize::from(t.len)) {
                    Some(tlv) => {
                        let mut src = SlotReader::new(flash, part);
                        let r = castellan_image::ImageSource::read(&mut src, t.offset, tlv);
                        src.split(r)?.ok().and_then(|()| boot_record_sw_type(tlv))
                    }
                    None => None,
                }
            }
            None => None,
        };
        Ok(Measurement {
            sw_type: sw_type.unwrap_or(fallback),
            digest: v.digest,
            signer_id: v.signer_id,
            version: v.version(),
            security_counter: v.security_counter,
        })
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} digest ", self.sw_type, self.version)?;
        hex(f, self.digest.as_bytes())?;
        f.write_str(" signer ")?;
        hex(f, &self.signer_id)?;
        match self.security_counter {
            Some(c) => write!(f, " security-counter {c}"),
            None => f.write_str(" security-counter none"),
        }
    }
}

/// Lower-case hex of public bytes.
pub(crate) fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// The measurements of one boot, in boot order (bootloader first), for the attestation
/// service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootRecord {
    entries: [Option<Measurement>; BOOT_RECORD_CAPACITY],
}

impl Default for BootRecord {
    fn default() -> Self {
        BootRecord::new()
    }
}

impl BootRecord {
    /// An empty record (the bootloader fills it: "BL", then the application).
    pub const fn new() -> Self {
        BootRecord {
            entries: [None; BOOT_RECORD_CAPACITY],
        }
    }

    /// Appends a measurement; fails when the record is full ([`BOOT_RECORD_CAPACITY`]).
    pub fn push(&mut self, m: Measurement) -> Result<(), BootError> {
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.is_none())
            .ok_or(BootError::Layout("boot record full"))?;
        *slot = Some(m);
        Ok(())
    }

    /// The entries, in boot order.
    pub fn iter(&self) -> impl Iterator<Item = &Measurement> {
        self.entries.iter().flatten()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when no image was measured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The measurement type (key 1, a text string) of a boot-record TLV: the CBOR map of PSA
/// software-component claims imgtool writes. `None` for anything else. Signed, but still
/// parsed as hostile input: definite-length items only, bounds-checked.
pub(crate) fn boot_record_sw_type(cbor: &[u8]) -> Option<SwType> {
    let mut pos = 0usize;
    let (major, entries) = head(cbor, &mut pos)?;
    if major != 5 || entries > 16 {
        return None;
    }
    for _ in 0..entries {
        let (kmajor, key) = head(cbor, &mut pos)?;
        if kmajor != 0 {
            return None;
        }
        let (vmajor, arg) = head(cbor, &mut pos)?;
        match vmajor {
            0 | 1 => {}
            2 | 3 => {
                let len = usize::try_from(arg).ok()?;
                let end = pos.checked_add(len)?;
                let value = cbor.get(pos..end)?;
                if key == 1 && vmajor == 3 {
                    return SwType::from_bytes(value);
                }
                pos = end;
            }
            _ => return None,
        }
    }
    None
}

/// One CBOR head: major type and argument.
fn head(b: &[u8], pos: &mut usize) -> Option<(u8, u64)> {
    let ib = *b.get(*pos)?;
    *pos += 1;
    let n = match ib & 0x1f {
        ai @ 0..=23 => return Some((ib >> 5, u64::from(ai))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let end = pos.checked_add(n)?;
    let arg = b
        .get(*pos..end)?
        .iter()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    *pos = end;
    Some((ib >> 5, arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sw_type_comes_from_the_boot_record_map() {
        // {1: "NSPE", 4: "1.2.3", 5: h'0102', 2: h'00'}
        let cbor = [
            0xa4, 0x01, 0x64, b'N', b'S', b'P', b'E', 0x04, 0x65, b'1', b'.', b'2', b'.', b'3',
            0x05, 0x42, 1, 2, 0x02, 0x41, 0,
        ];
        assert_eq!(boot_record_sw_type(&cbor).unwrap().as_str(), "NSPE");
        // Key 1 missing, truncated, or not a map.
        assert_eq!(boot_record_sw_type(&[0xa1, 0x04, 0x61, b'x']), None);
        assert_eq!(boot_record_sw_type(&cbor[..5]), None);
        assert_eq!(boot_record_sw_type(&[0x81, 0x01]), None);
        // Too long or not printable.
        let long = [
            0xa1, 0x01, 0x6d, b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a', b'a',
            b'a', b'a',
        ];
        assert_eq!(boot_record_sw_type(&long), None);
        assert_eq!(boot_record_sw_type(&[0xa1, 0x01, 0x61, 0x07]), None);
    }

    #[test]
    fn hostile_lengths_do_not_panic() {
        for cbor in [
            &[
                0xa1u8, 0x01, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
            &[0xb8, 0xff],
            &[0xa1, 0x01, 0x5f],
            &[],
        ] {
            assert_eq!(boot_record_sw_type(cbor), None);
        }
    }
}
