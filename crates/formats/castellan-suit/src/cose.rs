//! COSE_Sign1 (RFC 9052) verification with a detached payload, as SUIT uses it.
//!
//! The payload is the bstr-wrapped `SUIT_Digest` of the authentication wrapper. Supported
//! algorithms: ES256 (-7) and ESP256 (-9) with P-256/SHA-256 (same verification; ESP256 only
//! fixes the curve and hash), and with the `eddsa` feature EdDSA (-8) and Ed25519 (-19) with
//! Ed25519 (without it they are unknown algorithms: the block is skipped). The `Sig_structure`
//! is built in a fixed stack buffer; the cryptography is RustCrypto `p256` and `ed25519-dalek`.

use p256::ecdsa::signature::Verifier as _;

use crate::cbor::{self, FixedBuf, MAJOR_ARRAY, MAJOR_MAP, Reader};
use crate::command::TAG_COSE_SIGN1;
use crate::error::{Part, SuitError};

/// Largest `Sig_structure` accepted (the protected header plus a SUIT_Digest fit easily).
const SIG_STRUCTURE_MAX: usize = 512;

/// A COSE signature algorithm this processor verifies.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA with SHA-256 (-7), used with P-256.
    Es256,
    /// ECDSA using P-256 and SHA-256 (-9, fully specified; RFC 9864).
    Esp256,
    /// EdDSA (-8), used with Ed25519 (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    EdDsa,
    /// Ed25519 (-19, fully specified; RFC 9864) (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    Ed25519,
}

impl SignatureAlgorithm {
    /// Maps a COSE algorithm id; `None` for an algorithm this build does not verify.
    pub fn from_cose(id: i64) -> Option<Self> {
        match id {
            -7 => Some(SignatureAlgorithm::Es256),
            -9 => Some(SignatureAlgorithm::Esp256),
            #[cfg(feature = "eddsa")]
            -8 => Some(SignatureAlgorithm::EdDsa),
            #[cfg(feature = "eddsa")]
            -19 => Some(SignatureAlgorithm::Ed25519),
            _ => None,
        }
    }

    /// The COSE algorithm id.
    pub fn cose_id(self) -> i64 {
        match self {
            SignatureAlgorithm::Es256 => -7,
            SignatureAlgorithm::Esp256 => -9,
            #[cfg(feature = "eddsa")]
            SignatureAlgorithm::EdDsa => -8,
            #[cfg(feature = "eddsa")]
            SignatureAlgorithm::Ed25519 => -19,
        }
    }

    /// The registry name.
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Esp256 => "ESP256",
            #[cfg(feature = "eddsa")]
            SignatureAlgorithm::EdDsa => "EdDSA",
            #[cfg(feature = "eddsa")]
            SignatureAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

/// A public key the device trusts to sign manifests.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TrustAnchor {
    /// A P-256 key: accepts ES256 and ESP256 signatures.
    P256(p256::ecdsa::VerifyingKey),
    /// A P-256 key as its uncompressed SEC1 point (`0x04 ‖ X ‖ Y`), checked to be on the curve
    /// when made ([`TrustAnchor::p256_from_uncompressed`]): with the P256-Cortex-M4 assembly
    /// (feature `p256-cortex-m` on a Cortex-M4/M33) it is used as it is, with no `p256` point
    /// arithmetic; elsewhere it is decoded when a signature is checked. Accepts what `P256`
    /// accepts.
    P256Sec1([u8; 65]),
    /// An Ed25519 key: accepts EdDSA and Ed25519 signatures (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl TrustAnchor {
    /// A P-256 key from its SEC1 encoding (65-byte uncompressed or 33-byte compressed point).
    pub fn p256_from_sec1(sec1: &[u8]) -> Option<Self> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .ok()
            .map(TrustAnchor::P256)
    }

    /// A P-256 key from its uncompressed SEC1 point (65 bytes), if the point is on the curve:
    /// [`TrustAnchor::P256Sec1`] on the assembly, [`TrustAnchor::P256`] elsewhere.
    pub fn p256_from_uncompressed(sec1: &[u8; 65]) -> Option<Self> {
        #[cfg(feature = "p256-cortex-m")]
        if castellan_p256_cortex_m::AVAILABLE {
            return castellan_p256_cortex_m::check_public_key(sec1)
                .is_ok()
                .then_some(TrustAnchor::P256Sec1(*sec1));
        }
        Self::p256_from_sec1(sec1)
    }

    /// An Ed25519 key from its 32 bytes (feature `eddsa`).
    #[cfg(feature = "eddsa")]
    pub fn ed25519_from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .ok()
            .map(TrustAnchor::Ed25519)
    }

    fn verify(&self, alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (TrustAnchor::P256(key), SignatureAlgorithm::Es256 | SignatureAlgorithm::Esp256) => {
                verify_p256(key, msg, sig)
            }
            (
                TrustAnchor::P256Sec1(sec1),
                SignatureAlgorithm::Es256 | SignatureAlgorithm::Esp256,
            ) => verify_p256_sec1(sec1, msg, sig),
            #[cfg(feature = "eddsa")]
            (
                TrustAnchor::Ed25519(key),
                SignatureAlgorithm::EdDsa | SignatureAlgorithm::Ed25519,
            ) => match <[u8; 64]>::try_from(sig) {
                Ok(raw) => key
                    .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&raw))
                    .is_ok(),
                Err(_) => false,
            },
            #[allow(unreachable_patterns)] // P-256 only (no `eddsa`): every pair is matched above
            _ => false,
        }
    }
}

/// ECDSA P-256 with SHA-256 over `msg`, `sig` = `r ‖ s` (64 bytes): on the P256-Cortex-M4
/// assembly where the build has it (feature `p256-cortex-m` on a Cortex-M4/M33 target), which
/// refuses `r`, `s` outside `1..n-1` as `Signature::from_slice` does; else the `p256` crate.
fn verify_p256(key: &p256::ecdsa::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    #[cfg(feature = "p256-cortex-m")]
    if castellan_p256_cortex_m::AVAILABLE {
        return verify_p256_asm(key.to_sec1_point(false).as_bytes(), msg, sig);
    }
    match p256::ecdsa::Signature::from_slice(sig) {
        Ok(sig) => key.verify(msg, &sig).is_ok(),
        Err(_) => false,
    }
}

/// [`verify_p256`] with the key as its uncompressed SEC1 point.
fn verify_p256_sec1(sec1: &[u8; 65], msg: &[u8], sig: &[u8]) -> bool {
    #[cfg(feature = "p256-cortex-m")]
    if castellan_p256_cortex_m::AVAILABLE {
        return verify_p256_asm(sec1, msg, sig);
    }
    match p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1) {
        Ok(key) => verify_p256(&key, msg, sig),
        Err(_) => false,
    }
}

/// ES256 on the assembly: SHA-256 of `msg` (assembly too), then the check, which refuses a key
/// off the curve and `r`, `s` outside `1..n-1`.
#[cfg(feature = "p256-cortex-m")]
fn verify_p256_asm(sec1: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use sha2::Digest as _;
    let half =
        |range: core::ops::Range<usize>| sig.get(range).and_then(|b| <[u8; 32]>::try_from(b).ok());
    let (Some(r), Some(s), 64) = (half(0..32), half(32..64), sig.len()) else {
        return false;
    };
    let digest: [u8; 32] = castellan_sha256_cortex_m::Sha256::digest(msg).into();
    castellan_p256_cortex_m::verify_prehash(sec1, &digest, &r, &s).is_ok()
}

/// What a verified COSE block tells about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockOutcome {
    /// COSE_Sign1 verified with a trusted key.
    Verified(SignatureAlgorithm),
    /// A well-formed block this processor cannot use (other COSE type, unknown algorithm or
    /// critical header, or no trusted key verified it).
    NotVerified,
}

/// Verifies one `SUIT_Authentication_Block` over the detached `payload`.
pub(crate) fn verify_block(
    block: &[u8],
    payload: &[u8],
    anchors: &[TrustAnchor],
) -> Result<BlockOutcome, SuitError> {
    let mut r = Reader::new(block, Part::Cose);
    if r.tag()? != TAG_COSE_SIGN1 {
        // COSE_Sign / COSE_Mac / COSE_Mac0: not implemented here, never trusted.
        return Ok(BlockOutcome::NotVerified);
    }
    if r.array()? != 4 {
        return Err(SuitError::Malformed(Part::Cose));
    }
    let protected = r.bytes()?;
    if r.peek_major()? != MAJOR_MAP {
        return Err(SuitError::Malformed(Part::Cose));
    }
    r.skip()?; // unprotected: the algorithm must be protected, nothing else is used
    r.null()?; // SUIT uses detached payloads only
    let signature = r.bytes()?;
    r.finish()?;

    let Some(alg) = protected_algorithm(protected)? else {
        return Ok(BlockOutcome::NotVerified);
    };
    let mut msg = FixedBuf::<SIG_STRUCTURE_MAX>::new();
    cbor::put_head(&mut msg, MAJOR_ARRAY, 4)?;
    cbor::put_text(&mut msg, "Signature1")?;
    cbor::put_bytes(&mut msg, protected)?;
    cbor::put_bytes(&mut msg, &[])?;
    cbor::put_bytes(&mut msg, payload)?;
    if anchors
        .iter()
        .any(|a| a.verify(alg, msg.as_slice(), signature))
    {
        Ok(BlockOutcome::Verified(alg))
    } else {
        Ok(BlockOutcome::NotVerified)
    }
}

/// Reads the protected header map; `None` if the algorithm is missing or unsupported, or a
/// critical header is present (which this processor cannot honour).
pub(crate) fn protected_algorithm(
    protected: &[u8],
) -> Result<Option<SignatureAlgorithm>, SuitError> {
    if protected.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(protected, Part::Cose);
    let n = r.map()?;
    let mut alg = None;
    let mut supported = true;
    for _ in 0..n {
        let label_is_int = matches!(r.peek_major()?, cbor::MAJOR_UINT | cbor::MAJOR_NINT);
        if !label_is_int {
            r.skip()?;
            r.skip()?;
            continue;
        }
        match r.int()? {
            1 => {
                if alg.is_some() {
                    return Err(SuitError::Malformed(Part::Cose));
                }
                let id = if matches!(r.peek_major()?, cbor::MAJOR_UINT | cbor::MAJOR_NINT) {
                    r.int()?
                } else {
                    r.skip()?;
                    0
                };
                alg = Some(SignatureAlgorithm::from_cose(id));
            }
            2 => {
                supported = false; // crit
                r.skip()?;
            }
            _ => r.skip()?,
        }
    }
    r.finish()?;
    Ok(if supported { alg.flatten() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_header_algorithms() {
        // {1: -7}
        assert_eq!(
            protected_algorithm(&[0xa1, 0x01, 0x26]),
            Ok(Some(SignatureAlgorithm::Es256))
        );
        // {1: -9}
        assert_eq!(
            protected_algorithm(&[0xa1, 0x01, 0x28]),
            Ok(Some(SignatureAlgorithm::Esp256))
        );
        // {1: -8}: EdDSA, an unsupported algorithm without the `eddsa` feature
        #[cfg(feature = "eddsa")]
        assert_eq!(
            protected_algorithm(&[0xa1, 0x01, 0x27]),
            Ok(Some(SignatureAlgorithm::EdDsa))
        );
        #[cfg(not(feature = "eddsa"))]
        assert_eq!(protected_algorithm(&[0xa1, 0x01, 0x27]), Ok(None));
        // {1: -35} (ES384): not supported here
        assert_eq!(protected_algorithm(&[0xa1, 0x01, 0x38, 0x22]), Ok(None));
        // {1: -7, 2: [99]}: an unknown critical header disables the block
        assert_eq!(
            protected_algorithm(&[0xa2, 0x01, 0x26, 0x02, 0x81, 0x18, 0x63]),
            Ok(None)
        );
        // empty protected header: no algorithm
        assert_eq!(protected_algorithm(&[]), Ok(None));
        // duplicate alg label
        assert!(protected_algorithm(&[0xa2, 0x01, 0x26, 0x01, 0x26]).is_err());
    }

    #[test]
    fn attached_payload_is_refused() {
        // 18([h'a10126', {}, h'00', h'00'])
        let block = [
            0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0x00, 0x41, 0x00,
        ];
        assert_eq!(
            verify_block(&block, b"", &[]),
            Err(SuitError::Malformed(Part::Cose))
        );
    }

    #[test]
    fn other_cose_structures_are_not_trusted() {
        // 17([...]) COSE_Mac0
        let block = [0xd1, 0x84, 0x40, 0xa0, 0xf6, 0x40];
        assert_eq!(
            verify_block(&block, b"", &[]),
            Ok(BlockOutcome::NotVerified)
        );
    }
}
