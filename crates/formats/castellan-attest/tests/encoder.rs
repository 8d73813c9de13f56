//! The no_std encoder: round trip through the std verifier, agreement with coset's COSE
//! structures, fixed-buffer behaviour and refusal of claims that break RFC 9783.

mod common;

use castellan_attest::{
    Error, Profile, SwComponent, TokenClaims, appraise, assemble_sign1, claims_len, encode_claims,
    encode_token, sig_structure, token_len, verify_token,
};
use coset_check::tbs_of;

/// Independent view of a token through coset (the verifier's COSE library).
mod coset_check {
    pub fn tbs_of(token: &[u8]) -> (Vec<u8>, Vec<u8>) {
        use coset::{CoseSign1, TaggedCborSerializable};
        let s = CoseSign1::from_tagged_slice(token).unwrap();
        (s.tbs_data(b""), s.payload.clone().unwrap())
    }
}

#[test]
fn round_trip_encoder_to_verifier_keeps_every_claim() {
    let claims = common::claims();
    let token = common::make_token(&claims, &common::device_key());
    let got = appraise(
        &token,
        &common::verification_key(&common::device_key()),
        &common::NONCE,
        &common::reference(),
    )
    .unwrap();
    assert_eq!(got.profile, Profile::Rfc9783);
    assert_eq!(got.nonce, common::NONCE);
    assert_eq!(got.instance_id, common::INSTANCE_ID);
    assert_eq!(got.implementation_id, common::IMPLEMENTATION_ID);
    assert_eq!(got.lifecycle, 0x3000);
    assert_eq!(got.boot_seed.as_deref(), Some(&common::BOOT_SEED[..]));
    assert_eq!(got.client_id, -1);
    assert_eq!(
        got.certification_reference.as_deref(),
        Some("0604565272829-10010")
    );
    assert_eq!(
        got.verification_service.as_deref(),
        Some("https://verifier.castellan.example/psa")
    );
    assert_eq!(got.software_components.len(), 2);
    let spe = &got.software_components[1];
    assert_eq!(spe.measurement_type.as_deref(), Some("SPE"));
    assert_eq!(spe.measurement_value, common::SPE_HASH);
    assert_eq!(spe.signer_id, common::SIGNER);
    assert_eq!(spe.version.as_deref(), Some("2.1.3"));
    assert_eq!(spe.measurement_desc.as_deref(), Some("sha-256"));
}

#[test]
fn token_is_tagged_cose_sign1_with_es256_protected_header() {
    let token = common::make_token(&common::claims(), &common::device_key());
    assert_eq!(&token[..6], &[0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26]);
    assert_eq!(token[6], 0xa0, "unprotected header must be an empty map");
    assert_eq!(&token[token.len() - 66..token.len() - 64], &[0x58, 0x40]);
    assert_eq!(token.len(), token_len(&common::claims()).unwrap());
}

#[test]
fn sig_structure_matches_coset_tbs_data() {
    let token = common::make_token(&common::claims(), &common::device_key());
    let (coset_tbs, payload) = tbs_of(&token);
    let mut ours = vec![0u8; 1024];
    let n = sig_structure(&payload, &mut ours).unwrap();
    assert_eq!(&ours[..n], &coset_tbs[..]);
    assert_eq!(&ours[..14], b"\x84\x6aSignature1\x43\xa1");
}

#[test]
fn step_api_and_one_buffer_encoder_produce_identical_tokens() {
    let claims = common::claims();
    let sk = common::device_key();
    let mut payload = [0u8; 512];
    let p = encode_claims(&claims, &mut payload).unwrap();
    assert_eq!(p, claims_len(&claims).unwrap());
    let mut tbs = [0u8; 600];
    let t = sig_structure(&payload[..p], &mut tbs).unwrap();
    let sig = common::signer(&sk)(&tbs[..t]).unwrap();
    let mut out = [0u8; 700];
    let n = assemble_sign1(&payload[..p], &sig, &mut out).unwrap();
    assert_eq!(&out[..n], &common::make_token(&claims, &sk)[..]);
}

#[test]
fn claims_are_written_in_deterministic_key_order() {
    let claims = common::claims();
    let (payload, v) = encoded_claims(&claims);
    let keys = keys_of(&v);
    assert_eq!(
        keys,
        [10, 256, 265, 268, 2394, 2395, 2396, 2398, 2399, 2400]
    );
    // Re-encoding the decoded value with ciborium gives the same bytes: shortest heads.
    let mut again = Vec::new();
    coset::cbor::ser::into_writer(&v, &mut again).unwrap();
    assert_eq!(again, payload);
}

#[test]
fn nonce_sizes_48_and_64_are_encoded_and_verified() {
    for size in [48usize, 64] {
        let nonce = vec![0x6e; size];
        let claims = TokenClaims {
            nonce: &nonce,
            ..common::claims()
        };
        let token = common::make_token(&claims, &common::device_key());
        let got = appraise(
            &token,
            &common::verification_key(&common::device_key()),
            &nonce,
            &common::reference(),
        )
        .unwrap();
        assert_eq!(got.nonce.len(), size);
    }
}

#[test]
fn encoder_refuses_wrong_nonce_size() {
    for size in [0usize, 1, 16, 31, 33, 47, 49, 63, 65, 128] {
        let nonce = vec![0u8; size];
        let claims = TokenClaims {
            nonce: &nonce,
            ..common::claims()
        };
        let mut out = [0u8; 1024];
        assert_eq!(
            encode_token(
                &claims,
                &mut common::signer(&common::device_key()),
                &mut out
            ),
            Err(Error::InvalidNonceLength(size)),
            "nonce of {size} bytes"
        );
        assert_eq!(
            encode_claims(&claims, &mut out),
            Err(Error::InvalidNonceLength(size))
        );
    }
}

#[test]
fn encoder_refuses_claims_that_break_rfc9783() {
    let bad_instance = [0x02; 33];
    let short_hash = [0u8; 20];
    let bad_component = [SwComponent {
        measurement_value: &short_hash,
        ..common::COMPONENTS[0]
    }];
    let bad_signer = [SwComponent {
        signer_id: &short_hash,
        ..common::COMPONENTS[0]
    }];
    let cases: Vec<(TokenClaims<'_>, &str)> = vec![
        (
            TokenClaims {
                instance_id: &bad_instance,
                ..common::claims()
            },
            "instance id",
        ),
        (
            TokenClaims {
                boot_seed: Some(&[0; 7]),
                ..common::claims()
            },
            "boot seed",
        ),
        (
            TokenClaims {
                boot_seed: Some(&[0; 33]),
                ..common::claims()
            },
            "boot seed",
        ),
        (
            TokenClaims {
                software_components: &[],
                ..common::claims()
            },
            "at least one",
        ),
        (
            TokenClaims {
                software_components: &bad_component,
                ..common::claims()
            },
            "measurement",
        ),
        (
            TokenClaims {
                software_components: &bad_signer,
                ..common::claims()
            },
            "signer id",
        ),
        (
            TokenClaims {
                lifecycle: 0x7000,
                ..common::claims()
            },
            "lifecycle",
        ),
        (
            TokenClaims {
                certification_reference: Some("1234567890123"),
                ..common::claims()
            },
            "EAN-13+5",
        ),
        (
            TokenClaims {
                verification_service: Some(""),
                ..common::claims()
            },
            "verification",
        ),
    ];
    for (claims, what) in cases {
        match encode_claims(&claims, &mut [0u8; 1024]) {
            Err(Error::InvalidClaim(msg)) => assert!(msg.contains(what), "{msg} / {what}"),
            other => panic!("{what}: expected InvalidClaim, got {other:?}"),
        }
    }
    let legacy = TokenClaims {
        profile: Profile::PsaIotProfile1,
        ..common::claims()
    };
    assert_eq!(
        encode_claims(&legacy, &mut [0u8; 1024]),
        Err(Error::UnsupportedProfile)
    );
}

#[test]
fn fixed_buffer_too_small_gives_typed_error_with_exact_size_never_panics() {
    let claims = common::claims();
    let full = token_len(&claims).unwrap();
    let payload_len = claims_len(&claims).unwrap();
    let mut payload = vec![0u8; payload_len];
    encode_claims(&claims, &mut payload).unwrap();
    let sig = [7u8; 64];
    let mut buf = vec![0u8; full + 8];
    for size in 0..full {
        let out = &mut buf[..size];
        assert_eq!(
            encode_token(&claims, &mut common::signer(&common::device_key()), out),
            Err(Error::BufferTooSmall {
                needed: full,
                available: size
            })
        );
        assert_eq!(
            assemble_sign1(&payload, &sig, out),
            Err(Error::BufferTooSmall {
                needed: full,
                available: size
            })
        );
        if size < payload_len {
            assert_eq!(
                encode_claims(&claims, out),
                Err(Error::BufferTooSmall {
                    needed: payload_len,
                    available: size
                })
            );
        }
        if size < payload_len + 20 {
            assert!(matches!(
                sig_structure(&payload, out),
                Err(Error::BufferTooSmall { needed, available }) if needed == payload_len + 20 && available == size
            ));
        }
    }
    // A larger buffer is fine and only the token's bytes are reported.
    assert_eq!(
        encode_token(
            &claims,
            &mut common::signer(&common::device_key()),
            &mut buf
        ),
        Ok(full)
    );
}

#[test]
fn signer_failure_is_reported_with_its_status() {
    let mut failing = |_: &[u8]| -> Result<[u8; 64], i32> { Err(-135) }; // PSA_ERROR_INVALID_ARGUMENT
    let mut out = [0u8; 1024];
    assert_eq!(
        encode_token(&common::claims(), &mut failing, &mut out),
        Err(Error::SignerFailed(-135))
    );
}

#[test]
fn encoder_accepts_dyn_fnmut_signer() {
    let sk = common::device_key();
    let mut f = common::signer(&sk);
    let dyn_signer: &mut castellan_attest::SignFn<'_> = &mut f;
    let mut out = [0u8; 1024];
    let n = encode_token(&common::claims(), dyn_signer, &mut out).unwrap();
    verify_token(&out[..n], &common::verification_key(&sk)).unwrap();
}

#[test]
fn minimal_claims_without_optional_claims_round_trip() {
    let component = [bare_component()];
    let claims = TokenClaims {
        boot_seed: None,
        certification_reference: None,
        verification_service: None,
        software_components: &component,
        ..common::claims()
    };
    let token = common::make_token(&claims, &common::device_key());
    let got = verify_token(&token, &common::verification_key(&common::device_key())).unwrap();
    assert_eq!(got.boot_seed, None);
    assert_eq!(got.software_components[0].measurement_type, None);
    assert_eq!(got.software_components[0].version, None);
}

#[test]
fn legacy_v2_profile_puts_boot_seed_under_2397() {
    let claims = TokenClaims {
        profile: Profile::PsaV2,
        ..common::claims()
    };
    let keys = keys_of(&encoded_claims(&claims).1);
    assert!(keys.contains(&2397) && !keys.contains(&268));
    let token = common::make_token(&claims, &common::device_key());
    let got = verify_token(&token, &common::verification_key(&common::device_key())).unwrap();
    assert_eq!(got.profile, Profile::PsaV2);
    assert_eq!(got.boot_seed.as_deref(), Some(&common::BOOT_SEED[..]));
}

#[test]
fn one_buffer_encoder_is_correct_across_payload_length_head_sizes() {
    // Payload lengths crossing 255/256 change the bstr head from 2 to 3 bytes, which moves the
    // payload inside the buffer: every length must still give a token that verifies.
    let component = [bare_component()];
    let sk = common::device_key();
    let vk = common::verification_key(&sk);
    let text = "v".repeat(120);
    let mut lengths = std::collections::BTreeSet::new();
    for n in 1..120 {
        let claims = TokenClaims {
            boot_seed: None,
            certification_reference: None,
            verification_service: Some(&text[..n]),
            software_components: &component,
            ..common::claims()
        };
        lengths.insert(claims_len(&claims).unwrap());
        let token = common::make_token(&claims, &sk);
        let got = verify_token(&token, &vk).unwrap();
        assert_eq!(got.verification_service.as_deref(), Some(&text[..n]));
    }
    assert!(
        lengths.contains(&255) && lengths.contains(&256),
        "{lengths:?}"
    );
}

/// The claims map `claims` encodes to: its bytes and its decoded value.
fn encoded_claims(claims: &TokenClaims<'_>) -> (Vec<u8>, coset::cbor::Value) {
    let mut payload = [0u8; 512];
    let n = encode_claims(claims, &mut payload).unwrap();
    let v = coset::cbor::de::from_reader(&payload[..n]).unwrap();
    (payload[..n].to_vec(), v)
}

/// The keys of a claims map, in encoded order.
fn keys_of(v: &coset::cbor::Value) -> Vec<i128> {
    v.as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_integer().unwrap().into())
        .collect()
}

/// A software component with only its measurement and signer (no optional fields).
fn bare_component() -> SwComponent<'static> {
    SwComponent {
        measurement_type: None,
        measurement_value: &common::BL_HASH,
        version: None,
        signer_id: &common::SIGNER,
        measurement_desc: None,
    }
}
