//! Schema 13 and the device page's reads: the last attestation's claims, the LDevID's DER, a
//! device's campaigns and its session re-checks, each test run on SQLite and on PostgreSQL.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{
    AttestationRecord, DeviceUpdateState, MAX_CLAIMS_JSON, NewCampaign, NewDevice, NewRelease,
    ReferenceMeasurement, StoreError,
};

fn measurement(mtype: &str) -> ReferenceMeasurement {
    ReferenceMeasurement {
        mtype: mtype.into(),
        digest_hex: "ab".repeat(32),
        signer_id: "51".repeat(32),
        version: "1.0.0".into(),
    }
}

fn device(id: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        serial: id.into(),
        device_class: "sensor-v1".into(),
        tags: vec![],
        idevid_der: vec![0x30, 0x00],
        idevid_serial: "4a1b".into(),
        lifecycle: 0x3000,
        reference_measurements: vec![measurement("BL")],
        firmware_version: Some("1.0.0".into()),
    }
}

fn record(id: &str, at: i64, passed: bool) -> AttestationRecord {
    AttestationRecord {
        device_id: id.into(),
        appraised_at: at,
        context: "onboarding".into(),
        claims_json: format!(r#"{{"nonce":"{at:02x}"}}"#),
        passed,
        reason: (!passed).then(|| "measurement mismatch".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_attestation_is_replaced_by_the_newer_one() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert_eq!(s.last_attestation("d1").await.unwrap(), None);
        s.record_attestation(&record("d1", 10, true)).await.unwrap();
        s.record_attestation(&record("d2", 11, true)).await.unwrap();
        let newer = record("d1", 20, false);
        s.record_attestation(&newer).await.unwrap();
        assert_eq!(s.last_attestation("d1").await.unwrap(), Some(newer));
        assert_eq!(
            s.last_attestation("d2")
                .await
                .unwrap()
                .map(|r| r.appraised_at),
            Some(11)
        );
        // A hostile token cannot grow the row without bound.
        let mut huge = record("d1", 30, true);
        huge.claims_json = "x".repeat(MAX_CLAIMS_JSON + 1);
        assert!(matches!(
            s.record_attestation(&huge).await,
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(
            s.last_attestation("d1")
                .await
                .unwrap()
                .map(|r| r.appraised_at),
            Some(20)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldevid_der_is_kept_per_device() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.register_device(&device("d1"), 1).await.unwrap();
        assert_eq!(s.ldevid_der("d1").await.unwrap(), None);
        s.set_ldevid_der("d1", &[0x30, 0x03, 1, 2, 3])
            .await
            .unwrap();
        assert_eq!(
            s.ldevid_der("d1").await.unwrap(),
            Some(vec![0x30, 0x03, 1, 2, 3])
        );
        assert_eq!(s.ldevid_der("nobody").await.unwrap(), None);
        assert!(matches!(
            s.set_ldevid_der("nobody", &[1]).await,
            Err(StoreError::NotFound { .. })
        ));
        // The registry row reads as before.
        assert!(s.device("d1").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devices_campaigns_and_session_events_newest_first() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let release = NewRelease {
            id: "r2".into(),
            device_class: "sensor-v1".into(),
            version: "2.0.0".into(),
            sequence: 2,
            image_sha256: "02".repeat(32),
            image: vec![1, 2, 3],
            manifest: vec![0xd8],
            measurement: measurement("APP"),
            security_counter: 1,
            notes: None,
            expires_at: None,
            created_by: "rm".into(),
        };
        s.create_release(&release, 1).await.unwrap();
        for (id, at) in [("c1", 5), ("c2", 8)] {
            let c = NewCampaign {
                id: id.into(),
                release_id: "r2".into(),
                device_class: format!("class-{id}"),
                spec: "{}".into(),
                rollback_of: None,
                created_by: "rm".into(),
            };
            let members = vec![("d1".to_string(), 1), ("d2".to_string(), 0)];
            s.create_campaign(&c, &members, at).await.unwrap();
        }
        s.finish_campaign_device("c1", "d1", DeviceUpdateState::Failed, Some("timeout"), 6)
            .await
            .unwrap();
        let ups = s.device_updates("d1", 10).await.unwrap();
        assert_eq!(
            ups.iter()
                .map(|u| (u.campaign_id.as_str(), u.state, u.wave))
                .collect::<Vec<_>>(),
            vec![
                ("c2", DeviceUpdateState::Pending, 1),
                ("c1", DeviceUpdateState::Failed, 1)
            ]
        );
        assert_eq!(ups[1].reason.as_deref(), Some("timeout"));
        assert_eq!(ups[0].release_id, "r2");
        assert_eq!(s.device_updates("d1", 1).await.unwrap().len(), 1);
        assert!(s.device_updates("d9", 10).await.unwrap().is_empty());

        s.post_session_event("d1", "quarantined", "a", 100)
            .await
            .unwrap();
        s.post_session_event("d2", "revoked", "a", 101)
            .await
            .unwrap();
        s.post_session_event("d1", "released", "b", 102)
            .await
            .unwrap();
        let ev = s.session_events_of("d1", 10).await.unwrap();
        assert_eq!(
            ev.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            vec!["released", "quarantined"]
        );
        assert_eq!(ev[0].origin, "b");
    })
    .await;
}
