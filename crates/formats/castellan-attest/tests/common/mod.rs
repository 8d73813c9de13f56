//! Shared helpers for the integration tests: RFC 9783 vectors and keys, a test signer, and a
//! complete set of claims.
#![allow(dead_code)]

use castellan_attest::{Profile, SwComponent, TokenClaims, VerificationKey};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// The RFC 9783 signed example (COSE_Sign1, ES256).
pub fn rfc_sign1() -> Vec<u8> {
    load_hex("psa_rfc9783_sign1.hex")
}

/// The RFC 9783 MACed example (COSE_Mac0, HMAC 256/256).
pub fn rfc_mac0() -> Vec<u8> {
    load_hex("psa_rfc9783_mac0.hex")
}

fn load_hex(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

/// RFC 9783 example signing key (JWK from the RFC), public part.
pub const RFC_X: &str = "Tl4iCZ47zrRbRG0TVf0dw7VFlHtv18HInYhnmMNybo8";
pub const RFC_Y: &str = "gNcLhAslaqw0pi7eEEM2TwRAlfADR0uR4Bggkq-xPy4";
/// RFC 9783 example MAC key (JWK `oct` k).
pub const RFC_HMAC_K: &str =
    "3gOLNKyhJXaMXjNXq40Gs2e5qw1-i-Ek7cpH_gM6W7epPTB_8imqNv8kbBKVlk-s9xq3qm7E_WECt7OYMlWtkg";

pub fn rfc_key() -> VerificationKey {
    VerificationKey::p256_from_jwk(RFC_X, RFC_Y).unwrap()
}

pub fn rfc_hmac_key() -> VerificationKey {
    VerificationKey::hmac_from_jwk(RFC_HMAC_K).unwrap()
}

/// A fixed device attestation key for tests (deterministic RFC 6979 signatures).
pub fn device_key() -> SigningKey {
    SigningKey::from_slice(&[0x42; 32]).unwrap()
}

/// Another key: "an attacker's".
pub fn other_key() -> SigningKey {
    SigningKey::from_slice(&[0x17; 32]).unwrap()
}

pub fn verification_key(sk: &SigningKey) -> VerificationKey {
    let point = sk.verifying_key().to_sec1_point(false);
    VerificationKey::p256_from_sec1(point.as_bytes()).unwrap()
}

/// Signs like the crypto service would: ES256 over the Sig_structure, r‖s.
pub fn signer(sk: &SigningKey) -> impl FnMut(&[u8]) -> Result<[u8; 64], i32> + '_ {
    move |tbs: &[u8]| {
        let sig: Signature = sk.sign(tbs);
        Ok(sig.to_bytes().into())
    }
}

pub const NONCE: [u8; 32] = [0xa5; 32];
pub const INSTANCE_ID: [u8; 33] = {
    let mut id = [0x33; 33];
    id[0] = 0x01;
    id
};
pub const IMPLEMENTATION_ID: [u8; 32] = [0xaa; 32];
pub const BOOT_SEED: [u8; 32] = [0xbb; 32];
pub const BL_HASH: [u8; 32] = [0x11; 32];
pub const SPE_HASH: [u8; 32] = [0x22; 32];
pub const SIGNER: [u8; 32] = [0x5e; 32];

pub const COMPONENTS: [SwComponent<'static>; 2] = [
    SwComponent {
        measurement_type: Some("BL"),
        measurement_value: &BL_HASH,
        version: Some("1.2.0+0"),
        signer_id: &SIGNER,
        measurement_desc: Some("sha-256"),
    },
    SwComponent {
        measurement_type: Some("SPE"),
        measurement_value: &SPE_HASH,
        version: Some("2.1.3"),
        signer_id: &SIGNER,
        measurement_desc: Some("sha-256"),
    },
];

/// A full set of claims, every optional claim present.
pub fn claims() -> TokenClaims<'static> {
    TokenClaims {
        profile: Profile::Rfc9783,
        nonce: &NONCE,
        instance_id: &INSTANCE_ID,
        implementation_id: &IMPLEMENTATION_ID,
        lifecycle: 0x3000,
        boot_seed: Some(&BOOT_SEED),
        client_id: -1,
        software_components: &COMPONENTS,
        certification_reference: Some("0604565272829-10010"),
        verification_service: Some("https://verifier.castellan.example/psa"),
    }
}

/// Encodes and signs `claims` with `sk` through the one-buffer encoder.
pub fn make_token(claims: &TokenClaims<'_>, sk: &SigningKey) -> Vec<u8> {
    let mut out = vec![0u8; castellan_attest::token_len(claims).unwrap()];
    let n = castellan_attest::encode_token(claims, &mut signer(sk), &mut out).unwrap();
    out.truncate(n);
    out
}

/// Reference values matching [`claims`].
pub fn reference() -> castellan_attest::ReferenceValues {
    use castellan_attest::{ExpectedComponent, ReferenceValues};
    ReferenceValues {
        implementation_id: Some(IMPLEMENTATION_ID.to_vec()),
        components: vec![
            ExpectedComponent {
                measurement_type: "BL".into(),
                measurement_values: vec![BL_HASH.to_vec()],
                signer_id: Some(SIGNER.to_vec()),
                min_version: Some("1.2.0".into()),
            },
            ExpectedComponent {
                measurement_type: "SPE".into(),
                measurement_values: vec![SPE_HASH.to_vec()],
                signer_id: Some(SIGNER.to_vec()),
                min_version: Some("2.0.0".into()),
            },
        ],
        ..ReferenceValues::default()
    }
}
