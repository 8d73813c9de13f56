//! The `eddsa` feature: with it an EdDSA COSE_Sign1 verifies with an Ed25519 trust anchor;
//! without it (a device that links P-256 only) an EdDSA block is skipped exactly like a block of
//! an unknown algorithm, so an envelope signed only with EdDSA is `Unauthenticated` and one also
//! signed with ES256 still authenticates through its ES256 signature.
//!
//! No `std` needed: the envelopes are fixtures made with the host builder (manifest sequence 3,
//! the test vendor/class, one image; signed with the test keys: Ed25519 seed 0x22 × 32, P-256
//! scalar 0x11 × 32). Run under both, e.g.
//! `cargo test -p castellan-suit --no-default-features --test eddsa_feature`.

use castellan_suit::{SignatureAlgorithm, SuitError, TrustAnchor, authenticate};

/// Signed with EdDSA only.
const EDDSA_SIGNED: &str = include_str!("data/eddsa_signed.hex");
/// The same manifest signed with ES256 (first block) and EdDSA (second block).
const ES256_AND_EDDSA_SIGNED: &str = include_str!("data/es256_and_eddsa_signed.hex");

fn envelope(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text.trim()).unwrap()
}

fn p256_anchor() -> TrustAnchor {
    let key = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
    TrustAnchor::P256(*key.verifying_key())
}

#[cfg(feature = "eddsa")]
fn ed25519_public_key() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&[0x22; 32])
        .verifying_key()
        .to_bytes()
}

/// The EdDSA envelope with its protected header's algorithm changed from -8 (EdDSA, CBOR 0x27)
/// to -5 (CBOR 0x24, not a signature algorithm): a block of an algorithm nobody verifies.
fn with_unknown_algorithm(env: &[u8]) -> Vec<u8> {
    let header = [0x43, 0xa1, 0x01, 0x27]; // bstr(3) {1: -8}
    let at = env
        .windows(header.len())
        .position(|w| w == header)
        .expect("the fixture has one EdDSA protected header");
    let mut out = env.to_vec();
    out[at + 3] = 0x24;
    out
}

#[test]
fn cose_algorithm_ids_follow_the_feature() {
    assert_eq!(
        SignatureAlgorithm::from_cose(-7),
        Some(SignatureAlgorithm::Es256)
    );
    assert_eq!(
        SignatureAlgorithm::from_cose(-9),
        Some(SignatureAlgorithm::Esp256)
    );
    #[cfg(feature = "eddsa")]
    {
        assert_eq!(
            SignatureAlgorithm::from_cose(-8),
            Some(SignatureAlgorithm::EdDsa)
        );
        assert_eq!(
            SignatureAlgorithm::from_cose(-19),
            Some(SignatureAlgorithm::Ed25519)
        );
    }
    #[cfg(not(feature = "eddsa"))]
    {
        assert_eq!(SignatureAlgorithm::from_cose(-8), None);
        assert_eq!(SignatureAlgorithm::from_cose(-19), None);
    }
}

#[cfg(feature = "eddsa")]
#[test]
fn eddsa_envelope_verifies_with_its_ed25519_anchor() {
    let anchor = TrustAnchor::ed25519_from_bytes(&ed25519_public_key()).unwrap();
    let env = envelope(EDDSA_SIGNED);
    let m = authenticate(&env, &[p256_anchor(), anchor.clone()]).unwrap();
    assert_eq!(m.signature_algorithm(), SignatureAlgorithm::EdDsa);
    assert_eq!(m.sequence_number(), 3);
    // The same block under an unknown algorithm id is not trusted.
    assert_eq!(
        authenticate(&with_unknown_algorithm(&env), &[anchor]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
}

#[cfg(not(feature = "eddsa"))]
#[test]
fn eddsa_only_envelope_is_refused_like_an_unknown_algorithm_without_the_feature() {
    let env = envelope(EDDSA_SIGNED);
    let got = authenticate(&env, &[p256_anchor()]).map(|_| ());
    assert_eq!(got, Err(SuitError::Unauthenticated));
    let unknown = authenticate(&with_unknown_algorithm(&env), &[p256_anchor()]).map(|_| ());
    assert_eq!(got, unknown);
    // Without a trust anchor at all, the same answer (never a panic, never a parse error).
    assert_eq!(
        authenticate(&env, &[]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
}

#[test]
fn es256_signature_still_authenticates_an_envelope_also_signed_with_eddsa() {
    let env = envelope(ES256_AND_EDDSA_SIGNED);
    let m = authenticate(&env, &[p256_anchor()]).unwrap();
    assert_eq!(m.signature_algorithm(), SignatureAlgorithm::Es256);
    assert_eq!(m.sequence_number(), 3);
}

#[test]
fn eddsa_only_envelope_is_not_authenticated_by_a_p256_anchor() {
    // Whatever the features: the P-256 key did not sign it.
    assert_eq!(
        authenticate(&envelope(EDDSA_SIGNED), &[p256_anchor()]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
}

#[test]
fn every_truncation_and_bit_flip_of_the_eddsa_envelope_is_refused_without_panic() {
    let env = envelope(EDDSA_SIGNED);
    let anchors = [p256_anchor()];
    for len in 0..env.len() {
        assert!(authenticate(&env[..len], &anchors).is_err());
    }
    for i in 0..env.len() {
        let mut bad = env.clone();
        bad[i] ^= 0x01;
        assert!(authenticate(&bad, &anchors).is_err());
    }
}
