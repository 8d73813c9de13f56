//! The image hash: the algorithms of the hash TLV, the digest they give, and the incremental
//! hash over an image region read in chunks (no heap).

#[cfg(feature = "sha256-cortex-m")]
use castellan_sha256_cortex_m::Sha256;
use sha2::Digest as _;
#[cfg(not(feature = "sha256-cortex-m"))]
use sha2::Sha256;
#[cfg(feature = "sha512")]
use sha2::{Sha384, Sha512};

use crate::ImageError;
use crate::error::Algorithm;
use crate::source::ImageSource;
use crate::tlv::kind;

/// Bytes hashed per read.
const HASH_CHUNK: usize = 512;

/// Hash algorithm of an image's hash TLV. SHA-384 and SHA-512 are verified only with the
/// `sha512` feature; without it they are refused by name ([`ImageError::UnsupportedAlgorithm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub enum HashAlg {
    /// SHA-256 (TLV 0x10).
    Sha256,
    /// SHA-384 (TLV 0x11).
    Sha384,
    /// SHA-512 (TLV 0x12).
    Sha512,
}

impl HashAlg {
    /// The hash TLV type for this algorithm.
    pub fn tlv_kind(self) -> u16 {
        match self {
            HashAlg::Sha256 => kind::SHA256,
            HashAlg::Sha384 => kind::SHA384,
            HashAlg::Sha512 => kind::SHA512,
        }
    }

    /// The algorithm of a hash TLV type.
    pub fn from_tlv_kind(k: u16) -> Option<HashAlg> {
        match k {
            kind::SHA256 => Some(HashAlg::Sha256),
            kind::SHA384 => Some(HashAlg::Sha384),
            kind::SHA512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Whether this build hashes with the algorithm (SHA-256 always; SHA-384 and SHA-512 with
    /// the `sha512` feature).
    pub fn is_supported(self) -> bool {
        Algorithm::Hash(self).is_supported()
    }

    /// Hash `data` in one go, or [`ImageError::UnsupportedAlgorithm`] when the algorithm is
    /// left out of this build.
    pub fn try_digest(self, data: &[u8]) -> Result<ImageDigest, ImageError> {
        let mut h = Hasher::new(self)?;
        h.update(data);
        Ok(h.finish())
    }

    /// Hash `data` in one go. Defined when every hash algorithm is built in (feature `sha512`,
    /// which `std` turns on); otherwise use [`HashAlg::try_digest`].
    #[cfg(feature = "sha512")]
    pub fn digest(self, data: &[u8]) -> ImageDigest {
        let mut h = match self {
            HashAlg::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        h.update(data);
        h.finish()
    }
}

/// A digest of up to 64 bytes with its algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageDigest {
    /// Algorithm.
    pub alg: HashAlg,
    bytes: [u8; 64],
}

impl ImageDigest {
    /// A digest received from elsewhere (e.g. handed from one boot stage to the next), or `None`
    /// when `bytes` is not `alg`'s digest length.
    pub fn from_bytes(alg: HashAlg, bytes: &[u8]) -> Option<ImageDigest> {
        if bytes.len() != alg.digest_len() {
            return None;
        }
        let mut d = ImageDigest {
            alg,
            bytes: [0u8; 64],
        };
        copy_prefix(&mut d.bytes, bytes);
        Some(d)
    }

    /// The digest bytes (32, 48 or 64 of them).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..self.alg.digest_len())
            .unwrap_or(&self.bytes)
    }
}

/// Incremental hash over the algorithms this build has.
pub(crate) enum Hasher {
    Sha256(Sha256),
    #[cfg(feature = "sha512")]
    Sha384(Sha384),
    #[cfg(feature = "sha512")]
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn new(alg: HashAlg) -> Result<Hasher, ImageError> {
        match alg {
            HashAlg::Sha256 => Ok(Hasher::Sha256(Sha256::new())),
            #[cfg(feature = "sha512")]
            HashAlg::Sha384 => Ok(Hasher::Sha384(Sha384::new())),
            #[cfg(feature = "sha512")]
            HashAlg::Sha512 => Ok(Hasher::Sha512(Sha512::new())),
            #[allow(unreachable_patterns)] // every hash built in: nothing left to refuse
            other => Err(ImageError::UnsupportedAlgorithm(Algorithm::Hash(other))),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            #[cfg(feature = "sha512")]
            Hasher::Sha384(h) => h.update(data),
            #[cfg(feature = "sha512")]
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> ImageDigest {
        let mut bytes = [0u8; 64];
        let alg = match self {
            Hasher::Sha256(h) => {
                copy_prefix(&mut bytes, &h.finalize());
                HashAlg::Sha256
            }
            #[cfg(feature = "sha512")]
            Hasher::Sha384(h) => {
                copy_prefix(&mut bytes, &h.finalize());
                HashAlg::Sha384
            }
            #[cfg(feature = "sha512")]
            Hasher::Sha512(h) => {
                copy_prefix(&mut bytes, &h.finalize());
                HashAlg::Sha512
            }
        };
        ImageDigest { alg, bytes }
    }
}

fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Hash `src[..end]` with `alg`.
pub(crate) fn hash_region<S: ImageSource + ?Sized>(
    src: &mut S,
    alg: HashAlg,
    end: u32,
) -> Result<ImageDigest, ImageError> {
    let mut h = Hasher::new(alg)?;
    let mut buf = [0u8; HASH_CHUNK];
    let mut off = 0u32;
    while off < end {
        let n = core::cmp::min(HASH_CHUNK as u32, end - off) as usize;
        let chunk = buf.get_mut(..n).ok_or(ImageError::Read)?;
        src.read(off, chunk)?;
        h.update(chunk);
        off += n as u32;
    }
    Ok(h.finish())
}
