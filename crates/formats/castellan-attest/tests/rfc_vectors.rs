//! The RFC 9783 appendix tokens (copied from shared/vectors into tests/data) decode and verify
//! with the RFC's keys, and their claims are the RFC's values.

mod common;

use castellan_attest::{
    Claims, Component, Error, Lifecycle, Profile, Protection, ReferenceValues, decode_token,
    verify_token,
};

fn rfc_claims(instance_id: Vec<u8>) -> Claims {
    Claims {
        profile: Profile::Rfc9783,
        client_id: 2147483647,
        lifecycle: 12288,
        implementation_id: vec![0; 32],
        instance_id,
        nonce: vec![0x01; 32],
        boot_seed: Some(vec![0; 8]),
        certification_reference: None,
        verification_service: None,
        software_components: vec![Component {
            measurement_type: Some("PRoT".into()),
            measurement_value: vec![0x03; 32],
            version: None,
            signer_id: vec![0x04; 32],
            measurement_desc: None,
        }],
    }
}

fn sign1_instance_id() -> Vec<u8> {
    let mut id = vec![0x02; 33];
    id[0] = 0x01;
    id
}

#[test]
fn rfc9783_sign1_example_verifies_with_rfc_key_and_has_rfc_claims() {
    let claims = verify_token(&common::rfc_sign1(), &common::rfc_key()).unwrap();
    assert_eq!(claims, rfc_claims(sign1_instance_id()));
    assert_eq!(claims.profile.as_str(), "tag:psacertified.org,2023:psa#tfm");
    assert_eq!(claims.lifecycle_state(), Some(Lifecycle::Secured));
}

#[test]
fn rfc9783_sign1_example_decodes_as_es256() {
    let decoded = decode_token(&common::rfc_sign1()).unwrap();
    assert_eq!(decoded.protection, Protection::Sign1 { alg: -7 });
    assert_eq!(decoded.claims.software_components.len(), 1);
}

#[test]
fn rfc9783_sign1_example_verifies_with_spki_pem_of_same_key() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let castellan_attest::VerificationKey::Es256(vk) = common::rfc_key() else {
        panic!("JWK gave a non-EC key")
    };
    let pem = vk.to_public_key_pem(LineEnding::LF).unwrap();
    let key = castellan_attest::VerificationKey::p256_from_pem(&pem).unwrap();
    verify_token(&common::rfc_sign1(), &key).unwrap();
    let der = vk.to_public_key_der().unwrap();
    let key = castellan_attest::VerificationKey::p256_from_spki_der(der.as_bytes()).unwrap();
    verify_token(&common::rfc_sign1(), &key).unwrap();
}

#[test]
fn rfc9783_mac0_example_verifies_with_rfc_hmac_key_and_has_rfc_claims() {
    let token = common::rfc_mac0();
    assert_eq!(
        decode_token(&token).unwrap().protection,
        Protection::Mac0 { alg: 5 }
    );
    let claims = verify_token(&token, &common::rfc_hmac_key()).unwrap();
    let instance_id =
        hex::decode("01c557bd4fadc83f756fca2cd5ea2dcc8b82159bb4e7453d6a744d4eecd6d0ac60").unwrap();
    assert_eq!(claims, rfc_claims(instance_id));
}

#[test]
fn rfc9783_mac0_with_wrong_hmac_key_is_refused() {
    let key = castellan_attest::VerificationKey::hmac_sha256(&[0x55; 64]).unwrap();
    assert_eq!(
        verify_token(&common::rfc_mac0(), &key),
        Err(Error::BadSignature)
    );
}

#[test]
fn rfc9783_examples_refuse_the_other_kind_of_key() {
    assert_eq!(
        verify_token(&common::rfc_sign1(), &common::rfc_hmac_key()),
        Err(Error::KeyMismatch)
    );
    assert_eq!(
        verify_token(&common::rfc_mac0(), &common::rfc_key()),
        Err(Error::KeyMismatch)
    );
}

#[test]
fn rfc9783_untagged_sign1_and_mac0_are_accepted() {
    // Drop the tag byte (0xd2 / 0xd1): COSE allows untagged messages where context says which.
    let sign1 = common::rfc_sign1();
    verify_token(&sign1[1..], &common::rfc_key()).unwrap();
    let mac0 = common::rfc_mac0();
    verify_token(&mac0[1..], &common::rfc_hmac_key()).unwrap();
}

#[test]
fn rfc9783_example_appraises_against_matching_reference_values() {
    use castellan_attest::{ExpectedComponent, appraise};
    let reference = ReferenceValues {
        implementation_id: Some(vec![0; 32]),
        components: vec![ExpectedComponent {
            measurement_type: "PRoT".into(),
            measurement_values: vec![vec![0x03; 32]],
            signer_id: Some(vec![0x04; 32]),
            min_version: None,
        }],
        ..ReferenceValues::default()
    };
    let claims = appraise(
        &common::rfc_sign1(),
        &common::rfc_key(),
        &[0x01; 32],
        &reference,
    )
    .unwrap();
    assert_eq!(claims.client_id, i32::MAX);
}

#[test]
fn claims_print_as_text_and_json() {
    let claims = verify_token(&common::rfc_sign1(), &common::rfc_key()).unwrap();
    let text = claims.to_string();
    assert!(text.contains("profile:                 tag:psacertified.org,2023:psa#tfm"));
    assert!(text.contains("security lifecycle:      0x3000 (secured)"));
    assert!(text.contains("client id:               2147483647 (secure caller)"));
    assert!(text.contains("[0] PRoT"));
    assert!(text.contains(&"03".repeat(32)));

    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["profile"], "tag:psacertified.org,2023:psa#tfm");
    assert_eq!(json["client_id"], 2147483647);
    assert_eq!(json["lifecycle"], 12288);
    assert_eq!(json["boot_seed"], "0000000000000000");
    assert_eq!(json["software_components"][0]["measurement_type"], "PRoT");
    assert_eq!(json["software_components"][0]["signer_id"], "04".repeat(32));
    let back: Claims = serde_json::from_value(json).unwrap();
    assert_eq!(back, claims);
}
