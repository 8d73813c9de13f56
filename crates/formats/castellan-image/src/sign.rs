//! Signing (std): build an MCUboot image the way `imgtool sign` does, byte for byte.
//!
//! Layout produced, in order: header (with `--pad-header`, prepended as erased bytes; without,
//! the input must start with `header_size` zero bytes), payload, protected TLVs (SEC_CNT,
//! BOOT_RECORD, DEPENDENCY…, in imgtool's order), then the unprotected TLVs: hash, KEYHASH or
//! PUBKEY, signature. With `--pad` (implied by `--confirm`), erased bytes up to the slot size
//! and the trailer magic (and image_ok = 1 when confirmed).

use std::vec::Vec;

use crate::digest::HashAlg;
use crate::header::{IMAGE_HEADER_SIZE, IMAGE_MAGIC, ImageHeader, Version};
use crate::key::KeyType;
use crate::keyfile::SigningKey;
use crate::tlv::{TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC, kind};
use crate::trailer::{self, FLAG_SET, TrailerLayout};
use crate::verify::Dependency;

/// How the image names its signing key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PublicKeyFormat {
    /// KEYHASH: the hash of the key (imgtool's default).
    #[default]
    Hash,
    /// PUBKEY: the whole SubjectPublicKeyInfo (needed by devices that keep only a key hash).
    Full,
}

/// Options of `imgtool sign` that Castellan supports, with imgtool's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// `--version`.
    pub version: Version,
    /// `--header-size`.
    pub header_size: u16,
    /// `--pad-header`: prepend `header_size` erased bytes instead of expecting zeros.
    pub pad_header: bool,
    /// `--slot-size` (0: unknown; required with `pad`).
    pub slot_size: u32,
    /// `--align`: flash write size, 1, 2, 4, 8, 16 or 32.
    pub align: u32,
    /// `--max-align`: trailer field alignment; default max(8, align).
    pub max_align: Option<u32>,
    /// `--max-sectors`.
    pub max_sectors: u32,
    /// `--overwrite-only`: smaller trailer, no image_ok written by `--confirm`.
    pub overwrite_only: bool,
    /// `--security-counter`.
    pub security_counter: Option<u32>,
    /// `--boot-record`: software type for a boot-record TLV.
    pub boot_record: Option<std::string::String>,
    /// `--dependencies`.
    pub dependencies: Vec<Dependency>,
    /// `--pad`: pad to the slot size and write the trailer magic.
    pub pad: bool,
    /// `--confirm`: mark the image confirmed (image_ok = 1); implies `pad`.
    pub confirm: bool,
    /// `--public-key-format`.
    pub public_key_format: PublicKeyFormat,
    /// `--load-addr`.
    pub load_addr: u32,
    /// `--erased-val`: 0xff or 0x00.
    pub erased_val: u8,
    /// `--sha`: hash algorithm; `None` chooses as imgtool does for the key.
    pub hash: Option<HashAlg>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            version: Version::default(),
            header_size: IMAGE_HEADER_SIZE as u16,
            pad_header: false,
            slot_size: 0,
            align: 1,
            max_align: None,
            max_sectors: trailer::DEFAULT_MAX_SECTORS,
            overwrite_only: false,
            security_counter: None,
            boot_record: None,
            dependencies: Vec::new(),
            pad: false,
            confirm: false,
            public_key_format: PublicKeyFormat::Hash,
            load_addr: 0,
            erased_val: 0xff,
            hash: None,
        }
    }
}

/// Why an image could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// Without `--pad-header`, the input must start with `header_size` zero bytes.
    HeaderNotZero,
    /// The header size is smaller than 32 bytes or larger than the input allows.
    BadHeaderSize,
    /// `--align` must be 1, 2, 4, 8, 16 or 32 and `--max-align` a power of two ≥ 8.
    BadAlign,
    /// The hash algorithm does not fit the key (e.g. SHA-512 with ECDSA P-256).
    HashNotAllowedForKey,
    /// `--pad` needs `--slot-size`.
    PadNeedsSlotSize,
    /// Image plus trailer do not fit in the slot.
    TooLargeForSlot {
        /// Bytes needed.
        needed: u64,
        /// Slot size.
        slot_size: u32,
    },
    /// The image is larger than the header fields can describe.
    TooLarge,
    /// The boot-record software type is longer than 12 characters.
    SwTypeTooLong,
    /// The key could not sign.
    Key,
}

impl core::fmt::Display for SignError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SignError::HeaderNotZero => f.write_str(
                "the input does not start with header-size zero bytes; pass --pad-header to add the header",
            ),
            SignError::BadHeaderSize => {
                f.write_str("header size must be at least 32 bytes and fit the input")
            }
            SignError::BadAlign => f.write_str(
                "--align must be 1, 2, 4, 8, 16 or 32 and --max-align a power of two of at least 8",
            ),
            SignError::HashNotAllowedForKey => {
                f.write_str("this hash algorithm cannot be used with this key type")
            }
            SignError::PadNeedsSlotSize => f.write_str("--pad and --confirm need --slot-size"),
            SignError::TooLargeForSlot { needed, slot_size } => write!(
                f,
                "image size plus trailer is {needed:#x} bytes, which exceeds the slot size {slot_size:#x}"
            ),
            SignError::TooLarge => f.write_str("the image is too large for the header fields"),
            SignError::SwTypeTooLong => {
                f.write_str("the boot-record software type is longer than 12 characters")
            }
            SignError::Key => f.write_str("the key could not produce a signature"),
        }
    }
}

impl std::error::Error for SignError {}

/// The hash imgtool chooses for a key type when `--sha` is `auto`.
fn default_hash(key: KeyType) -> HashAlg {
    match key {
        KeyType::Ed25519 | KeyType::EcdsaP256 => HashAlg::Sha256,
        KeyType::EcdsaP384 => HashAlg::Sha384,
    }
}

/// Hash algorithms imgtool allows for each key type.
fn allowed_hashes(key: KeyType) -> &'static [HashAlg] {
    match key {
        KeyType::Ed25519 => &[HashAlg::Sha256, HashAlg::Sha512],
        KeyType::EcdsaP256 => &[HashAlg::Sha256],
        KeyType::EcdsaP384 => &[HashAlg::Sha384],
    }
}

/// Accumulates a TLV area.
struct TlvWriter {
    magic: u16,
    buf: Vec<u8>,
}

impl TlvWriter {
    fn new(magic: u16) -> Self {
        TlvWriter {
            magic,
            buf: Vec::new(),
        }
    }

    fn add(&mut self, kind: u16, value: &[u8]) {
        self.buf.extend_from_slice(&kind.to_le_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(value);
    }

    /// The area with its info header, or nothing when empty (as imgtool does).
    fn finish(self) -> Vec<u8> {
        if self.buf.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.buf.len() + 4);
        out.extend_from_slice(&self.magic.to_le_bytes());
        out.extend_from_slice(&((self.buf.len() + 4) as u16).to_le_bytes());
        out.extend_from_slice(&self.buf);
        out
    }
}

/// Minimal CBOR head (major type + argument), as used by the boot record.
fn cbor_head(out: &mut Vec<u8>, major: u8, n: usize) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

/// The boot record imgtool writes: a CBOR map of PSA software-component claims with a zeroed
/// measurement value (the bootloader fills in the measured digest), measurement value last.
pub fn boot_record(sw_type: &str, version: &Version, alg: HashAlg, signer: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let text = |out: &mut Vec<u8>, s: &str| {
        cbor_head(out, 3, s.len());
        out.extend_from_slice(s.as_bytes());
    };
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        cbor_head(out, 2, b.len());
        out.extend_from_slice(b);
    };
    cbor_head(&mut out, 5, 5);
    out.push(0x01); // measurement type
    text(&mut out, sw_type);
    out.push(0x04); // version
    text(
        &mut out,
        &std::format!("{}.{}.{}", version.major, version.minor, version.revision),
    );
    out.push(0x05); // signer id
    bytes(&mut out, signer);
    out.push(0x06); // measurement description
    let desc = match alg {
        HashAlg::Sha256 => "SHA256",
        HashAlg::Sha384 => "SHA384",
        HashAlg::Sha512 => "SHA512",
    };
    text(&mut out, desc);
    out.push(0x02); // measurement value, filled in at boot
    bytes(&mut out, &std::vec![0u8; alg.digest_len()]);
    out
}

/// Sign `input` (a raw binary) into an MCUboot image.
pub fn sign_image(
    input: &[u8],
    key: &SigningKey,
    opts: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    if ![1, 2, 4, 8, 16, 32].contains(&opts.align) {
        return Err(SignError::BadAlign);
    }
    let max_align = opts
        .max_align
        .unwrap_or(core::cmp::max(trailer::DEFAULT_MAX_ALIGN, opts.align));
    if !max_align.is_power_of_two() || max_align < 8 || max_align < opts.align {
        return Err(SignError::BadAlign);
    }
    let alg = match opts.hash {
        None => default_hash(key.key_type()),
        Some(h) if allowed_hashes(key.key_type()).contains(&h) => h,
        Some(_) => return Err(SignError::HashNotAllowedForKey),
    };
    let hdr = usize::from(opts.header_size);
    if hdr < IMAGE_HEADER_SIZE {
        return Err(SignError::BadHeaderSize);
    }
    let mut image: Vec<u8> = if opts.pad_header {
        let mut v = std::vec![opts.erased_val; hdr];
        v.extend_from_slice(input);
        v
    } else {
        let head = input.get(..hdr).ok_or(SignError::BadHeaderSize)?;
        if head.iter().any(|&b| b != 0) {
            return Err(SignError::HeaderNotZero);
        }
        input.to_vec()
    };
    let img_size = u32::try_from(image.len() - hdr).map_err(|_| SignError::TooLarge)?;

    let pub_der = key.public_spki_der();
    let pub_hash = alg.digest(&pub_der);

    // Protected TLVs, in imgtool's order.
    let mut prot = TlvWriter::new(TLV_PROT_INFO_MAGIC);
    if let Some(c) = opts.security_counter {
        prot.add(kind::SEC_CNT, &c.to_le_bytes());
    }
    if let Some(sw_type) = &opts.boot_record {
        if sw_type.len() > 12 {
            return Err(SignError::SwTypeTooLong);
        }
        prot.add(
            kind::BOOT_RECORD,
            &boot_record(sw_type, &opts.version, alg, pub_hash.as_bytes()),
        );
    }
    for d in &opts.dependencies {
        prot.add(kind::DEPENDENCY, &d.encode());
    }
    let prot = prot.finish();
    let header = ImageHeader {
        magic: IMAGE_MAGIC,
        load_addr: opts.load_addr,
        hdr_size: opts.header_size,
        protected_tlv_size: u16::try_from(prot.len()).map_err(|_| SignError::TooLarge)?,
        img_size,
        flags: if opts.load_addr != 0 {
            crate::header::FLAG_RAM_LOAD
        } else {
            0
        },
        version: opts.version,
    };
    image.splice(..IMAGE_HEADER_SIZE, header.encode());
    image.extend_from_slice(&prot);

    // Unprotected TLVs: hash, key, signature.
    let digest = alg.digest(&image);
    let mut tlv = TlvWriter::new(TLV_INFO_MAGIC);
    tlv.add(alg.tlv_kind(), digest.as_bytes());
    match opts.public_key_format {
        PublicKeyFormat::Hash => tlv.add(kind::KEYHASH, pub_hash.as_bytes()),
        PublicKeyFormat::Full => tlv.add(kind::PUBKEY, &pub_der),
    }
    let sig = key
        .sign_digest(digest.as_bytes())
        .map_err(|_| SignError::Key)?;
    let sig_kind = match key.key_type() {
        KeyType::Ed25519 => kind::ED25519,
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => kind::ECDSA_SIG,
    };
    tlv.add(sig_kind, &sig);
    image.extend_from_slice(&tlv.finish());

    let pad = opts.pad || opts.confirm;
    if opts.slot_size > 0 || pad {
        if opts.slot_size == 0 {
            return Err(SignError::PadNeedsSlotSize);
        }
        let tsize = TrailerLayout::trailer_size(
            opts.align,
            max_align,
            opts.max_sectors,
            opts.overwrite_only,
        );
        let needed = image.len() as u64 + u64::from(tsize);
        if needed > u64::from(opts.slot_size) {
            return Err(SignError::TooLargeForSlot {
                needed,
                slot_size: opts.slot_size,
            });
        }
        if pad {
            let slot = opts.slot_size as usize;
            image.resize(slot - 16, opts.erased_val);
            image.extend_from_slice(&trailer::boot_magic(max_align));
            if opts.confirm && !opts.overwrite_only {
                let at = TrailerLayout::new(opts.slot_size, max_align).image_ok_off() as usize;
                if let Some(b) = image.get_mut(at) {
                    *b = FLAG_SET;
                }
            }
        }
    }
    Ok(image)
}
