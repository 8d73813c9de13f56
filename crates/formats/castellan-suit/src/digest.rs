//! `SUIT_Digest` (`[algorithm-id, digest-bytes]`) and the hash functions behind it.
//!
//! Algorithm identifiers are COSE algorithm ids: SHA-256 (-16, mandatory, always built in), and
//! with the `sha512` feature SHA-384 (-43) and SHA-512 (-44); without it those are
//! [`SuitError::UnsupportedDigestAlgorithm`] like any unknown id. Hashing comes from the
//! RustCrypto `sha2` crate.

use sha2::Digest as _;
use subtle::ConstantTimeEq;

use crate::cbor::Reader;
use crate::error::{Part, SuitError};

/// A digest algorithm of `SUIT_Digest`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256, COSE id -16 (mandatory to implement).
    Sha256,
    /// SHA-384, COSE id -43 (feature `sha512`).
    #[cfg(feature = "sha512")]
    Sha384,
    /// SHA-512, COSE id -44 (feature `sha512`).
    #[cfg(feature = "sha512")]
    Sha512,
}

impl DigestAlgorithm {
    /// Maps a COSE algorithm id; `None` for an algorithm this build does not implement.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            -16 => Some(DigestAlgorithm::Sha256),
            #[cfg(feature = "sha512")]
            -43 => Some(DigestAlgorithm::Sha384),
            #[cfg(feature = "sha512")]
            -44 => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    /// The COSE algorithm id.
    pub fn cose_id(self) -> i64 {
        match self {
            DigestAlgorithm::Sha256 => -16,
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha384 => -43,
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha512 => -44,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha384 => 48,
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha512 => 64,
        }
    }

    /// The name used in the COSE registry.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha384 => "sha-384",
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }
}

/// A decoded `SUIT_Digest`, borrowing its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuitDigest<'a> {
    /// The algorithm.
    pub algorithm: DigestAlgorithm,
    /// The digest value (length checked against the algorithm).
    pub bytes: &'a [u8],
}

impl<'a> SuitDigest<'a> {
    /// Decodes the CBOR encoding of a `SUIT_Digest` (the content of its bstr wrapper).
    pub fn decode(encoded: &'a [u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(encoded, Part::Digest);
        let d = Self::read(&mut r)?;
        r.finish()?;
        Ok(d)
    }

    /// Reads a `SUIT_Digest` array from a reader.
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, SuitError> {
        let n = r.array()?;
        if n < 2 {
            return Err(SuitError::Malformed(Part::Digest));
        }
        let id = r.int().map_err(|_| SuitError::Malformed(Part::Digest))?;
        let bytes = r.bytes().map_err(|_| SuitError::Malformed(Part::Digest))?;
        for _ in 2..n {
            r.skip().map_err(|_| SuitError::Malformed(Part::Digest))?;
        }
        let algorithm =
            DigestAlgorithm::from_cose(id).ok_or(SuitError::UnsupportedDigestAlgorithm(id))?;
        if bytes.len() != algorithm.output_len() {
            return Err(SuitError::Malformed(Part::Digest));
        }
        Ok(SuitDigest { algorithm, bytes })
    }

    /// True when `data` hashes to this digest.
    pub fn matches(&self, data: &[u8]) -> bool {
        let mut h = Hasher::new(self.algorithm);
        h.update(data);
        h.matches(self.bytes)
    }
}

/// Incremental hashing with any supported algorithm.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    #[cfg(feature = "sha512")]
    Sha384(sha2::Sha384),
    #[cfg(feature = "sha512")]
    Sha512(sha2::Sha512),
}

/// A digest output of at most 64 bytes.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    buf: [u8; 64],
    len: usize,
}

impl Output {
    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Hasher {
    pub(crate) fn new(alg: DigestAlgorithm) -> Self {
        match alg {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            #[cfg(feature = "sha512")]
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
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

    pub(crate) fn finalize(self) -> Output {
        let mut out = Output {
            buf: [0; 64],
            len: 0,
        };
        let mut put = |d: &[u8]| {
            if let Some(dst) = out.buf.get_mut(..d.len()) {
                dst.copy_from_slice(d);
                out.len = d.len();
            }
        };
        match self {
            Hasher::Sha256(h) => put(&h.finalize()),
            #[cfg(feature = "sha512")]
            Hasher::Sha384(h) => put(&h.finalize()),
            #[cfg(feature = "sha512")]
            Hasher::Sha512(h) => put(&h.finalize()),
        }
        out
    }

    /// Finishes and compares with `expected` (constant time for equal lengths).
    pub(crate) fn matches(self, expected: &[u8]) -> bool {
        let out = self.finalize();
        let got = out.as_slice();
        got.len() == expected.len() && bool::from(got.ct_eq(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sha256_digest_and_checks_length() {
        let mut enc = [0u8; 36];
        enc[..4].copy_from_slice(&[0x82, 0x2f, 0x58, 0x20]);
        let d = SuitDigest::decode(&enc).unwrap();
        assert_eq!(d.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(d.bytes.len(), 32);
        // 31-byte SHA-256 value is refused.
        let short = [0x82, 0x2f, 0x58, 0x1f];
        assert!(SuitDigest::decode(&short).is_err());
    }

    #[test]
    fn unknown_algorithm_is_named() {
        // [-17, h'00']
        assert_eq!(
            SuitDigest::decode(&[0x82, 0x30, 0x41, 0x00]),
            Err(SuitError::UnsupportedDigestAlgorithm(-17))
        );
    }

    #[test]
    fn sha384_and_sha512_follow_the_feature() {
        // [-43, h'00' × 48] and [-44, h'00' × 64]
        let mut d384 = [0u8; 53];
        d384[..3].copy_from_slice(&[0x82, 0x38, 0x2a]);
        d384[3..5].copy_from_slice(&[0x58, 48]);
        let mut d512 = [0u8; 69];
        d512[..3].copy_from_slice(&[0x82, 0x38, 0x2b]);
        d512[3..5].copy_from_slice(&[0x58, 64]);
        for (enc, id) in [(&d384[..], -43), (&d512[..], -44)] {
            let got = SuitDigest::decode(enc).map(|d| d.algorithm.cose_id());
            if cfg!(feature = "sha512") {
                assert_eq!(got, Ok(id));
            } else {
                assert_eq!(got, Err(SuitError::UnsupportedDigestAlgorithm(id)));
            }
        }
    }

    #[cfg(feature = "sha512")]
    #[test]
    fn sha384_and_sha512_of_abc_match_known_values() {
        let d384 = hex::decode(
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        )
        .unwrap();
        let d512 = hex::decode(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        )
        .unwrap();
        for (algorithm, bytes) in [
            (DigestAlgorithm::Sha384, &d384),
            (DigestAlgorithm::Sha512, &d512),
        ] {
            let d = SuitDigest { algorithm, bytes };
            assert!(d.matches(b"abc"));
            assert!(!d.matches(b"abd"));
        }
    }

    #[test]
    fn sha256_of_empty_matches_known_value() {
        let expect =
            hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .unwrap();
        let d = SuitDigest {
            algorithm: DigestAlgorithm::Sha256,
            bytes: &expect,
        };
        assert!(d.matches(b""));
        assert!(!d.matches(b"x"));
    }
}
