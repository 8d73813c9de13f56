//! Onboarding through a simulated device's gate (the firmware's own dispatcher), checked with
//! the service side's types and verifiers: the protocol's JSON, the PSA token verifier with the
//! device's attestation key, the CSR parser.

use base64::Engine as _;
use castellan_attest::{VerificationKey, verify_token};
use castellan_fleet_client::{
    Action, CERT_MAX, FleetError, LDEVID_KEY_ID, Onboarding, UID_LDEVID, stored_ldevid,
};
use castellan_gate_api::{SecureGate, psa};
use castellan_protocol::{Challenge, Evidence, OnboardKind, OnboardResult, Topic};
use castellan_simgate::SimGate;
use castellan_simgate::testing::{TestDevice, TestSecure as Secure};

const ID: &str = "sensor-0042";

fn secure() -> Secure {
    TestDevice::ROOMY.secure()
}

fn sha256(m: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(m).into()
}

fn challenge(nonce: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&Challenge {
        nonce: hex::encode(nonce),
    })
    .unwrap()
}

/// A DER SEQUENCE standing for a certificate of `public` (the device checks the framing and
/// that its key is certified; the broker verifies the chain at TLS time).
fn certificate_pem(public: &[u8]) -> String {
    let mut body = vec![0x30, 0x59];
    body.extend_from_slice(&[0xaa; 25]);
    body.extend_from_slice(public);
    body.extend_from_slice(&[0x55; 200]);
    let mut der = vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8];
    der.extend_from_slice(&body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn accepted(pem: String) -> Vec<u8> {
    serde_json::to_vec(&OnboardResult {
        accepted: true,
        ldevid_pem: Some(pem),
        chain_pem: Some("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into()),
        policy: None,
        reason: None,
        code: None,
    })
    .unwrap()
}

fn topic(kind: &str) -> String {
    format!("dev/{ID}/{kind}")
}

/// Runs onboarding up to the evidence; returns the evidence the service would receive.
fn to_evidence<G: SecureGate>(g: &mut G, ob: &mut Onboarding) -> Evidence {
    assert_eq!(
        ob.start(),
        Action::Publish {
            topic: &topic("up/onboard/hello"),
            payload: b"{}"
        }
    );
    let nonce = [0x5a; 32];
    match ob
        .on_message(g, &topic("down/onboard/challenge"), &challenge(&nonce))
        .unwrap()
    {
        Action::Publish { topic: t, payload } => {
            assert_eq!(
                Topic::parse(t).unwrap(),
                Topic::Onboard {
                    id: ID.into(),
                    kind: OnboardKind::Evidence
                }
            );
            serde_json::from_slice(payload).unwrap()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn onboarding_answers_the_challenge_and_stores_the_ldevid() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut ob = Onboarding::new(ID, sha256).unwrap();
    assert_eq!(ob.subscription(), format!("dev/{ID}/down/onboard/#"));
    assert_eq!(
        ob.on_message(&mut g, &topic("telemetry"), b"{}").unwrap(),
        Action::Ignored
    );
    let ev = to_evidence(&mut g, &mut ob);
    // The token verifies with the device's attestation key and answers the nonce.
    let mut iak = [0u8; 65];
    g.attest_public_key(&mut iak).unwrap();
    let claims = verify_token(
        &hex::decode(&ev.token).unwrap(),
        &VerificationKey::p256_from_sec1(&iak).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.nonce, vec![0x5a; 32]);
    // The CSR is self-signed by the LDevID key, for this device.
    let info = castellan_x509::verify_csr(&hex::decode(&ev.csr).unwrap()).unwrap();
    let mut public = [0u8; 65];
    g.export_public_key(LDEVID_KEY_ID, &mut public).unwrap();
    assert_eq!(info.public_key, public);
    assert_eq!(info.requested_common_name.as_deref(), Some(ID));
    // A challenge out of turn is ignored.
    assert_eq!(
        ob.on_message(
            &mut g,
            &topic("down/onboard/challenge"),
            &challenge(&[1; 32])
        )
        .unwrap(),
        Action::Ignored
    );
    let r = accepted(certificate_pem(&public));
    let len = match ob
        .on_message(&mut g, &topic("down/onboard/result"), &r)
        .unwrap()
    {
        Action::Onboarded { len } => len,
        other => panic!("{other:?}"),
    };
    assert!(ob.done());
    let mut stored = [0u8; CERT_MAX];
    assert_eq!(stored_ldevid(&mut g, &mut stored), Ok(len));
    assert!(stored[..len].windows(65).any(|w| w == public));
}

#[test]
fn a_refusal_carries_the_reason_and_code() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut ob = Onboarding::new(ID, sha256).unwrap();
    to_evidence(&mut g, &mut ob);
    let r = serde_json::to_vec(&OnboardResult {
        accepted: false,
        ldevid_pem: None,
        chain_pem: None,
        policy: None,
        reason: Some("the token's nonce is not the challenge's".into()),
        code: Some("attestation.nonce_mismatch".into()),
    })
    .unwrap();
    assert_eq!(
        ob.on_message(&mut g, &topic("down/onboard/result"), &r)
            .unwrap(),
        Action::Refused {
            reason: "the token's nonce is not the challenge's",
            code: "attestation.nonce_mismatch"
        }
    );
}

#[test]
fn attack_ldevid_for_another_key_is_not_stored() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut ob = Onboarding::new(ID, sha256).unwrap();
    to_evidence(&mut g, &mut ob);
    let mut other = [4u8; 65];
    other[1] = 9;
    let r = accepted(certificate_pem(&other));
    assert_eq!(
        ob.on_message(&mut g, &topic("down/onboard/result"), &r),
        Err(FleetError::NotOurKey)
    );
    assert!(!ob.done());
    let mut l = [0u8; 4];
    assert_eq!(
        g.its_get(UID_LDEVID, &mut l).unwrap_err().status(),
        psa::ERROR_DOES_NOT_EXIST
    );
}

#[test]
fn attack_malformed_challenges_are_refused_before_any_signature() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut ob = Onboarding::new(ID, sha256).unwrap();
    ob.start();
    let t = topic("down/onboard/challenge");
    for bad in [
        challenge(&[1; 31]),
        challenge(&[1; 65]),
        br#"{"nonce": "zz5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"}"#.to_vec(),
        br#"{"nonce": 7}"#.to_vec(),
        b"not json".to_vec(),
        vec![0xff; 5000],
    ] {
        assert_eq!(
            ob.on_message(&mut g, &t, &bad),
            Err(FleetError::BadChallenge),
            "{}",
            String::from_utf8_lossy(&bad)
        );
    }
    // No LDevID key was made for them; a good challenge still works.
    let mut k = [0u8; 65];
    assert!(g.export_public_key(LDEVID_KEY_ID, &mut k).is_err());
    assert!(matches!(
        ob.on_message(&mut g, &t, &challenge(&[2; 48])).unwrap(),
        Action::Publish { .. }
    ));
}

#[test]
fn attack_result_out_of_turn_or_for_another_device_is_ignored() {
    let mut s = secure();
    let mut g = SimGate::new(&mut s);
    let mut ob = Onboarding::new(ID, sha256).unwrap();
    ob.start();
    let r = accepted(certificate_pem(&[4; 65]));
    assert_eq!(
        ob.on_message(&mut g, &topic("down/onboard/result"), &r)
            .unwrap(),
        Action::Ignored
    );
    assert_eq!(
        ob.on_message(
            &mut g,
            "dev/other-1/down/onboard/challenge",
            &challenge(&[1; 32])
        )
        .unwrap(),
        Action::Ignored
    );
    assert_eq!(
        Onboarding::new("bad id/#", sha256).err(),
        Some(FleetError::BadId)
    );
}
