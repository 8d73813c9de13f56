//! Releases: the trust anchor, an accepted upload, and every refusal of the update contract
//! (each a 422 with the reason, and an audit entry with the same reason), on SQLite and
//! PostgreSQL.

mod common;

use castellan_server::protocol::{CampaignRequest, FactoryResponse, ReleaseJson};
use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{Decision, DeviceUpdateState, NewCampaign};
use common::update::*;
use common::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Upload `body` as the release manager; it must be refused with 422 naming `needle`, and the
/// audit log must hold the refusal with that reason.
async fn refused(f: &Fleet, body: &serde_json::Value, needle: &str) {
    let resp = upload_unprocessable(f, body).await;
    let reason = resp["reason"].as_str().unwrap();
    assert!(reason.contains(needle), "{reason}");
    assert!(
        audit_has_refusal(&f.server, "api.release.create", needle).await,
        "no audit entry for {needle:?}"
    );
}

/// Upload `body` as the release manager; the release checks must refuse it with 422 and the
/// stable `code`, which the audit entry carries in front of the reason.
async fn rejected(f: &Fleet, body: &serde_json::Value, code: &str) {
    let resp = upload_unprocessable(f, body).await;
    assert_eq!(resp["code"], code, "{resp}");
    let reason = resp["reason"].as_str().unwrap();
    assert!(
        audit_has_coded_refusal(&f.server, "api.release.create", code, reason).await,
        "no audit entry for {code}"
    );
}

/// Upload `body` as the release manager; it must be answered 422; returns the answer.
async fn upload_unprocessable(f: &Fleet, body: &serde_json::Value) -> serde_json::Value {
    let (status, resp) = f
        .api
        .call("POST", "/api/v1/releases", Some(&f.rm), Some(body))
        .await;
    assert_eq!(status, 422, "{resp}");
    assert_eq!(resp["error"], "unprocessable");
    resp
}

async fn releases(f: &Fleet) -> Vec<ReleaseJson> {
    let (status, body) = f
        .api
        .call("GET", "/api/v1/releases", Some(&f.admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn release_upload_accepted_readable_and_trust_anchor_given_to_the_factory() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        // The factory hands the trust anchor to every new device.
        let mut dev = TestDevice::new("REL-1", 1, f.tmp.path());
        dev.app_signer = f.kit.signer_id();
        let resp: FactoryResponse = register(&f.api, &f.admin, &mut dev).await;
        assert_eq!(
            resp.release_public_key.as_deref(),
            Some(f.kit.release_public_key_hex().as_str())
        );
        // It is set once.
        let (status, body) = f
            .api
            .call(
                "PUT",
                "/api/v1/release-key",
                Some(&f.admin),
                Some(&json!({"public_key": ReleaseKit::new().release_public_key_hex()})),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(audit_has_refusal(&f.server, "api.release_key.set", "already set").await);

        let ((status, body), image) = f.upload(2, v(2, 0, 0), 1).await;
        assert_eq!(status, 201, "{body}");
        let r: ReleaseJson = serde_json::from_value(body).unwrap();
        let (digest, signer, version) = measurement_of(&image);
        assert_eq!(r.release_id, "sensor-v1-2");
        assert_eq!((r.sequence, r.security_counter), (2, 1));
        assert_eq!(r.image_size, image.len() as u64);
        assert_eq!(r.image_sha256, hex::encode(Sha256::digest(&image)));
        assert_eq!(r.signer_id, hex::encode(signer));
        assert_eq!(r.measurement.mtype, "APP");
        assert_eq!(r.measurement.digest, hex::encode(digest));
        assert_eq!(r.measurement.version, version.to_string());
        assert_eq!(r.created_by, "rm");
        // Readable by every device reader; the image by the release manager.
        assert_eq!(releases(&f).await, vec![r.clone()]);
        let (status, one) = f
            .api
            .call("GET", "/api/v1/releases/sensor-v1-2", Some(&f.rm), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_value::<ReleaseJson>(one).unwrap(), r);
        let auth = format!("Bearer {}", f.rm);
        let (status, _, bytes) = f
            .api
            .get_raw(
                "/api/v1/releases/sensor-v1-2/image",
                &[("authorization", auth.as_str())],
            )
            .await;
        assert_eq!((status, bytes), (200, image));
        let log = audit(&f.server).await;
        assert!(log.iter().any(|e| e.action == "api.release.create"
            && e.decision == Decision::Allowed
            && e.reason.contains("sensor-v1-2")));
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_signed_by_another_key() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        let image = f.kit.image(v(2, 0, 0), 1, b"evil");
        let thief = ReleaseKit::new();
        let manifest = thief.manifest(CLASS, 2, &image);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &image, &manifest),
            "release.not_authenticated",
        )
        .await;
        assert!(releases(&f).await.is_empty());
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_for_another_class_or_vendor() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        let image = f.kit.image(v(2, 0, 0), 1, b"app");
        // A manifest for gateways uploaded as a sensor release: devices of the class would
        // refuse it, and it must not get a sensor release id.
        let other_class = f.kit.manifest("gateway-v1", 2, &image);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &image, &other_class),
            "release.wrong_class",
        )
        .await;
        let other_vendor = manifest_with(&f.kit.release_key, "acme", CLASS, 2, &image);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &image, &other_vendor),
            "release.wrong_vendor",
        )
        .await;
        assert!(releases(&f).await.is_empty());
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_digest_or_size_mismatch() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        let image = f.kit.image(v(2, 0, 0), 1, b"app");
        let mut other = image.clone();
        other[100] ^= 0xff;
        // A signed manifest for one image, uploaded with another of the same size.
        let manifest = f.kit.manifest(CLASS, 2, &image);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &other, &manifest),
            "release.digest_mismatch",
        )
        .await;
        let key = &f.kit.release_key;
        let digest: [u8; 32] = Sha256::digest(&image).into();
        let n = image.len() as u64;
        for size in [n - 1, n + 1] {
            let m = manifest_for(key, "castellan", CLASS, 2, digest, size);
            // The reason the release manager reads names the size.
            refused(
                &f,
                &release_body(CLASS, "2.0.0", &image, &m),
                &format!("image size {size}"),
            )
            .await;
        }
        assert!(releases(&f).await.is_empty());
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_sequence_not_newer() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        f.release(3, v(2, 0, 0), 1).await;
        for seq in [3, 2] {
            let image = f.kit.image(v(2, 1, 0), 1, b"replay");
            let manifest = f.kit.manifest(CLASS, seq, &image);
            refused(
                &f,
                &release_body(CLASS, "2.1.0", &image, &manifest),
                &format!("manifest sequence {seq} is not above the latest release"),
            )
            .await;
        }
        assert_eq!(releases(&f).await.len(), 1);
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_image_signed_by_another_image_key() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        // A well-formed image signed by a key the fleet's devices do not run: the release
        // manager's signature on the manifest must not launder it.
        let rogue = castellan_image::SigningKey::generate(castellan_image::KeyType::EcdsaP256);
        let image = sign_app(&rogue, v(2, 0, 0), 1, b"rogue");
        let manifest = f.kit.manifest(CLASS, 2, &image);
        refused(
            &f,
            &release_body(CLASS, "2.0.0", &image, &manifest),
            &format!(
                "run APP images signed by {}",
                hex::encode(f.kit.signer_id())
            ),
        )
        .await;
        // An image whose signature does not verify with its own key.
        let mut broken = f.kit.image(v(2, 0, 0), 1, b"app");
        let at = broken.len() - 10;
        broken[at] ^= 1;
        let manifest = f.kit.manifest(CLASS, 2, &broken);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &broken, &manifest),
            "release.image_unverified",
        )
        .await;
        assert!(releases(&f).await.is_empty());
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_security_counter_below_the_fleets() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        let (id, _) = f.release(2, v(2, 0, 0), 5).await;
        // Not confirmed anywhere yet: a lower counter is still acceptable.
        let store = f.server.store();
        // REL-1 confirmed release 2 (counter 5): its hardware counter is 5 now.
        let c = NewCampaign {
            id: "cmp-test".into(),
            release_id: id,
            device_class: CLASS.into(),
            spec: "{}".into(),
            rollback_of: None,
            created_by: "rm".into(),
        };
        store
            .create_campaign(&c, &[("REL-1".into(), 0)], 1)
            .await
            .unwrap();
        store
            .finish_campaign_device("cmp-test", "REL-1", DeviceUpdateState::Updated, None, 2)
            .await
            .unwrap();
        let image = f.kit.image(v(3, 0, 0), 4, b"older counter");
        let manifest = f.kit.manifest(CLASS, 3, &image);
        refused(
            &f,
            &release_body(CLASS, "3.0.0", &image, &manifest),
            "security counter 4 is below 5",
        )
        .await;
        // Equal is fine.
        f.release(3, v(3, 0, 0), 5).await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_update_started_by_operator_without_release_manager_role() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.enroll("REL-1", 1).await;
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/operators",
                Some(&f.admin),
                Some(&json!({"name": "ops", "role": "operator"})),
            )
            .await;
        assert_eq!(status, 201);
        let operator = body["token"].as_str().unwrap().to_string();
        let image = f.kit.image(v(2, 0, 0), 1, b"app");
        let manifest = f.kit.manifest(CLASS, 2, &image);
        let release = release_body(CLASS, "2.0.0", &image, &manifest);
        // Neither an operator nor an admin may publish firmware (separation of duties).
        for (who, token) in [("ops", &operator), ("admin", &f.admin)] {
            let (status, resp) = f
                .api
                .call("POST", "/api/v1/releases", Some(token), Some(&release))
                .await;
            assert_eq!(status, 403, "{who}: {resp}");
            assert!(resp["reason"].as_str().unwrap().contains("may not POST"));
        }
        assert!(releases(&f).await.is_empty());
        // The release manager may; then nobody else may start a campaign with it.
        let (status, body) = f
            .api
            .call("POST", "/api/v1/releases", Some(&f.rm), Some(&release))
            .await;
        assert_eq!(status, 201, "{body}");
        let req = serde_json::to_value(CampaignRequest::new("sensor-v1-2", CLASS)).unwrap();
        for (who, token) in [("ops", &operator), ("admin", &f.admin)] {
            let (status, resp) = f
                .api
                .call("POST", "/api/v1/campaigns", Some(token), Some(&req))
                .await;
            assert_eq!(status, 403, "{who}: {resp}");
        }
        let (status, list) = f
            .api
            .call("GET", "/api/v1/campaigns", Some(&operator), None)
            .await;
        assert_eq!((status, list), (200, json!([])));
        let log = audit(&f.server).await;
        for (action, actor) in [
            ("api.release.create", "ops"),
            ("api.release.create", "admin"),
            ("api.campaign.create", "ops"),
            ("api.campaign.create", "admin"),
        ] {
            assert!(
                log.iter().any(|e| e.action == action
                    && e.actor == actor
                    && e.decision == Decision::Refused
                    && e.reason.contains("release-manager")),
                "no refusal of {action} by {actor} in the audit log"
            );
        }
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_release_expired() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        f.register("REL-1", 1).await;
        // A validly signed release whose manifest expired (withheld, then replayed: a freeze).
        let image = f.kit.image(v(2, 0, 0), 1, b"stale");
        let now = castellan_store::unix_now() as u64;
        let manifest = manifest_expiring(&f.kit.release_key, 2, &image, now - 60);
        rejected(
            &f,
            &release_body(CLASS, "2.0.0", &image, &manifest),
            "release.expired",
        )
        .await;
        // One that expires later is accepted and says when.
        let manifest = manifest_expiring(&f.kit.release_key, 2, &image, now + 3600);
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/releases",
                Some(&f.rm),
                Some(&release_body(CLASS, "2.0.0", &image, &manifest)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["expires_at"], json!(now + 3600));
        f.server.shutdown().await;
    })
    .await;
}
