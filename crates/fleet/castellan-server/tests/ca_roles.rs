//! Each client role is tied to the CA that may issue it, against the running service with a
//! real MQTT peer (mosquitto_pub), on SQLite and PostgreSQL: a service identity from the
//! service CA gets in; the same subject minted by the manufacturer (factory) CA, signed by the
//! root, or issued by a look-alike "service CA" the factory key signed is refused.

mod common;

use std::path::{Path, PathBuf};

use castellan_pki::{CaKind, KeyBackend, Pki};
use castellan_store::testing::{TestStore, each_backend};
use common::*;

/// A copy of the offline hierarchy in which the "service CA" is really `impostor` (its
/// certificate and key): what someone holding that CA's key can mint.
fn minting_with(offline: &Path, impostor: CaKind, dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(offline).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let name = impostor.name();
    std::fs::copy(
        offline.join(format!("{name}-ca.pem")),
        dir.join("service-ca.pem"),
    )
    .unwrap();
    std::fs::copy(
        offline.join(format!("{name}-ca.key.pem")),
        dir.join("service-ca.key.pem"),
    )
    .unwrap();
    Pki::init(dir, KeyBackend::Files).unwrap()
}

/// A whole look-alike hierarchy under `impostor` (its certificate and key as the "root"): CAs
/// with the fleet's names, signed by that key.
fn hierarchy_under(offline: &Path, impostor: CaKind, dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let name = impostor.name();
    for (from, to) in [("pem", "root-ca.pem"), ("key.pem", "root-ca.key.pem")] {
        std::fs::copy(offline.join(format!("{name}-ca.{from}")), dir.join(to)).unwrap();
    }
    Pki::init(dir, KeyBackend::Files).unwrap()
}

/// Publish a command to a device as `svc:ops`: whether the broker let it through.
async fn command_as_service(
    server: &castellan_server::ServerHandle,
    (cert, key): &(PathBuf, PathBuf),
) -> (bool, String) {
    peers::mosquitto_pub(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        Some((cert, key)),
        "svc:ops",
        "dev/CSTL-0901/cmd/reboot",
        "{}",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_manufacturer_ca_certificate_with_service_subject_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        let offline = castellan_testkit::fleet::hand_over_pki(&state);

        // The genuine service identity, from the service CA (kept offline), gets in.
        let genuine = service_identity(
            &Pki::init(&offline, KeyBackend::Files).unwrap(),
            "ops",
            tmp.path(),
        );
        let (ok, out) = command_as_service(&server, &genuine).await;
        assert!(ok, "the service CA's service identity was refused: {out}");

        // The same subject minted with the manufacturer (factory) CA's key: refused.
        let factory = minting_with(&offline, CaKind::Manufacturer, &tmp.path().join("factory"));
        let forged = service_identity(&factory, "ops", &tmp.path().join("factory"));
        let (ok, out) = command_as_service(&server, &forged).await;
        assert!(
            !ok,
            "a manufacturer-CA certificate got the service role (fleet-wide commands): {out}"
        );
        server.flush_audit().await;
        assert!(
            audit_has_refusal(&server, "mqtt.connect", "manufacturer CA").await,
            "the refusal does not name the issuing CA: {:?}",
            audit(&server).await
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_root_signed_client_certificate_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        let offline = castellan_testkit::fleet::hand_over_pki(&state);
        // A client certificate signed by the root itself: the root is no client trust anchor.
        let root = minting_with(&offline, CaKind::Root, &tmp.path().join("root"));
        let forged = service_identity(&root, "ops", &tmp.path().join("root"));
        let (ok, out) = command_as_service(&server, &forged).await;
        assert!(!ok, "a root-signed client certificate was accepted: {out}");
        let client_ca = std::fs::read_to_string(&server.paths().client_ca).unwrap();
        assert!(
            !client_ca.contains(server.pki().root_pem().trim()),
            "the root is in the broker's client trust bundle"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_look_alike_service_ca_signed_by_the_factory_key_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        let offline = castellan_testkit::fleet::hand_over_pki(&state);
        // The factory's key signs a CA named like the service CA; the leaf comes with that CA
        // in its chain, which ends at the manufacturer CA the broker trusts.
        let fake = hierarchy_under(&offline, CaKind::Manufacturer, &tmp.path().join("fake"));
        assert_eq!(
            fake.ca_certificate(CaKind::Service).subject_der,
            server.pki().ca_certificate(CaKind::Service).subject_der
        );
        let forged = service_identity(&fake, "ops", &tmp.path().join("fake"));
        let (ok, out) = command_as_service(&server, &forged).await;
        assert!(
            !ok,
            "a look-alike service CA's identity was accepted: {out}"
        );
        assert!(
            audit_has_refusal(
                &server,
                "mqtt.connect",
                "does not verify with the issuing CA"
            )
            .await,
            "{:?}",
            audit(&server).await
        );
        server.shutdown().await;
    })
    .await;
}
