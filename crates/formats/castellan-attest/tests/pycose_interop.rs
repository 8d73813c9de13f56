//! Interop with pycose (the peer): a Castellan token is verified by pycose, and a token built
//! by pycose + cbor2 is verified and appraised by Castellan. Requires python3 with pycose and
//! cbor2; without them the tests FAIL and say how to install them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use castellan_attest::{ExpectedComponent, Profile, ReferenceValues, appraise};
use p256::ecdsa::SigningKey;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Runs a script from tests/py; fails the test with the install hint if the tools are missing.
fn python(args: &[&str]) -> Output {
    castellan_testkit::peers::pycose::require();
    Command::new("python3").args(args).output().unwrap()
}

fn xy_hex(sk: &SigningKey) -> (String, String) {
    let point = sk.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    (hex::encode(&bytes[1..33]), hex::encode(&bytes[33..65]))
}

fn pycose_verify(token: &[u8], sk: &SigningKey) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.cbor");
    std::fs::write(&path, token).unwrap();
    let (x, y) = xy_hex(sk);
    let verify = script("verify_token.py");
    python(&[verify.to_str().unwrap(), path.to_str().unwrap(), &x, &y])
}

#[test]
fn castellan_token_is_verified_by_pycose() {
    let sk = common::device_key();
    let token = common::make_token(&common::claims(), &sk);
    let out = pycose_verify(&token, &sk);
    assert!(
        out.status.success(),
        "pycose refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["alg"], -7);
    assert_eq!(json["profile"], "tag:psacertified.org,2023:psa#tfm");
    assert_eq!(json["nonce"], hex::encode(common::NONCE));
    assert_eq!(json["instance_id"], hex::encode(common::INSTANCE_ID));
    assert_eq!(
        json["implementation_id"],
        hex::encode(common::IMPLEMENTATION_ID)
    );
    assert_eq!(json["boot_seed"], hex::encode(common::BOOT_SEED));
    assert_eq!(json["client_id"], -1);
    assert_eq!(json["lifecycle"], 0x3000);
    assert_eq!(json["certification_reference"], "0604565272829-10010");
    assert_eq!(
        json["verification_service"],
        "https://verifier.castellan.example/psa"
    );
    let spe = &json["software_components"][1];
    assert_eq!(spe["measurement_type"], "SPE");
    assert_eq!(spe["measurement_value"], hex::encode(common::SPE_HASH));
    assert_eq!(spe["signer_id"], hex::encode(common::SIGNER));
    assert_eq!(spe["version"], "2.1.3");
    assert_eq!(spe["measurement_desc"], "sha-256");
}

#[test]
fn pycose_refuses_a_tampered_castellan_token() {
    // Proves the peer really checks: the same token with one claim byte flipped fails there.
    let sk = common::device_key();
    let mut token = common::make_token(&common::claims(), &sk);
    let mid = token.len() / 2;
    token[mid] ^= 0x01;
    let out = pycose_verify(&token, &sk);
    assert!(!out.status.success(), "pycose accepted a tampered token");
    let wrong = pycose_verify(
        &common::make_token(&common::claims(), &sk),
        &common::other_key(),
    );
    assert!(
        !wrong.status.success(),
        "pycose accepted a token with another key"
    );
}

#[test]
fn pycose_token_is_verified_and_appraised_by_castellan() {
    let sk = SigningKey::from_slice(&[0x24; 32]).unwrap();
    let (x, y) = xy_hex(&sk);
    let d = hex::encode(sk.to_bytes());
    let nonce = [0xab; 32];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pycose.cbor");
    let make = script("make_token.py");
    let out = python(&[
        make.to_str().unwrap(),
        path.to_str().unwrap(),
        &d,
        &x,
        &y,
        &hex::encode(nonce),
    ]);
    assert!(
        out.status.success(),
        "make_token.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read(&path).unwrap();

    let reference = ReferenceValues {
        implementation_id: Some(vec![0xcc; 32]),
        components: vec![
            ExpectedComponent {
                measurement_type: "BL".into(),
                measurement_values: vec![vec![0xb1; 32]],
                signer_id: Some(vec![0x51; 32]),
                min_version: Some("0.9.1+2".into()),
            },
            ExpectedComponent {
                measurement_type: "PRoT".into(),
                measurement_values: vec![vec![0xb2; 48]],
                signer_id: Some(vec![0x52; 48]),
                min_version: None,
            },
        ],
        ..ReferenceValues::default()
    };
    let key = common::verification_key(&sk);
    let claims = appraise(&token, &key, &nonce, &reference).unwrap();
    assert_eq!(claims.profile, Profile::Rfc9783);
    assert_eq!(claims.client_id, i32::MAX);
    assert_eq!(claims.lifecycle, 0x3001);
    assert_eq!(claims.instance_id[0], 0x01);
    assert_eq!(claims.boot_seed, Some(vec![0xbe; 16]));
    assert_eq!(
        claims.certification_reference.as_deref(),
        Some("1234567890123-12345")
    );
    assert_eq!(
        claims.verification_service.as_deref(),
        Some("https://veraison.example/psa")
    );
    assert_eq!(
        claims.software_components[0].version.as_deref(),
        Some("0.9.1+3")
    );
    assert_eq!(
        claims.software_components[1].measurement_desc.as_deref(),
        Some("sha-384")
    );

    // The same pycose token under the wrong key or an old nonce is refused by Castellan.
    let other = common::verification_key(&common::other_key());
    assert_eq!(
        appraise(&token, &other, &nonce, &reference),
        Err(castellan_attest::Error::BadSignature)
    );
    assert_eq!(
        appraise(&token, &key, &[0xac; 32], &reference),
        Err(castellan_attest::Error::NonceMismatch)
    );
}
