//! Sealing: the SUIT envelope around a manifest, with one COSE_Sign1 (detached payload: the
//! bstr-wrapped `SUIT_Digest` of the bstr-wrapped manifest) per signer, as the processor
//! verifies them; or with signatures made elsewhere (PKCS#11, HSMs) over [`to_be_signed`].

use std::vec::Vec;

use ed25519_dalek::Signer as _;

use super::encode::{enc_bytes, enc_head, enc_int, enc_map, enc_text, sha256_suit_digest};
use crate::cbor::{MAJOR_ARRAY, MAJOR_MAP, MAJOR_TAG};
use crate::command::{TAG_COSE_SIGN1, TAG_ENVELOPE};
use crate::cose::{SignatureAlgorithm, TrustAnchor};

/// The P-256 signing key type [`Signer::Es256`] / [`Signer::Esp256`] take (re-exported so tools
/// use the same crate version).
pub use p256::ecdsa::SigningKey as P256SigningKey;

/// The Ed25519 signing key type [`Signer::EdDsa`] takes.
pub use ed25519_dalek::SigningKey as Ed25519SigningKey;

/// A key that signs envelopes.
#[derive(Clone, Copy, Debug)]
pub enum Signer<'k> {
    /// P-256 labelled ES256 (-7). Signatures are deterministic (RFC 6979).
    Es256(&'k p256::ecdsa::SigningKey),
    /// P-256 labelled ESP256 (-9).
    Esp256(&'k p256::ecdsa::SigningKey),
    /// Ed25519 labelled EdDSA (-8).
    EdDsa(&'k ed25519_dalek::SigningKey),
}

impl Signer<'_> {
    /// The COSE algorithm written in the protected header.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            Signer::Es256(_) => SignatureAlgorithm::Es256,
            Signer::Esp256(_) => SignatureAlgorithm::Esp256,
            Signer::EdDsa(_) => SignatureAlgorithm::EdDsa,
        }
    }

    /// The public key a device needs to trust these signatures.
    pub fn trust_anchor(&self) -> TrustAnchor {
        match self {
            Signer::Es256(k) | Signer::Esp256(k) => TrustAnchor::P256(*k.verifying_key()),
            Signer::EdDsa(k) => TrustAnchor::Ed25519(k.verifying_key()),
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Es256(k) | Signer::Esp256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_bytes().to_vec()
            }
            Signer::EdDsa(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }
}

// Writing into a `Vec` cannot fail, so the `Result`s of the cbor writers are ignored below.

/// An extra envelope element for [`seal`].
#[derive(Clone, Copy, Debug)]
pub enum EnvelopeMember<'a> {
    /// A severable element (key 16, 20 or 23) with its content (bstr-wrapped on output).
    Severable(i64, &'a [u8]),
    /// An integrated payload under a text key (a fragment URI such as `#app.bin`).
    Integrated(&'a str, &'a [u8]),
}

/// Wraps `manifest` (the encoded `SUIT_Manifest` map) in a signed envelope: SHA-256 manifest
/// digest, one COSE_Sign1 per signer, plus `members`.
pub fn seal(manifest: &[u8], members: &[EnvelopeMember<'_>], signers: &[Signer<'_>]) -> Vec<u8> {
    let signatures: Vec<(SignatureAlgorithm, Vec<u8>)> = signers
        .iter()
        .map(|s| {
            let tbs = to_be_signed(manifest, s.algorithm());
            (s.algorithm(), s.sign(&tbs))
        })
        .collect();
    seal_with_signatures(manifest, members, &signatures)
}

/// The bytes a signer using `algorithm` signs for `manifest` (the COSE `Sig_structure` over the
/// manifest digest): for keys that cannot be handed to [`Signer`] (PKCS#11 tokens, HSMs). Sign
/// them elsewhere (ES256/ESP256: SHA-256 then ECDSA, signature as `r ‖ s`; EdDSA: the bytes
/// themselves), then call [`seal_with_signatures`].
pub fn to_be_signed(manifest: &[u8], algorithm: SignatureAlgorithm) -> Vec<u8> {
    let digest = sha256_suit_digest(&enc_bytes(manifest));
    sig_structure(&protected_header(algorithm), &digest)
}

/// [`seal`] with signatures made elsewhere over [`to_be_signed`]'s bytes.
pub fn seal_with_signatures(
    manifest: &[u8],
    members: &[EnvelopeMember<'_>],
    signatures: &[(SignatureAlgorithm, Vec<u8>)],
) -> Vec<u8> {
    let manifest_bstr = enc_bytes(manifest);
    let digest = sha256_suit_digest(&manifest_bstr);
    let mut auth = enc_head(MAJOR_ARRAY, 1 + signatures.len() as u64);
    auth.extend(enc_bytes(&digest));
    for (alg, sig) in signatures {
        auth.extend(enc_bytes(&cose_sign1(*alg, sig)));
    }
    let mut entries = vec![
        (enc_int(crate::command::ENVELOPE_AUTH), enc_bytes(&auth)),
        (enc_int(crate::command::ENVELOPE_MANIFEST), manifest_bstr),
    ];
    for m in members {
        match m {
            EnvelopeMember::Severable(k, c) => entries.push((enc_int(*k), enc_bytes(c))),
            EnvelopeMember::Integrated(n, p) => entries.push((enc_text(n), enc_bytes(p))),
        }
    }
    let mut out = enc_head(MAJOR_TAG, TAG_ENVELOPE);
    out.extend(enc_map(entries));
    out
}

fn protected_header(algorithm: SignatureAlgorithm) -> Vec<u8> {
    enc_map(vec![(enc_int(1), enc_int(algorithm.cose_id()))])
}

/// The COSE `Sig_structure` of a COSE_Sign1 with a detached `payload`.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut msg = enc_head(MAJOR_ARRAY, 4);
    msg.extend(enc_text("Signature1"));
    msg.extend(enc_bytes(protected));
    msg.extend(enc_bytes(&[]));
    msg.extend(enc_bytes(payload));
    msg
}

/// A COSE_Sign1_Tagged with a detached payload and the signature `sig`.
fn cose_sign1(algorithm: SignatureAlgorithm, sig: &[u8]) -> Vec<u8> {
    let protected = protected_header(algorithm);
    let mut out = enc_head(MAJOR_TAG, TAG_COSE_SIGN1);
    out.extend(enc_head(MAJOR_ARRAY, 4));
    out.extend(enc_bytes(&protected));
    out.extend(enc_head(MAJOR_MAP, 0));
    out.push(0xf6);
    out.extend(enc_bytes(sig));
    out
}
