//! Rotation of the operational CA without re-provisioning a device, on SQLite and PostgreSQL:
//! the offline root signs a new operational CA, the service is handed it and restarted;
//! LDevIDs of the old CA keep working until their devices renew, new LDevIDs come from the new
//! CA, and once the old CA is retired its LDevIDs are refused (a device that missed the window
//! onboards again with its IDevID).

mod common;

use castellan_pki::{CaKind, ParsedCertificate, ceremony, parse_certificate_pem, verify_signed_by};
use castellan_server::ServerHandle;
use castellan_store::testing::{TestStore, each_backend};
use common::*;

/// Whether `dev` publishes its status with its LDevID.
async fn publishes(server: &ServerHandle, dev: &TestDevice) -> (bool, String) {
    peers::mosquitto_pub(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
        &dev.serial,
        &format!("dev/{}/status", dev.serial),
        r#"{"online":true}"#,
    )
    .await
}

/// Whether `dev`'s LDevID was signed by `ca`.
fn ldevid_issued_by(dev: &TestDevice, ca: &ParsedCertificate) -> bool {
    let pem = std::fs::read_to_string(dev.cert("ldevid")).unwrap();
    verify_signed_by(&parse_certificate_pem(&pem).unwrap(), ca).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operational_ca_rotation_keeps_old_ldevids_until_retired() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let state = state_dir(&tmp);
        let server = start_server(t, &state).await;
        let offline = castellan_testkit::fleet::hand_over_pki(&state);
        let admin = server.admin_token().unwrap().to_string();
        let api = Api::new(&server);
        let mut renewing = enrolled(&server, &api, &admin, "CSTL-0801", 81, tmp.path()).await;
        let mut lagging = enrolled(&server, &api, &admin, "CSTL-0802", 82, tmp.path()).await;
        let old_ca = server.pki().ca_certificate(CaKind::Operational).clone();
        server.shutdown().await;

        // Offline: the root signs a new operational CA; the service is handed it.
        let (old_serial, new_serial) = ceremony::rotate_operational(&offline).unwrap();
        assert_ne!(old_serial, new_serial);
        ceremony::hand_over(&offline, &state.join("pki"), true).unwrap();
        let server = start_server(t, &state).await;
        let new_ca = server.pki().ca_certificate(CaKind::Operational).clone();
        assert_eq!(hex::encode(&new_ca.serial), new_serial);
        assert!(!server.pki().holds_key(CaKind::Root));

        // The old LDevIDs keep working.
        for dev in [&renewing, &lagging] {
            let (ok, out) = publishes(&server, dev).await;
            assert!(ok, "{} lost access at the rotation: {out}", dev.serial);
        }
        // New LDevIDs come from the new CA: a new device, and a device that renews.
        let api = Api::new(&server);
        let fresh = enrolled(&server, &api, &admin, "CSTL-0803", 83, tmp.path()).await;
        let renewed = onboard(&server, &mut renewing, EvidenceKind::Honest).await;
        assert!(renewed.accepted, "{:?}", renewed.reason);
        for dev in [&fresh, &renewing] {
            assert!(
                ldevid_issued_by(dev, &new_ca),
                "{} not from the new CA",
                dev.serial
            );
            assert!(!ldevid_issued_by(dev, &old_ca));
            let (ok, out) = publishes(&server, dev).await;
            assert!(ok, "{}: {out}", dev.serial);
        }
        server.shutdown().await;

        // Offline: the old CA is retired and listed in the root's CRL; handed over again.
        let crl = ceremony::retire(&offline, &old_serial).unwrap();
        let (ok, text) = castellan_testkit::peers::openssl::run_in(
            tmp.path(),
            &["crl", "-noout", "-text", "-in", &peers::p(&crl)],
        );
        assert!(ok, "{text}");
        assert!(
            text.to_ascii_lowercase().contains(&old_serial),
            "the root CRL does not list the retired CA {old_serial}: {text}"
        );
        ceremony::hand_over(&offline, &state.join("pki"), true).unwrap();
        let server = start_server(t, &state).await;
        assert!(server.pki().previous_operational_cas().is_empty());

        // The lagging device's old LDevID is refused now; it onboards again with its IDevID
        // (no re-provisioning) and gets an LDevID from the new CA.
        let (ok, out) = publishes(&server, &lagging).await;
        assert!(!ok, "an LDevID of the retired CA was accepted: {out}");
        let renewed = onboard(&server, &mut lagging, EvidenceKind::Honest).await;
        assert!(renewed.accepted, "{:?}", renewed.reason);
        assert!(ldevid_issued_by(&lagging, &new_ca));
        let (ok, out) = publishes(&server, &lagging).await;
        assert!(ok, "{out}");
        server.shutdown().await;
    })
    .await;
}
