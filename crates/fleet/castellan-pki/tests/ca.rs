//! CA lifecycle (first run, reload, repair, refusal to silently replace a CA), issuance rules,
//! client identification and the attacks a CA must resist.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use castellan_pki::{
    CaKind, CaSigner, ClientRole, FileKey, KeyBackend, LdevidKey, Pki, PkiError, RevocationReason,
    RevocationSet, RevokedCert, build_csr, parse_certificate, verify_csr,
};
use common::{SimDevice, now};

#[test]
fn init_creates_three_cas_with_private_key_files_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    for kind in ["root", "manufacturer", "operational"] {
        let key = dir.path().join(format!("{kind}-ca.key.pem"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{kind} key file mode");
        assert!(dir.path().join(format!("{kind}-ca.pem")).exists());
    }
    let root = pki.ca_certificate(CaKind::Root);
    assert!(root.is_ca);
    assert_eq!(root.issuer_der, root.subject_der, "root is self-signed");
    castellan_pki::verify_signed_by(root, root).unwrap();
    for kind in [CaKind::Manufacturer, CaKind::Operational] {
        let ca = pki.ca_certificate(kind);
        assert!(ca.is_ca);
        castellan_pki::verify_signed_by(ca, root).unwrap();
    }
}

#[test]
fn init_is_idempotent_and_loaded_cas_keep_issuing_valid_chains() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let root_before = first.root_pem();
    let op_before = first.ca_pem(CaKind::Operational);
    drop(first);
    let second = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    assert_eq!(second.root_pem(), root_before);
    assert_eq!(second.ca_pem(CaKind::Operational), op_before);
    // Certificates issued after a reload chain to the same CA certificate.
    let cert = second
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-1",
        )
        .unwrap();
    let parsed = parse_certificate(&cert.der).unwrap();
    castellan_pki::verify_signed_by(&parsed, second.ca_certificate(CaKind::Operational)).unwrap();
    assert!(second.identify_client(&cert.der, now()).is_ok());
}

#[test]
fn crash_between_key_and_certificate_is_repaired_on_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let root = pki.root_pem();
    drop(pki);
    // As if the process died after writing the operational key but before its certificate.
    std::fs::remove_file(dir.path().join("operational-ca.pem")).unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    assert_eq!(pki.root_pem(), root);
    let op = pki.ca_certificate(CaKind::Operational);
    castellan_pki::verify_signed_by(op, pki.ca_certificate(CaKind::Root)).unwrap();
}

#[test]
fn missing_ca_key_is_an_error_not_a_silent_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    drop(Pki::init(dir.path(), KeyBackend::Files).unwrap());
    std::fs::remove_file(dir.path().join("manufacturer-ca.key.pem")).unwrap();
    let err = Pki::init(dir.path(), KeyBackend::Files).unwrap_err();
    assert_bad_ca_certificate(&err, CaKind::Manufacturer);
}

#[test]
fn attack_swapped_ca_key_file_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    drop(Pki::init(dir.path(), KeyBackend::Files).unwrap());
    let key_path = dir.path().join("operational-ca.key.pem");
    std::fs::remove_file(&key_path).unwrap();
    FileKey::generate().save(&key_path).unwrap();
    let err = Pki::init(dir.path(), KeyBackend::Files).unwrap_err();
    assert_eq!(
        err,
        PkiError::KeyMismatch {
            ca: CaKind::Operational
        }
    );
    assert!(err.to_string().contains("operational CA"));
}

#[test]
fn attack_intermediate_not_signed_by_root_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    drop(Pki::init(a.path(), KeyBackend::Files).unwrap());
    drop(Pki::init(b.path(), KeyBackend::Files).unwrap());
    // Replace A's manufacturer CA (certificate and key) with B's: same names, other root.
    for f in ["manufacturer-ca.pem", "manufacturer-ca.key.pem"] {
        std::fs::remove_file(a.path().join(f)).unwrap();
        std::fs::copy(b.path().join(f), a.path().join(f)).unwrap();
    }
    let err = Pki::init(a.path(), KeyBackend::Files).unwrap_err();
    assert_bad_ca_certificate(&err, CaKind::Manufacturer);
}

#[test]
fn attack_csr_with_forged_self_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let mut csr = SimDevice::new().csr("dev");
    // The signature is the last element: flip a bit in its last byte (inside the BIT STRING).
    let last = csr.len() - 1;
    csr[last] ^= 0x01;
    let err = pki.issue_idevid(&csr, "SN-1", "sensor").unwrap_err();
    assert!(
        matches!(
            err,
            PkiError::CsrSignatureInvalid | PkiError::Malformed { .. }
        ),
        "{err}"
    );
}

#[test]
fn attack_csr_for_someone_elses_public_key_is_refused() {
    // A CSR carrying the victim's public key but signed by the attacker's key.
    let victim = SimDevice::new();
    let attacker = FileKey::generate();
    let err = build_csr(&victim.public_key(), "x", None, |m: &[u8]| attacker.sign(m)).unwrap_err();
    assert_eq!(err, PkiError::SignerProducedBadSignature);

    // Splice the victim's key into an attacker-signed CSR by hand: the CA refuses it.
    let attacker_pk = CaSigner::public_key(&attacker);
    let mut csr = build_csr(&attacker_pk, "x", None, |m: &[u8]| attacker.sign(m)).unwrap();
    let pos = csr.windows(65).position(|w| w == attacker_pk).unwrap();
    csr[pos..pos + 65].copy_from_slice(&victim.public_key());
    let err = verify_csr(&csr).unwrap_err();
    assert_eq!(err, PkiError::CsrSignatureInvalid);
}

#[test]
fn device_signer_failure_is_reported_with_its_reason() {
    let pk = SimDevice::new().public_key();
    let err = build_csr(&pk, "x", None, |_m: &[u8]| {
        Err::<[u8; 64], _>("secure service busy")
    })
    .unwrap_err();
    assert_eq!(
        err,
        PkiError::SignerFailed {
            detail: "secure service busy".into()
        }
    );
}

#[test]
fn csr_with_serial_carries_it_and_verifies() {
    let dev = SimDevice::new();
    let key = FileKey::generate();
    let pk = CaSigner::public_key(&key);
    let csr = build_csr(&pk, "cn-1", Some("SN-77"), |m: &[u8]| key.sign(m)).unwrap();
    let info = verify_csr(&csr).unwrap();
    assert_eq!(info.public_key, pk);
    assert_eq!(info.requested_common_name.as_deref(), Some("cn-1"));
    assert_eq!(info.requested_serial_number.as_deref(), Some("SN-77"));
    assert_ne!(info.public_key, dev.public_key());
}

#[test]
fn attack_names_that_would_escape_mqtt_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let pk = SimDevice::new().public_key();
    for bad in [
        "dev/other",
        "dev+",
        "dev#",
        "",
        "-x",
        "a\0b",
        "dev 1",
        &"x".repeat(65),
        "dév",
    ] {
        let err = pki
            .issue_ldevid(LdevidKey::PublicKey(&pk), bad)
            .unwrap_err();
        assert!(
            matches!(
                err,
                PkiError::InvalidName {
                    what: "device id",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
    let csr = SimDevice::new().csr("x");
    for bad in ["SN_1", "SN/1", "SN 1", ""] {
        let err = pki.issue_idevid(&csr, bad, "sensor").unwrap_err();
        assert!(
            matches!(
                err,
                PkiError::InvalidName {
                    what: "device serial",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
    assert!(pki.issue_server_cert(&["bad_host!"]).is_err());
    assert!(pki.issue_server_cert(&[]).is_err());
}

#[test]
fn identify_client_tells_factory_device_and_operator_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let dev = SimDevice::new();
    let idevid = pki
        .issue_idevid(&dev.csr("x"), "SN-9", "sensor-v2")
        .unwrap();
    let ldevid = pki
        .issue_ldevid(LdevidKey::PublicKey(&dev.public_key()), "dev-9")
        .unwrap();
    let op = pki.issue_operator_client_cert("bob").unwrap();
    let t = now();
    let id = pki.identify_client(&idevid.der, t).unwrap();
    assert_eq!(
        id.role,
        ClientRole::Factory {
            serial: "SN-9".into(),
            device_class: Some("sensor-v2".into())
        }
    );
    assert_eq!(id.certificate.serial, idevid.serial);
    assert_eq!(id.certificate.public_key_p256, Some(dev.public_key()));
    assert_eq!(
        pki.identify_client(&ldevid.der, t).unwrap().role,
        ClientRole::Device {
            device_id: "dev-9".into()
        }
    );
    assert_eq!(
        pki.identify_client(&op.certificate.der, t).unwrap().role,
        ClientRole::Operator { name: "bob".into() }
    );
    // The service's server certificate is not a client certificate.
    let server = pki.issue_server_cert(&["localhost"]).unwrap();
    assert!(matches!(
        pki.identify_client(&server.certificate.der, t),
        Err(PkiError::WrongKeyUsage { .. })
    ));
    // CA certificates are not clients either.
    let root_der = pki.ca_certificate(CaKind::Operational).der.clone();
    assert!(pki.identify_client(&root_der, t).is_err());
}

#[test]
fn expired_ldevid_is_refused_but_idevid_never_expires() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let dev = SimDevice::new();
    let ldevid = pki
        .issue_ldevid(LdevidKey::PublicKey(&dev.public_key()), "dev-1")
        .unwrap();
    let idevid = pki.issue_idevid(&dev.csr("x"), "SN-1", "sensor").unwrap();
    let in_two_years = now() + 2 * 365 * 86400;
    assert!(matches!(
        pki.identify_client(&ldevid.der, in_two_years),
        Err(PkiError::NotValidNow { .. })
    ));
    assert!(matches!(
        pki.identify_client(&ldevid.der, now() - 86400),
        Err(PkiError::NotValidNow { .. })
    ));
    assert!(pki.identify_client(&idevid.der, in_two_years).is_ok());
}

#[test]
fn attack_certificate_from_lookalike_ca_with_same_names_is_refused() {
    // Another installation uses exactly the same CA names: only the signature tells them apart.
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let pki = Pki::init(ours.path(), KeyBackend::Files).unwrap();
    let evil = Pki::init(theirs.path(), KeyBackend::Files).unwrap();
    assert_eq!(
        pki.ca_certificate(CaKind::Operational).subject_der,
        evil.ca_certificate(CaKind::Operational).subject_der
    );
    let forged = evil
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-1",
        )
        .unwrap();
    assert_eq!(
        pki.identify_client(&forged.der, now()).unwrap_err(),
        PkiError::SignatureInvalid
    );
}

#[test]
fn attack_tampered_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let cert = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-aaa",
        )
        .unwrap();
    // Rename the device in the signed part: dev-aaa -> dev-bbb.
    let mut der = cert.der.clone();
    let pos = der.windows(7).position(|w| w == b"dev-aaa").unwrap();
    der[pos..pos + 7].copy_from_slice(b"dev-bbb");
    assert_eq!(
        pki.identify_client(&der, now()).unwrap_err(),
        PkiError::SignatureInvalid
    );
}

#[test]
fn revocation_set_answers_at_connect_time() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let a = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-a",
        )
        .unwrap();
    let b = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-b",
        )
        .unwrap();
    let set = RevocationSet::new();
    let broker_view = set.clone();
    assert!(!broker_view.is_revoked(&a.serial));
    set.insert(
        RevokedCert::from_hex(&a.serial_hex(), RevocationReason::CessationOfOperation, 100)
            .unwrap(),
    );
    let id = pki.identify_client(&a.der, now()).unwrap();
    assert!(
        broker_view.is_revoked(&id.certificate.serial),
        "a clone shares the set"
    );
    assert!(!broker_view.is_revoked(&b.serial));
    // Leading zero bytes (DER's sign padding) do not hide a serial.
    let mut padded = vec![0u8];
    padded.extend_from_slice(&a.serial);
    assert!(broker_view.is_revoked(&padded));
    assert_eq!(
        broker_view.get(&a.serial).unwrap().reason,
        RevocationReason::CessationOfOperation
    );
    // A reload from the store replaces the set.
    set.replace_all([RevokedCert {
        serial: b.serial.clone(),
        reason: RevocationReason::KeyCompromise,
        revoked_at: 5,
    }]);
    assert!(!broker_view.is_revoked(&a.serial));
    assert!(broker_view.is_revoked(&b.serial));
    assert_eq!(broker_view.len(), 1);
    assert_eq!(RevocationReason::from_code(7), None);
    assert_eq!(
        RevocationReason::from_code(1),
        Some(RevocationReason::KeyCompromise)
    );
}

#[test]
fn serials_are_random_positive_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let pk = SimDevice::new().public_key();
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        let c = pki
            .issue_ldevid(LdevidKey::PublicKey(&pk), &format!("dev-{i}"))
            .unwrap();
        assert_eq!(c.serial.len(), 16);
        assert!(c.serial[0] & 0x80 == 0 && c.serial[0] != 0);
        assert!(seen.insert(c.serial));
    }
}

#[test]
fn key_file_round_trips_and_rejects_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let mut key = FileKey::generate();
    key.save(&path).unwrap();
    let loaded = FileKey::load(&path).unwrap();
    assert_eq!(CaSigner::public_key(&loaded), CaSigner::public_key(&key));
    assert!(
        key.save(&path).is_err(),
        "an existing key is never overwritten"
    );
    std::fs::write(
        dir.path().join("bad.pem"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        FileKey::load(&dir.path().join("bad.pem")),
        Err(PkiError::KeyFile { .. })
    ));
    assert!(format!("{key:?}").contains("<secret>"));
}

/// `err` says the certificate of CA `ca` is bad.
#[track_caller]
fn assert_bad_ca_certificate(err: &PkiError, ca: CaKind) {
    assert!(
        matches!(err, PkiError::BadCaCertificate { ca: c, .. } if *c == ca),
        "{err}"
    );
}
