//! Attacks on attestation: each test is a way an attacker tries to pass a token it should not,
//! and asserts the typed reason the verifier gives for refusing it.

mod common;

use castellan_attest::{
    Error, ExpectedComponent, Lifecycle, Profile, ReferenceValues, SwComponent, TokenClaims,
    appraise, assemble_sign1, decode_token, sig_structure, verify_token,
};
use coset::cbor::Value;
use p256::ecdsa::SigningKey;

fn device_vk() -> castellan_attest::VerificationKey {
    common::verification_key(&common::device_key())
}

fn appraise_default(token: &[u8]) -> Result<castellan_attest::Claims, Error> {
    appraise(token, &device_vk(), &common::NONCE, &common::reference())
}

fn token_with(claims: TokenClaims<'_>) -> Vec<u8> {
    common::make_token(&claims, &common::device_key())
}

/// The genuine token with other software components.
fn token_with_components(components: &[SwComponent<'_>]) -> Vec<u8> {
    token_with(TokenClaims {
        software_components: components,
        ..common::claims()
    })
}

/// Signs an arbitrary payload correctly: the attacker controls the device key (or the
/// payload is odd but genuinely signed), so only the claim checks can refuse it.
fn sign_payload(payload: &[u8], sk: &SigningKey) -> Vec<u8> {
    let mut tbs = vec![0u8; payload.len() + 32];
    let n = sig_structure(payload, &mut tbs).unwrap();
    let sig = common::signer(sk)(&tbs[..n]).unwrap();
    let mut out = vec![0u8; payload.len() + 96];
    let n = assemble_sign1(payload, &sig, &mut out).unwrap();
    out.truncate(n);
    out
}

/// The genuine claims map as a CBOR value the test can edit.
fn genuine_claims_value() -> Vec<(Value, Value)> {
    let mut payload = [0u8; 1024];
    let n = castellan_attest::encode_claims(&common::claims(), &mut payload).unwrap();
    let v: Value = coset::cbor::de::from_reader(&payload[..n]).unwrap();
    v.into_map().unwrap()
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(v, &mut out).unwrap();
    out
}

/// Where the payload sits in a token made by this encoder (payload > 255 bytes: 3-byte head).
fn payload_range(token: &[u8]) -> std::ops::Range<usize> {
    assert_eq!(token[7], 0x59, "payload bstr uses a 2-byte length");
    let len = u16::from_be_bytes([token[8], token[9]]) as usize;
    10..10 + len
}

#[test]
fn genuine_token_passes_appraisal() {
    let token = token_with(common::claims());
    appraise_default(&token).unwrap();
}

#[test]
fn attack_tampered_token_refused() {
    let token = token_with(common::claims());
    for i in payload_range(&token) {
        let mut t = token.clone();
        t[i] ^= 0x01;
        assert_eq!(
            appraise_default(&t),
            Err(Error::BadSignature),
            "flipped payload byte {i}"
        );
    }
}

#[test]
fn attack_tampered_signature_refused() {
    let token = token_with(common::claims());
    for i in token.len() - 64..token.len() {
        let mut t = token.clone();
        t[i] ^= 0x80;
        assert_eq!(
            appraise_default(&t),
            Err(Error::BadSignature),
            "flipped signature byte {i}"
        );
    }
}

#[test]
fn attack_wrong_nonce_refused() {
    // A token captured during an earlier challenge is replayed against a new one.
    let old_nonce = [0x01; 32];
    let replayed = token_with(TokenClaims {
        nonce: &old_nonce,
        ..common::claims()
    });
    let fresh_nonce = common::NONCE;
    assert_eq!(
        appraise(&replayed, &device_vk(), &fresh_nonce, &common::reference()),
        Err(Error::NonceMismatch)
    );
    // A shorter expected nonce that is a prefix of the token's does not match either.
    let token = token_with(common::claims());
    assert_eq!(
        appraise(
            &token,
            &device_vk(),
            &common::NONCE[..16],
            &common::reference()
        ),
        Err(Error::NonceMismatch)
    );
}

#[test]
fn attack_wrong_key_refused() {
    // The attacker signs perfect claims with its own key.
    let forged = common::make_token(&common::claims(), &common::other_key());
    assert_eq!(appraise_default(&forged), Err(Error::BadSignature));
    // And the genuine token does not verify with another device's key.
    let token = token_with(common::claims());
    let other = common::verification_key(&common::other_key());
    assert_eq!(verify_token(&token, &other), Err(Error::BadSignature));
}

#[test]
fn attack_unexpected_measurement_refused() {
    let patched_spe = [0x66; 32];
    let components = [
        common::COMPONENTS[0],
        SwComponent {
            measurement_value: &patched_spe,
            ..common::COMPONENTS[1]
        },
    ];
    let token = token_with_components(&components);
    match appraise_default(&token) {
        Err(Error::UnexpectedMeasurement { component }) => assert_eq!(component, "SPE"),
        other => panic!("expected UnexpectedMeasurement for SPE, got {other:?}"),
    }
    let msg = appraise_default(&token).unwrap_err().to_string();
    assert!(
        msg.contains("\"SPE\"") && msg.contains("measurement"),
        "{msg}"
    );
}

#[test]
fn attack_image_signed_by_other_key_refused() {
    let rogue_signer = [0x99; 32];
    let components = [
        SwComponent {
            signer_id: &rogue_signer,
            ..common::COMPONENTS[0]
        },
        common::COMPONENTS[1],
    ];
    let token = token_with_components(&components);
    match appraise_default(&token) {
        Err(Error::UnexpectedSigner { component }) => assert_eq!(component, "BL"),
        other => panic!("expected UnexpectedSigner for BL, got {other:?}"),
    }
}

#[test]
fn attack_rollback_to_old_version_refused() {
    // The old bootloader's hash is still an accepted value, but below the minimum version.
    let components = [
        SwComponent {
            version: Some("1.1.9"),
            ..common::COMPONENTS[0]
        },
        common::COMPONENTS[1],
    ];
    let token = token_with_components(&components);
    match appraise_default(&token) {
        Err(Error::VersionTooOld { component }) => assert_eq!(component, "BL"),
        other => panic!("expected VersionTooOld for BL, got {other:?}"),
    }
    // No version at all cannot prove it is new enough.
    let components = [
        SwComponent {
            version: None,
            ..common::COMPONENTS[0]
        },
        common::COMPONENTS[1],
    ];
    let token = token_with_components(&components);
    assert!(matches!(
        appraise_default(&token),
        Err(Error::VersionTooOld { .. })
    ));
}

#[test]
fn attack_injected_component_refused() {
    let evil = [0xee; 32];
    let components = [
        common::COMPONENTS[0],
        common::COMPONENTS[1],
        SwComponent {
            measurement_type: Some("EVIL"),
            measurement_value: &evil,
            ..common::COMPONENTS[0]
        },
    ];
    let token = token_with_components(&components);
    match appraise_default(&token) {
        Err(Error::UnknownComponent { component }) => assert_eq!(component, "EVIL"),
        other => panic!("expected UnknownComponent, got {other:?}"),
    }
    // Unless the policy says extra components are fine.
    let lenient = ReferenceValues {
        allow_unlisted_components: true,
        ..common::reference()
    };
    appraise(&token, &device_vk(), &common::NONCE, &lenient).unwrap();
}

#[test]
fn attack_missing_component_refused() {
    let components = [common::COMPONENTS[0]];
    let token = token_with_components(&components);
    match appraise_default(&token) {
        Err(Error::MissingComponent { component }) => assert_eq!(component, "SPE"),
        other => panic!("expected MissingComponent for SPE, got {other:?}"),
    }
}

#[test]
fn attack_debug_lifecycle_refused() {
    for raw in [0x4000u16, 0x5001, 0x1000, 0x6000, 0x0000] {
        let token = token_with(TokenClaims {
            lifecycle: raw,
            ..common::claims()
        });
        assert_eq!(
            appraise_default(&token),
            Err(Error::LifecycleNotAllowed { found: raw })
        );
    }
    let token = token_with(TokenClaims {
        lifecycle: 0x4000,
        ..common::claims()
    });
    let msg = appraise_default(&token).unwrap_err().to_string();
    assert!(
        msg.contains("0x4000") && msg.contains("non-psa-rot-debug"),
        "{msg}"
    );
    // A lifecycle value outside every PSA range is refused too, however it was signed.
    let mut map = genuine_claims_value();
    for (k, v) in map.iter_mut() {
        if k.as_integer() == Some(2395.into()) {
            *v = Value::from(0x7000);
        }
    }
    let token = sign_payload(&encode(&Value::Map(map)), &common::device_key());
    assert_eq!(
        appraise_default(&token),
        Err(Error::LifecycleNotAllowed { found: 0x7000 })
    );
    // Accepting a debug state is an explicit policy choice.
    let token = token_with(TokenClaims {
        lifecycle: 0x4000,
        ..common::claims()
    });
    let lab = ReferenceValues {
        accepted_lifecycles: vec![Lifecycle::Secured, Lifecycle::NonPsaRotDebug],
        ..common::reference()
    };
    appraise(&token, &device_vk(), &common::NONCE, &lab).unwrap();
}

#[test]
fn attack_other_implementation_refused() {
    let other_impl = [0xab; 32];
    let token = token_with(TokenClaims {
        implementation_id: &other_impl,
        ..common::claims()
    });
    assert_eq!(
        appraise_default(&token),
        Err(Error::ImplementationIdMismatch)
    );
}

#[test]
fn attack_unknown_profile_refused() {
    let mut map = genuine_claims_value();
    for (k, v) in map.iter_mut() {
        if k.as_integer() == Some(265.into()) {
            *v = Value::Text("tag:evil.example,2024:lenient".into());
        }
    }
    let token = sign_payload(&encode(&Value::Map(map)), &common::device_key());
    match appraise_default(&token) {
        Err(Error::UnknownProfile(p)) => assert_eq!(p, "tag:evil.example,2024:lenient"),
        other => panic!("expected UnknownProfile, got {other:?}"),
    }
    // A legacy profile is decodable but not accepted unless the policy lists it.
    let legacy = token_with(TokenClaims {
        profile: Profile::PsaV2,
        ..common::claims()
    });
    match appraise_default(&legacy) {
        Err(Error::UnknownProfile(p)) => assert_eq!(p, "http://arm.com/psa/2.0.0"),
        other => panic!("expected UnknownProfile, got {other:?}"),
    }
    let both = ReferenceValues {
        accepted_profiles: vec![Profile::Rfc9783, Profile::PsaV2],
        ..common::reference()
    };
    appraise(&legacy, &device_vk(), &common::NONCE, &both).unwrap();
}

#[test]
fn attack_algorithm_substitution_refused() {
    // Rewrite the protected header to claim HMAC (alg 5) so the verifier might use the public
    // key as an HMAC secret: refused before any MAC is computed.
    let mut token = token_with(common::claims());
    assert_eq!(&token[3..6], &[0xa1, 0x01, 0x26]);
    token[5] = 0x05;
    assert_eq!(
        verify_token(&token, &device_vk()),
        Err(Error::UnsupportedAlgorithm(5))
    );
    // ES384 (-35) is refused too.
    let mut token = token_with(common::claims());
    token[3..6].copy_from_slice(&[0xa1, 0x01, 0x38]);
    token.insert(6, 0x22);
    token[2] = 0x44;
    assert_eq!(
        verify_token(&token, &device_vk()),
        Err(Error::UnsupportedAlgorithm(-35))
    );
    // ESP256 (-9) in the protected header changes the signed bytes: the signature fails.
    let mut token = token_with(common::claims());
    token[5] = 0x28;
    assert_eq!(verify_token(&token, &device_vk()), Err(Error::BadSignature));
}

#[test]
fn attack_detached_payload_refused() {
    // 18([h'A10126', {}, nil, sig]) : no payload to appraise.
    let mut t = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x58, 0x40];
    t.extend_from_slice(&[0u8; 64]);
    assert_eq!(
        verify_token(&t, &device_vk()),
        Err(Error::Malformed("payload is detached (nil)"))
    );
}

#[test]
fn attack_duplicate_claim_key_refused() {
    // Two nonce claims: a lax parser could check one and a downstream consumer read the other.
    let mut map = genuine_claims_value();
    map.push((Value::from(10), Value::Bytes(vec![0x01; 32])));
    let token = sign_payload(&encode(&Value::Map(map)), &common::device_key());
    assert_eq!(
        appraise_default(&token),
        Err(Error::Malformed("a claim key appears twice"))
    );
}

#[test]
fn truncated_token_is_malformed() {
    let token = token_with(common::claims());
    for len in 0..token.len() {
        match verify_token(&token[..len], &device_vk()) {
            Err(Error::Malformed(_)) => {}
            other => panic!("prefix of {len} bytes: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn garbage_input_is_malformed() {
    let inputs: [&[u8]; 7] = [
        b"",
        b"hello, verifier",
        &[0xff; 40],
        &[0xd2],
        &[0xd2, 0x84],
        &[0x84, 0x40, 0xa0, 0x40, 0x40],
        &[0xa1, 0x0a, 0x58, 0x20],
    ];
    for input in inputs {
        assert!(
            matches!(verify_token(input, &device_vk()), Err(Error::Malformed(_))),
            "{input:02x?}"
        );
        assert!(
            matches!(decode_token(input), Err(Error::Malformed(_))),
            "{input:02x?}"
        );
    }
    // Trailing bytes after a valid token are refused as well.
    let mut token = token_with(common::claims());
    token.push(0x00);
    assert!(matches!(
        verify_token(&token, &device_vk()),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn signed_but_malformed_claims_are_refused_with_the_claim_named() {
    let edits: [(i64, Value, Error); 6] = [
        (
            10,
            Value::Bytes(vec![0; 20]),
            Error::Malformed("nonce must be 32, 48 or 64 bytes"),
        ),
        (
            10,
            Value::Text("nonce".into()),
            Error::Malformed("nonce is not a byte string"),
        ),
        (
            2394,
            Value::from(1i64 << 40),
            Error::Malformed("client id outside i32"),
        ),
        (
            2395,
            Value::from(70000),
            Error::Malformed("security lifecycle outside u16"),
        ),
        (
            256,
            Value::Bytes(vec![0x02; 33]),
            Error::Malformed("instance id must be 0x01 followed by 32 bytes"),
        ),
        (
            2399,
            Value::Array(vec![]),
            Error::Malformed("software components array is empty"),
        ),
    ];
    for (key, value, expected) in edits {
        let mut map = genuine_claims_value();
        for (k, v) in map.iter_mut() {
            if k.as_integer() == Some(key.into()) {
                *v = value.clone();
            }
        }
        let token = sign_payload(&encode(&Value::Map(map)), &common::device_key());
        assert_eq!(appraise_default(&token), Err(expected), "claim {key}");
    }
    let mut map = genuine_claims_value();
    map.retain(|(k, _)| k.as_integer() != Some(2396.into()));
    let token = sign_payload(&encode(&Value::Map(map)), &common::device_key());
    assert_eq!(
        appraise_default(&token),
        Err(Error::MissingClaim("implementation id"))
    );
}

#[test]
fn measurement_accepted_from_any_listed_release() {
    // During a rollout both the old and the new SPE hash are acceptable.
    let new_spe = [0x23; 32];
    let components = [
        common::COMPONENTS[0],
        SwComponent {
            measurement_value: &new_spe,
            ..common::COMPONENTS[1]
        },
    ];
    let token = token_with_components(&components);
    let mut reference = common::reference();
    reference.components[1]
        .measurement_values
        .push(new_spe.to_vec());
    appraise(&token, &device_vk(), &common::NONCE, &reference).unwrap();
    // Empty list: any measurement, signer and version still checked.
    reference.components[1] = ExpectedComponent {
        measurement_values: vec![],
        ..reference.components[1].clone()
    };
    appraise(&token, &device_vk(), &common::NONCE, &reference).unwrap();
}
