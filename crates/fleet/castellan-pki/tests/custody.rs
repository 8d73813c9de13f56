//! Custody of the CA keys: the hierarchy made offline, the service handed only what it uses
//! online, the root's key never in the service's reach, rotation and retirement.

mod common;

use castellan_pki::{CaKind, KeyBackend, LdevidKey, Pki, PkiError, ceremony};
use common::{SimDevice, now};

fn offline_and_service() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let offline = tmp.path().join("offline");
    let service = tmp.path().join("service/pki");
    Pki::init(&offline, KeyBackend::Files).unwrap();
    (tmp, offline, service)
}

fn csr() -> Vec<u8> {
    SimDevice::new().csr("CSTL-1")
}

#[test]
fn handover_gives_the_service_only_what_it_uses_online() {
    let (_tmp, offline, service) = offline_and_service();
    let report = ceremony::hand_over(&offline, &service, false).unwrap();
    assert!(!report.written.is_empty());
    assert!(!service.join("root-ca.key.pem").exists());
    assert!(!service.join("service-ca.key.pem").exists());
    assert!(!service.join("manufacturer-ca.key.pem").exists());
    assert!(service.join("operational-ca.key.pem").exists());

    let pki = Pki::open_online(&service, KeyBackend::Files).unwrap();
    assert!(pki.holds_key(CaKind::Operational));
    for kind in [CaKind::Root, CaKind::Manufacturer, CaKind::Service] {
        assert!(!pki.holds_key(kind), "{kind} key held online");
    }
    // What needs an offline key says so; the operational CA still issues LDevIDs.
    assert_eq!(
        pki.issue_idevid(&csr(), "CSTL-1", "sensor").unwrap_err(),
        PkiError::CaKeyOffline {
            ca: CaKind::Manufacturer
        }
    );
    assert_eq!(
        pki.issue_service_client_cert("ops").unwrap_err(),
        PkiError::CaKeyOffline {
            ca: CaKind::Service
        }
    );
    pki.issue_ldevid(LdevidKey::Csr(&csr()), "CSTL-1").unwrap();
    // The broker's client bundle: the issuing CAs, never the root.
    assert!(!pki.client_ca_bundle_pem().contains(pki.root_pem().trim()));

    // With --manufacturer-key the service runs the factory; without it again, the key goes.
    ceremony::hand_over(&offline, &service, true).unwrap();
    let pki = Pki::open_online(&service, KeyBackend::Files).unwrap();
    pki.issue_idevid(&csr(), "CSTL-1", "sensor").unwrap();
    let report = ceremony::hand_over(&offline, &service, false).unwrap();
    assert!(
        report
            .removed
            .contains(&service.join("manufacturer-ca.key.pem"))
    );
}

#[test]
fn attack_root_key_beside_the_online_pki_refused() {
    let (_tmp, offline, service) = offline_and_service();
    ceremony::hand_over(&offline, &service, false).unwrap();
    std::fs::copy(
        offline.join("root-ca.key.pem"),
        service.join("root-ca.key.pem"),
    )
    .unwrap();
    match Pki::open_online(&service, KeyBackend::Files) {
        Err(PkiError::RootKeyInReach { location }) => {
            assert!(location.contains("root-ca.key.pem"), "{location}")
        }
        other => panic!("opened with the root key in reach: {other:?}"),
    }
    // Nor is a hand-over made into a directory holding a root key (an embedded demo PKI).
    assert!(matches!(
        ceremony::hand_over(&offline, &service, false),
        Err(PkiError::RootKeyInReach { .. })
    ));
}

#[test]
fn rotation_keeps_the_old_operational_ca_trusted_until_retired() {
    let (_tmp, offline, service) = offline_and_service();
    ceremony::hand_over(&offline, &service, false).unwrap();
    let before = Pki::open_online(&service, KeyBackend::Files).unwrap();
    let old_ldevid = before
        .issue_ldevid(LdevidKey::Csr(&csr()), "CSTL-1")
        .unwrap();

    let (old, new) = ceremony::rotate_operational(&offline).unwrap();
    ceremony::hand_over(&offline, &service, false).unwrap();
    let after = Pki::open_online(&service, KeyBackend::Files).unwrap();
    assert_eq!(
        hex::encode(&after.ca_certificate(CaKind::Operational).serial),
        new
    );
    let now = now();
    let id = after.identify_client(&old_ldevid.der, now).unwrap();
    assert_eq!(id.issuer, CaKind::Operational);
    let new_ldevid = after
        .issue_ldevid(LdevidKey::Csr(&csr()), "CSTL-2")
        .unwrap();
    after.identify_client(&new_ldevid.der, now).unwrap();
    assert!(
        after
            .client_ca_bundle_pem()
            .matches("BEGIN CERTIFICATE")
            .count()
            == 4
    );

    ceremony::retire(&offline, &old).unwrap();
    ceremony::hand_over(&offline, &service, false).unwrap();
    let retired = Pki::open_online(&service, KeyBackend::Files).unwrap();
    assert!(retired.previous_operational_cas().is_empty());
    assert!(retired.identify_client(&old_ldevid.der, now).is_err());
    retired.identify_client(&new_ldevid.der, now).unwrap();
    assert!(service.join(ceremony::ROOT_CRL_FILE).exists());
}
