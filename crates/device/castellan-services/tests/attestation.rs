//! Initial attestation: tokens the device makes verify and appraise with `castellan-attest`'s
//! verifier; tampered tokens, stale nonces, other keys and unexpected measurements are refused;
//! the attestation key is bound to the measured boot chain.

mod common;

use castellan_attest::{
    Error as AppraisalError, ExpectedComponent, Lifecycle, ReferenceValues, VerificationKey,
    appraise, decode_token, verify_token,
};
use castellan_services::{ItsFlags, ServiceError, psa, status_of};
use common::*;
use sha2::{Digest, Sha256};

fn reference() -> ReferenceValues {
    // The test boot chain: measurement, signer and the lowest acceptable version.
    let expect = |kind: &str, hash: [u8; 32], min_version: &str| ExpectedComponent {
        measurement_type: kind.into(),
        measurement_values: vec![hash.to_vec()],
        signer_id: Some(SIGNER.to_vec()),
        min_version: Some(min_version.into()),
    };
    ReferenceValues {
        implementation_id: Some(IMPLEMENTATION_ID.to_vec()),
        components: vec![
            expect("BL", BL_HASH, "1.0.0"),
            expect("SPE", SPE_HASH, "2.1.0"),
        ],
        ..ReferenceValues::default()
    }
}

fn token(svc: &mut Services<'_>, nonce: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; svc.attest_token_size(nonce.len()).unwrap()];
    let n = svc.attest_token(nonce, -1, &mut buf).unwrap();
    assert_eq!(n, buf.len(), "token size prediction");
    buf
}

#[test]
fn tokens_verify_and_carry_the_device_claims() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    svc.lifecycle_transition(Lifecycle::PsaRotProvisioning)
        .unwrap();
    svc.lifecycle_transition(Lifecycle::Secured).unwrap();
    let key = VerificationKey::p256_from_sec1(&svc.attestation_public_key()).unwrap();
    for len in [32usize, 48, 64] {
        let nonce: Vec<u8> = (0..len as u8).collect();
        let t = token(&mut svc, &nonce);
        let claims = appraise(&t, &key, &nonce, &reference()).unwrap();
        assert_eq!(claims.nonce, nonce);
        assert_eq!(claims.instance_id, svc.instance_id());
        assert_eq!(claims.instance_id[0], 0x01);
        assert_eq!(
            claims.instance_id[1..],
            Sha256::digest(svc.attestation_public_key())[..]
        );
        assert_eq!(claims.implementation_id, IMPLEMENTATION_ID);
        assert_eq!(claims.lifecycle_state(), Some(Lifecycle::Secured));
        assert_eq!(claims.client_id, -1);
        assert_eq!(claims.boot_seed.as_ref().map(Vec::len), Some(32));
        let spe = &claims.software_components[1];
        assert_eq!(spe.measurement_type.as_deref(), Some("SPE"));
        assert_eq!(spe.version.as_deref(), Some("2.1.3+7"));
        assert_eq!(spe.measurement_desc.as_deref(), Some("sha-256"));
        assert_eq!(spe.signer_id, SIGNER);
    }
}

#[test]
fn attack_tampered_token_refused() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let key = VerificationKey::p256_from_sec1(&svc.attestation_public_key()).unwrap();
    let nonce = [0x42u8; 32];
    let t = token(&mut svc, &nonce);
    // Flip one bit of the SPE measurement inside the signed payload.
    let at = t.windows(32).position(|w| w == SPE_HASH).unwrap();
    let mut forged = t.clone();
    forged[at] ^= 1;
    assert_eq!(
        verify_token(&forged, &key).unwrap_err(),
        AppraisalError::BadSignature
    );
    // And a bit of the signature itself.
    let mut forged = t.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(
        appraise(
            &forged,
            &key,
            &nonce,
            &ReferenceValues {
                accepted_lifecycles: vec![Lifecycle::AssemblyAndTest],
                ..reference()
            }
        )
        .unwrap_err(),
        AppraisalError::BadSignature
    );
}

#[test]
fn attack_stale_nonce_refused() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let key = VerificationKey::p256_from_sec1(&svc.attestation_public_key()).unwrap();
    let old = token(&mut svc, &[1u8; 32]);
    let e = appraise(&old, &key, &[2u8; 32], &reference()).unwrap_err();
    assert_eq!(e, AppraisalError::NonceMismatch);
}

#[test]
fn attack_token_from_another_device_refused() {
    let mut dev = device(4, 0xFF);
    let svc = boot(&mut dev);
    let expected_key = VerificationKey::p256_from_sec1(&svc.attestation_public_key()).unwrap();
    let mut other = seeded_device(4, 0xFF, 777);
    let mut impostor = boot(&mut other);
    assert_ne!(impostor.instance_id(), svc.instance_id());
    let nonce = [9u8; 48];
    let t = token(&mut impostor, &nonce);
    assert_eq!(
        verify_token(&t, &expected_key).unwrap_err(),
        AppraisalError::BadSignature
    );
}

#[test]
fn attack_unexpected_measurement_refused() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let key = VerificationKey::p256_from_sec1(&svc.attestation_public_key()).unwrap();
    let nonce = [5u8; 32];
    let t = token(&mut svc, &nonce);
    let mut refs = reference();
    refs.accepted_lifecycles = vec![Lifecycle::AssemblyAndTest];
    refs.components[1].measurement_values = vec![vec![0xEE; 32]];
    let e = appraise(&t, &key, &nonce, &refs).unwrap_err();
    assert!(
        matches!(e, AppraisalError::UnexpectedMeasurement { component } if component == "SPE"),
        "{e}"
    );
    // An unknown signer and a too-old version are refused too.
    let mut refs = reference();
    refs.accepted_lifecycles = vec![Lifecycle::AssemblyAndTest];
    refs.components[0].signer_id = Some(vec![0u8; 32]);
    assert!(matches!(
        appraise(&t, &key, &nonce, &refs),
        Err(AppraisalError::UnexpectedSigner { .. })
    ));
    let mut refs = reference();
    refs.accepted_lifecycles = vec![Lifecycle::AssemblyAndTest];
    refs.components[1].min_version = Some("2.2.0".into());
    assert!(matches!(
        appraise(&t, &key, &nonce, &refs),
        Err(AppraisalError::VersionTooOld { .. })
    ));
    // A device that is not secured is refused by the default policy.
    let e = appraise(&t, &key, &nonce, &reference()).unwrap_err();
    assert_eq!(e, AppraisalError::LifecycleNotAllowed { found: 0x1000 });
}

#[test]
fn bad_nonces_and_small_buffers_are_refused_with_psa_codes() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let mut buf = [0u8; 1024];
    for len in [0usize, 16, 31, 33, 65] {
        let nonce = vec![1u8; len];
        assert_eq!(
            status_of(&svc.attest_token(&nonce, -1, &mut buf)),
            psa::ERROR_INVALID_ARGUMENT,
            "{len}"
        );
    }
    assert_eq!(
        status_of(&svc.attest_token_size(65)),
        psa::ERROR_INVALID_ARGUMENT
    );
    let need = svc.attest_token_size(32).unwrap();
    let e = svc
        .attest_token(&[1u8; 32], -1, &mut buf[..need - 1])
        .unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_BUFFER_TOO_SMALL);
    assert!(matches!(e, ServiceError::Token(_)));
}

#[test]
fn attestation_key_is_bound_to_the_device_and_authority_and_survives_updates() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    svc.its_set(1, b"sealed before the update", ItsFlags::NONE)
        .unwrap();
    let (key1, id1) = (svc.attestation_public_key(), svc.instance_id());
    drop(svc);
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    assert_eq!(
        (svc.attestation_public_key(), svc.instance_id()),
        (key1, id1),
        "same chain, same key"
    );
    let seed1 = decode_token(&token(&mut svc, &[0u8; 32]))
        .unwrap()
        .claims
        .boot_seed;
    drop(svc);
    dev.power_cycle();
    // Same chain again: same key, but a fresh boot seed.
    let mut svc = boot(&mut dev);
    let seed2 = decode_token(&token(&mut svc, &[0u8; 32]))
        .unwrap()
        .claims
        .boot_seed;
    assert_ne!(seed1, seed2);
    drop(svc);
    dev.power_cycle();
    // An updated bootloader from the same authority: CDI_Attest changes, CDI_Seal does not, so
    // the IAK the registry recorded still verifies (the token reports what runs).
    let mut svc = boot_with(&mut dev, &[0xB2; 32]);
    assert_eq!(svc.attestation_public_key(), key1, "key survives an update");
    let t = token(&mut svc, &[0u8; 32]);
    let old_key = VerificationKey::p256_from_sec1(&key1).unwrap();
    verify_token(&t, &old_key).unwrap();
    // Sealed storage is bound to CDI_Seal (same signing authority): it still opens.
    let mut out = [0u8; 64];
    let n = svc.its_get(1, 0, &mut out).unwrap();
    assert_eq!(&out[..n], b"sealed before the update");
    drop(svc);
    dev.power_cycle();
    // A boot chain signed by another authority: another key; its tokens fail the old key.
    let mut svc = boot_signed_by(&mut dev, &[0xB2; 32], &[0x52; 32]);
    assert_ne!(svc.attestation_public_key(), key1);
    let t = token(&mut svc, &[0u8; 32]);
    assert_eq!(
        verify_token(&t, &old_key).unwrap_err(),
        AppraisalError::BadSignature
    );
}

/// pycose (the peer) verifies a token made by the device's secure partition. Requires python3
/// with pycose and cbor2; without them the test FAILS and says how to install them.
#[test]
fn device_token_is_verified_by_pycose() {
    use std::process::Command;
    castellan_testkit::peers::pycose::require();
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let nonce = [0x3Cu8; 64];
    let t = token(&mut svc, &nonce);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("services-token.cbor");
    std::fs::write(&path, &t).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pycose_verify.py");
    let public = hex(&svc.attestation_public_key());
    let out = Command::new("python3")
        .args([script, path.to_str().unwrap(), &public])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pycose refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("nonce={}", hex(&nonce))),
        "{stdout}"
    );
    assert!(stdout.contains("lifecycle=0x1000"), "{stdout}");
    assert!(
        stdout.contains(&format!("instance_id={}", hex(&svc.instance_id()))),
        "{stdout}"
    );
    // The same tool refuses a token signed by another key.
    let mut other = seeded_device(4, 0xFF, 99);
    let other_key = hex(&boot(&mut other).attestation_public_key());
    let out = Command::new("python3")
        .args([script, path.to_str().unwrap(), &other_key])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "pycose accepted a token under the wrong key"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
