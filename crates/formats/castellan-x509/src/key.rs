//! P-256 public keys and signature checks: the only algorithm the fleet issues or accepts.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

use crate::X509Error;

/// Read a P-256 public key given as SEC1 (compressed or uncompressed) or as DER
/// SubjectPublicKeyInfo; return it SEC1 uncompressed.
pub fn parse_public_key(bytes: &[u8]) -> Result<[u8; 65], X509Error> {
    VerifyingKey::from_sec1_bytes(bytes)
        .or_else(|_| VerifyingKey::from_public_key_der(bytes))
        .map(|k| sec1_uncompressed(&k))
        .map_err(|_| X509Error::UnsupportedKey { what: "public key" })
}

/// SEC1 uncompressed encoding of a P-256 public key (`04 || X || Y`, 65 bytes).
pub fn sec1_uncompressed(key: &VerifyingKey) -> [u8; 65] {
    let point = key.to_sec1_point(false);
    let mut out = [0u8; 65];
    if let Some(bytes) = point.as_bytes().get(..65) {
        out.copy_from_slice(bytes);
    }
    out
}

/// Check that `sig` (`r || s`) is a valid ECDSA P-256 / SHA-256 signature over `msg` by
/// `public_key` (SEC1): what a signer returned before it goes into a certificate or CSR.
pub fn verify_raw(public_key: &[u8], msg: &[u8], sig: &[u8; 64]) -> Result<(), X509Error> {
    let vk = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| X509Error::UnsupportedKey {
        what: "signer's public key",
    })?;
    let sig = Signature::from_slice(sig).map_err(|_| X509Error::SignerProducedBadSignature)?;
    vk.verify(msg, &sig)
        .map_err(|_| X509Error::SignerProducedBadSignature)
}

/// Check a DER `ECDSA-Sig-Value` over `msg` with a SEC1 P-256 key.
pub(crate) fn verify_der_signature(
    public_key: &[u8; 65],
    msg: &[u8],
    sig_der: &[u8],
) -> Result<(), ()> {
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| ())?;
    let sig = Signature::from_der(sig_der).map_err(|_| ())?;
    key.verify(msg, &sig).map_err(|_| ())
}
