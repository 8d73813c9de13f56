//! Image verification exactly as MCUboot defines it: header and TLV bounds, the hash over
//! header + payload + protected TLVs, the key named by the image, and the signature over the
//! hash. No heap, no panic: every byte of the image is treated as hostile.

use subtle::ConstantTimeEq;

use crate::ImageError;
use crate::digest::{HashAlg, ImageDigest, hash_region};
use crate::error::{Algorithm, TlvArea};
use crate::header::{IMAGE_HEADER_SIZE, ImageHeader, Version};
use crate::key::{KeyType, PublicKey, TrustedKey, signer_id};
use crate::signature::{SignerKey, check_signature};
use crate::source::ImageSource;
use crate::tlv::{TlvAreaBounds, TlvRef, kind, kind_name};

/// At most this many dependency TLVs are recorded.
pub const MAX_DEPENDENCIES: usize = 4;
/// Largest PUBKEY TLV accepted (a P-384 SubjectPublicKeyInfo is 120 bytes).
const MAX_PUBKEY_LEN: usize = 128;
/// Largest signature TLV accepted (DER P-384 plus imgtool's optional zero padding).
const MAX_SIG_LEN: usize = 112;

/// A dependency on another image (TLV 0x40): image `image_id` must be at least `min_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct Dependency {
    /// Index of the image depended on.
    pub image_id: u8,
    /// Minimum version required.
    pub min_version: Version,
}

impl Dependency {
    /// Decode the 12-byte TLV value.
    pub fn decode(b: &[u8; 12]) -> Dependency {
        let [id, _, _, _, major, minor, r0, r1, b0, b1, b2, b3] = *b;
        Dependency {
            image_id: id,
            min_version: Version {
                major,
                minor,
                revision: u16::from_le_bytes([r0, r1]),
                build: u32::from_le_bytes([b0, b1, b2, b3]),
            },
        }
    }

    /// Encode the 12-byte TLV value.
    pub fn encode(&self) -> [u8; 12] {
        let v = &self.min_version;
        let [r0, r1] = v.revision.to_le_bytes();
        let [b0, b1, b2, b3] = v.build.to_le_bytes();
        [
            self.image_id,
            0,
            0,
            0,
            v.major,
            v.minor,
            r0,
            r1,
            b0,
            b1,
            b2,
            b3,
        ]
    }
}

/// The checked structure of an image: header and TLV area bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// The header.
    pub header: ImageHeader,
    /// The protected TLV area, if the header declares one.
    pub protected: Option<TlvAreaBounds>,
    /// The unprotected TLV area.
    pub unprotected: TlvAreaBounds,
}

impl ImageLayout {
    /// Read the header and locate both TLV areas, checking every size against the source length.
    pub fn read<S: ImageSource + ?Sized>(src: &mut S) -> Result<ImageLayout, ImageError> {
        let len = src.len();
        let mut hdr = [0u8; IMAGE_HEADER_SIZE];
        if (len as usize) < IMAGE_HEADER_SIZE {
            return Err(ImageError::TooShortForHeader { len });
        }
        src.read(0, &mut hdr)?;
        let header = ImageHeader::decode(&hdr)?;
        if header.is_encrypted() {
            return Err(ImageError::EncryptedNotSupported);
        }
        // Header + payload must leave room for at least the unprotected TLV info.
        let tlv_start = header.tlv_offset();
        let prot = u64::from(header.protected_tlv_size);
        let unprot_start = tlv_start + prot;
        if unprot_start + 4 > u64::from(len) {
            return Err(ImageError::SizeOutOfBounds {
                end: unprot_start + 4,
                len,
            });
        }
        // Both fit in u32 now.
        let tlv_start = tlv_start as u32;
        let unprot_start = unprot_start as u32;
        let protected = if header.protected_tlv_size == 0 {
            None
        } else {
            let area = TlvAreaBounds::read(src, TlvArea::Protected, tlv_start)?;
            if area.len() != u32::from(header.protected_tlv_size) {
                return Err(ImageError::ProtectedSizeMismatch {
                    header: header.protected_tlv_size,
                    info: area.len() as u16,
                });
            }
            Some(area)
        };
        let unprotected = TlvAreaBounds::read(src, TlvArea::Unprotected, unprot_start)?;
        Ok(ImageLayout {
            header,
            protected,
            unprotected,
        })
    }

    /// End of the region covered by the hash (and so by the signature).
    pub fn hashed_end(&self) -> u32 {
        self.unprotected.start
    }

    /// End of the image: just past the unprotected TLV area.
    pub fn end(&self) -> u32 {
        self.unprotected.end
    }
}

/// What a successful verification established about an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedImage {
    /// Header and TLV areas.
    pub layout: ImageLayout,
    /// Digest over header, payload and protected TLVs (equal to the hash TLV).
    pub digest: ImageDigest,
    /// Algorithm of the key that signed it.
    pub key_type: KeyType,
    /// SHA-256 of the signing key's SubjectPublicKeyInfo.
    pub signer_id: [u8; 32],
    /// Security counter from the protected area, if any.
    pub security_counter: Option<u32>,
    /// Boot record TLV (CBOR software-component claims), if any.
    pub boot_record: Option<TlvRef>,
    dependencies: [Dependency; MAX_DEPENDENCIES],
    dependency_count: usize,
}

impl VerifiedImage {
    /// The image header.
    pub fn header(&self) -> &ImageHeader {
        &self.layout.header
    }

    /// The image version.
    pub fn version(&self) -> Version {
        self.layout.header.version
    }

    /// Dependencies on other images.
    pub fn dependencies(&self) -> &[Dependency] {
        self.dependencies
            .get(..self.dependency_count)
            .unwrap_or(&[])
    }
}

/// TLVs gathered while scanning both areas.
#[derive(Default)]
struct Found {
    hash: Option<TlvRef>,
    key_hash: Option<TlvRef>,
    pubkey: Option<TlvRef>,
    signature: Option<TlvRef>,
    security_counter: Option<u32>,
    boot_record: Option<TlvRef>,
    dependencies: [Dependency; MAX_DEPENDENCIES],
    dependency_count: usize,
}

fn set_once(slot: &mut Option<TlvRef>, t: TlvRef) -> Result<(), ImageError> {
    if slot.is_some() {
        return Err(ImageError::DuplicateTlv { kind: t.kind });
    }
    *slot = Some(t);
    Ok(())
}

fn read_fixed<S: ImageSource + ?Sized, const N: usize>(
    src: &mut S,
    t: &TlvRef,
) -> Result<[u8; N], ImageError> {
    if usize::from(t.len) != N {
        return Err(ImageError::BadTlvLength {
            kind: t.kind,
            len: t.len,
        });
    }
    let mut b = [0u8; N];
    src.read(t.offset, &mut b)?;
    Ok(b)
}

/// Scan both TLV areas, enforcing which TLV may appear where and how often.
fn scan<S: ImageSource + ?Sized>(src: &mut S, layout: &ImageLayout) -> Result<Found, ImageError> {
    let mut found = Found::default();
    if let Some(area) = layout.protected {
        // TLV positions first (the iterator borrows the source), values after.
        let mut sec_cnt: Option<TlvRef> = None;
        let mut deps: [Option<TlvRef>; MAX_DEPENDENCIES] = [None; MAX_DEPENDENCIES];
        for t in area.iter(src) {
            let t = t?;
            match t.kind {
                kind::SEC_CNT => set_once(&mut sec_cnt, t)?,
                kind::BOOT_RECORD => set_once(&mut found.boot_record, t)?,
                kind::DEPENDENCY => {
                    let slot = deps
                        .get_mut(found.dependency_count)
                        .ok_or(ImageError::TooManyDependencies)?;
                    *slot = Some(t);
                    found.dependency_count += 1;
                }
                kind::UUID_VID | kind::UUID_CID => {}
                kind::DECOMP_SIZE
                | kind::DECOMP_SHA
                | kind::DECOMP_SIGNATURE
                | kind::COMP_DEC_SIZE => return Err(ImageError::UnsupportedTlv { kind: t.kind }),
                k if is_vendor(k) => {}
                k if kind_name(k).is_some() => {
                    return Err(ImageError::TlvInWrongArea {
                        kind: k,
                        found: TlvArea::Protected,
                    });
                }
                k => {
                    return Err(ImageError::UnknownTlv {
                        area: TlvArea::Protected,
                        kind: k,
                    });
                }
            }
        }
        if let Some(t) = sec_cnt {
            found.security_counter = Some(u32::from_le_bytes(read_fixed::<_, 4>(src, &t)?));
        }
        for (slot, dep) in deps.iter().zip(found.dependencies.iter_mut()) {
            if let Some(t) = slot {
                *dep = Dependency::decode(&read_fixed::<_, 12>(src, t)?);
            }
        }
    }
    for t in layout.unprotected.iter(src) {
        let t = t?;
        match t.kind {
            kind::SHA256 | kind::SHA384 | kind::SHA512 => set_once(&mut found.hash, t)?,
            kind::KEYHASH => set_once(&mut found.key_hash, t)?,
            kind::PUBKEY => set_once(&mut found.pubkey, t)?,
            kind::ECDSA_SIG | kind::ED25519 => set_once(&mut found.signature, t)?,
            kind::RSA2048 | kind::RSA3072 | kind::SIG_PURE => {
                return Err(ImageError::UnsupportedTlv { kind: t.kind });
            }
            kind::ENC_RSA2048
            | kind::ENC_KW
            | kind::ENC_EC256
            | kind::ENC_X25519
            | kind::ENC_X25519_SHA512 => return Err(ImageError::EncryptedNotSupported),
            k if kind_name(k).is_some() => {
                return Err(ImageError::TlvInWrongArea {
                    kind: k,
                    found: TlvArea::Unprotected,
                });
            }
            k => {
                return Err(ImageError::UnknownTlv {
                    area: TlvArea::Unprotected,
                    kind: k,
                });
            }
        }
    }
    if found.key_hash.is_some() && found.pubkey.is_some() {
        return Err(ImageError::DuplicateTlv { kind: kind::PUBKEY });
    }
    Ok(found)
}

/// Vendor (custom) TLV types: allowed only in the protected area, where the signature covers them.
fn is_vendor(k: u16) -> bool {
    (kind::VENDOR_MIN..=kind::VENDOR_MAX).contains(&k) && kind_name(k).is_none()
}

/// Verify a whole image against the trusted key.
///
/// Checks, in order: header and TLV bounds, TLV placement and uniqueness, the hash, that the key
/// named by the image is the trusted key, and the signature over the hash.
pub fn verify<S: ImageSource + ?Sized>(
    src: &mut S,
    trusted: TrustedKey<'_>,
) -> Result<VerifiedImage, ImageError> {
    let layout = ImageLayout::read(src)?;
    let found = scan(src, &layout)?;

    // 1. Hash.
    let hash_tlv = found.hash.ok_or(ImageError::MissingHash)?;
    let alg = HashAlg::from_tlv_kind(hash_tlv.kind).ok_or(ImageError::MissingHash)?;
    if usize::from(hash_tlv.len) != alg.digest_len() {
        return Err(ImageError::BadTlvLength {
            kind: hash_tlv.kind,
            len: hash_tlv.len,
        });
    }
    if !alg.is_supported() {
        return Err(ImageError::UnsupportedAlgorithm(Algorithm::Hash(alg)));
    }
    let digest = hash_region(src, alg, layout.hashed_end())?;
    let mut expected = [0u8; 64];
    let expected = expected
        .get_mut(..alg.digest_len())
        .ok_or(ImageError::Read)?;
    src.read(hash_tlv.offset, expected)?;
    if !bool::from(digest.as_bytes().ct_eq(expected)) {
        return Err(ImageError::HashMismatch);
    }

    // 2. Key: the image must name the trusted key.
    let mut pubkey_buf = [0u8; MAX_PUBKEY_LEN];
    let key_der: &[u8] = match (found.key_hash, found.pubkey, trusted) {
        (None, None, _) => return Err(ImageError::MissingKey),
        (Some(kh), None, TrustedKey::Spki(der)) => {
            if usize::from(kh.len) != alg.digest_len() {
                return Err(ImageError::BadTlvLength {
                    kind: kh.kind,
                    len: kh.len,
                });
            }
            let mut named = [0u8; 64];
            let named = named.get_mut(..alg.digest_len()).ok_or(ImageError::Read)?;
            src.read(kh.offset, named)?;
            if !bool::from(alg.try_digest(der)?.as_bytes().ct_eq(named)) {
                return Err(ImageError::KeyMismatch);
            }
            der
        }
        // A key hash cannot be checked against a key we only know by hash with certainty
        // unless both are SHA-256 of the same key.
        (Some(kh), None, TrustedKey::Sha256OfSpki(h)) => {
            if alg != HashAlg::Sha256 || kh.len != 32 {
                return Err(ImageError::MissingKey);
            }
            let named: [u8; 32] = read_fixed(src, &kh)?;
            if !bool::from(named.ct_eq(&h)) {
                return Err(ImageError::KeyMismatch);
            }
            // The key itself is not in the image: nothing to verify the signature with.
            return Err(ImageError::MissingKey);
        }
        (_, Some(pk), trusted) => {
            let n = usize::from(pk.len);
            let buf = pubkey_buf.get_mut(..n).ok_or(ImageError::BadTlvLength {
                kind: pk.kind,
                len: pk.len,
            })?;
            src.read(pk.offset, buf)?;
            let matches = match trusted {
                TrustedKey::Spki(der) => bool::from(der.ct_eq(buf)),
                TrustedKey::Sha256OfSpki(h) => bool::from(signer_id(buf).ct_eq(&h)),
            };
            if !matches {
                return Err(ImageError::KeyMismatch);
            }
            buf
        }
    };
    let key = SignerKey::parse(key_der)?;

    // 3. Signature over the digest.
    let sig_tlv = found.signature.ok_or(ImageError::MissingSignature)?;
    let mut sig_buf = [0u8; MAX_SIG_LEN];
    let sig = sig_buf
        .get_mut(..usize::from(sig_tlv.len))
        .ok_or(ImageError::BadTlvLength {
            kind: sig_tlv.kind,
            len: sig_tlv.len,
        })?;
    src.read(sig_tlv.offset, sig)?;
    check_signature(&key, alg, &digest, sig_tlv.kind, sig)?;

    Ok(VerifiedImage {
        layout,
        digest,
        key_type: key.key_type(),
        signer_id: signer_id(key_der),
        security_counter: found.security_counter,
        boot_record: found.boot_record,
        dependencies: found.dependencies,
        dependency_count: found.dependency_count,
    })
}

/// Parse a trusted key given as DER SubjectPublicKeyInfo, for callers that want to check it
/// once up front (e.g. when provisioning a root key). A key of an algorithm left out of this
/// build is [`ImageError::UnsupportedAlgorithm`]: no image signed with it could be verified.
pub fn check_trusted_key(spki_der: &[u8]) -> Result<KeyType, ImageError> {
    Ok(PublicKey::from_spki_der(spki_der)?.key_type())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_from_bytes_round_trips_and_checks_the_length() {
        let d = HashAlg::Sha256.try_digest(b"castellan").unwrap();
        let back = ImageDigest::from_bytes(HashAlg::Sha256, d.as_bytes()).unwrap();
        assert_eq!(back, d);
        assert_eq!(ImageDigest::from_bytes(HashAlg::Sha384, d.as_bytes()), None);
        assert_eq!(ImageDigest::from_bytes(HashAlg::Sha256, &[0u8; 31]), None);
    }

    #[test]
    fn try_digest_hashes_exactly_the_algorithms_built_in() {
        use sha2::Digest as _;
        let d = HashAlg::Sha256.try_digest(b"abc").unwrap();
        assert_eq!(d.as_bytes(), sha2::Sha256::digest(b"abc").as_slice());
        for alg in [HashAlg::Sha384, HashAlg::Sha512] {
            let r = alg.try_digest(b"abc");
            if cfg!(feature = "sha512") {
                assert_eq!(r.unwrap().as_bytes().len(), alg.digest_len());
            } else {
                assert_eq!(
                    r,
                    Err(ImageError::UnsupportedAlgorithm(Algorithm::Hash(alg)))
                );
            }
        }
    }
}
