//! The device registry, telemetry, revocations and migrations, each test run on SQLite and on
//! PostgreSQL.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{
    AttestationStatus, NewDevice, ReferenceMeasurement, Revocation, SCHEMA_VERSION, Store,
    StoreError,
};

fn measurement(mtype: &str, digest: u8) -> ReferenceMeasurement {
    ReferenceMeasurement {
        mtype: mtype.into(),
        digest_hex: format!("{digest:02x}").repeat(32),
        signer_id: "ab".repeat(32),
        version: "1.2.3".into(),
    }
}

fn new_device(id: &str, serial: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        serial: serial.into(),
        device_class: "sensor-v1".into(),
        tags: vec!["site-b".into(), "site-a".into()],
        idevid_der: vec![0x30, 0x82, 0x00, 0xff, 0x00, 0x01, 0xfe],
        idevid_serial: "4a1b2c".into(),
        lifecycle: 0x3000,
        reference_measurements: vec![
            measurement("BL", 1),
            measurement("SPE", 2),
            measurement("NSPE", 3),
        ],
        firmware_version: Some("1.0.0".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_round_trips_with_tags_and_measurements() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let d = new_device("dev-1", "SN-1");
        s.register_device(&d, 1000).await.unwrap();
        let got = s.device("dev-1").await.unwrap().unwrap();
        assert_eq!(got.serial, "SN-1");
        assert_eq!(got.tags, vec!["site-a".to_string(), "site-b".to_string()]);
        assert_eq!(
            got.idevid_der, d.idevid_der,
            "binary DER survives byte for byte"
        );
        assert_eq!(
            got.reference_measurements, d.reference_measurements,
            "order kept"
        );
        assert_eq!(got.lifecycle, 0x3000);
        assert_eq!(got.attestation, AttestationStatus::Unknown);
        assert_eq!(got.created_at, 1000);
        assert!(!got.quarantined);
        assert_eq!(got.ldevid_serial, None);
        assert_eq!(got.ldevid_sha256, None);
        assert_eq!(s.device_by_serial("SN-1").await.unwrap(), Some(got.clone()));
        assert_eq!(s.device("nope").await.unwrap(), None);
        assert_eq!(s.list_devices().await.unwrap(), vec![got]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_id_or_serial_is_refused_and_leaves_nothing_behind() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.register_device(&new_device("dev-1", "SN-1"), 1)
            .await
            .unwrap();
        let err = s
            .register_device(&new_device("dev-1", "SN-2"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists { what: "device", .. }),
            "{err}"
        );
        let err = s
            .register_device(&new_device("dev-2", "SN-1"), 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(s.list_devices().await.unwrap().len(), 1);
        assert_eq!(s.device("dev-2").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_updates() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.register_device(&new_device("dev-1", "SN-1"), 1)
            .await
            .unwrap();
        s.record_onboarding("dev-1", "77aa", &"AB".repeat(32), 50)
            .await
            .unwrap();
        s.set_attestation(
            "dev-1",
            AttestationStatus::Failed,
            Some("measurement SPE differs"),
        )
        .await
        .unwrap();
        s.set_quarantined("dev-1", true).await.unwrap();
        s.touch_device("dev-1", 60).await.unwrap();
        s.set_firmware_version("dev-1", "1.1.0").await.unwrap();
        s.set_lifecycle("dev-1", 0x6000).await.unwrap();
        s.set_reference_measurements("dev-1", &[measurement("SPE", 9)])
            .await
            .unwrap();
        s.set_tags("dev-1", &["canary".into()]).await.unwrap();
        let d = s.device("dev-1").await.unwrap().unwrap();
        assert_eq!(d.ldevid_serial.as_deref(), Some("77aa"));
        // The certificate binding: the issued LDevID's SHA-256, in one spelling.
        assert_eq!(d.ldevid_sha256, Some("ab".repeat(32)));
        assert_eq!(d.onboarded_at, Some(50));
        assert_eq!(d.last_seen, Some(60));
        assert_eq!(d.attestation, AttestationStatus::Failed);
        assert_eq!(
            d.attestation_reason.as_deref(),
            Some("measurement SPE differs")
        );
        assert!(d.quarantined);
        assert_eq!(d.firmware_version.as_deref(), Some("1.1.0"));
        assert_eq!(d.lifecycle, 0x6000);
        assert_eq!(d.reference_measurements, vec![measurement("SPE", 9)]);
        assert_eq!(d.tags, vec!["canary".to_string()]);
        s.set_quarantined("dev-1", false).await.unwrap();
        assert!(
            !s.device("dev-1").await.unwrap().unwrap().quarantined,
            "quarantine is reversible"
        );
        for r in [
            s.set_quarantined("ghost", true).await,
            s.touch_device("ghost", 1).await,
            s.set_tags("ghost", &[]).await,
            s.set_reference_measurements("ghost", &[]).await,
            s.record_onboarding("ghost", "1", "00", 1).await,
        ] {
            assert!(
                matches!(r, Err(StoreError::NotFound { what: "device", .. })),
                "{r:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_sql_injection_in_device_id_is_stored_and_read_back_verbatim() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let evil = "dev'); DROP TABLE devices; --";
        let evil2 = "x' OR '1'='1";
        let mut d = new_device(evil, "SN-'1");
        d.tags = vec!["'; DELETE FROM device_tags; --".into()];
        d.firmware_version = Some("$1 $2 ? :a @b".into());
        s.register_device(&d, 1).await.unwrap();
        s.register_device(&new_device("dev-2", "SN-2"), 1)
            .await
            .unwrap();
        let got = s.device(evil).await.unwrap().unwrap();
        assert_eq!(got.id, evil);
        assert_eq!(got.serial, "SN-'1");
        assert_eq!(got.tags, d.tags);
        assert_eq!(got.firmware_version.as_deref(), Some("$1 $2 ? :a @b"));
        assert_eq!(
            s.device(evil2).await.unwrap(),
            None,
            "a tautology does not match"
        );
        assert_eq!(
            s.list_devices().await.unwrap().len(),
            2,
            "the table is still there"
        );
        s.record_telemetry(evil, 1, "{\"x\":\"'); DROP TABLE telemetry; --\"}")
            .await
            .unwrap();
        assert_eq!(
            s.latest_telemetry(evil, 1).await.unwrap()[0].device_id,
            evil
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_keeps_the_latest_n_per_device() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let keep = t.options.telemetry_keep as usize;
        for i in 0..(keep + 20) {
            s.record_telemetry("dev-a", i as i64, &format!("{{\"n\":{i}}}"))
                .await
                .unwrap();
        }
        s.record_telemetry("dev-b", 5, "{}").await.unwrap();
        let all = s.latest_telemetry("dev-a", 10_000).await.unwrap();
        assert_eq!(all.len(), keep);
        assert_eq!(
            all[0].payload,
            format!("{{\"n\":{}}}", keep + 19),
            "newest first"
        );
        assert_eq!(all[keep - 1].at, 20);
        assert_eq!(s.latest_telemetry("dev-a", 3).await.unwrap().len(), 3);
        assert_eq!(
            s.latest_telemetry("dev-b", 10).await.unwrap().len(),
            1,
            "other devices untouched"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_listed_and_checked() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let r = Revocation {
            serial: "00AB12".into(),
            issuer: "operational".into(),
            reason: 1,
            revoked_at: 100,
            device_id: Some("dev-1".into()),
        };
        assert!(s.revoke(&r).await.unwrap());
        assert!(
            !s.revoke(&Revocation {
                reason: 5,
                revoked_at: 200,
                ..r.clone()
            })
            .await
            .unwrap(),
            "first revocation stands"
        );
        assert!(s.is_revoked("ab12").await.unwrap());
        assert!(
            s.is_revoked("00ab12").await.unwrap(),
            "leading zeros and case do not matter"
        );
        assert!(!s.is_revoked("ab13").await.unwrap());
        let all = s.revocations().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].serial, "ab12");
        assert_eq!((all[0].reason, all[0].revoked_at), (1, 100));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_and_reopening_is_idempotent() {
    each_backend(async |t: &TestStore| {
        assert_eq!(t.store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let again = t.reopen().await;
        assert_eq!(again.schema_version().await.unwrap(), SCHEMA_VERSION);
        // Opening from several tasks at once (several service instances starting) is safe.
        let opens: Vec<_> = (0..3)
            .map(|_| {
                let (loc, opts) = (t.location.clone(), t.options.clone());
                tokio::spawn(async move { Store::open_with(&loc, opts).await })
            })
            .collect();
        for h in opens {
            let s = h.await.unwrap().unwrap();
            assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
        }
        // A database from a newer Castellan is refused.
        t.raw_execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
        )
        .await;
        let err = Store::open_with(&t.location, t.options.clone())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                known: SCHEMA_VERSION
            }
        );
    })
    .await;
}
