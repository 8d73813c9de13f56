//! Schema 3: the release trust anchor, releases, campaigns and campaign devices, each test run
//! on SQLite and on PostgreSQL.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{
    CampaignState, DOWNLOAD_TOKEN_PREFIX, DeviceUpdateState, NewCampaign, NewRelease,
    ReferenceMeasurement, StoreError,
};

fn release(class: &str, sequence: u64, counter: u32) -> NewRelease {
    let image: Vec<u8> = (0..300u32)
        .map(|i| (i * 7 + sequence as u32) as u8)
        .collect();
    NewRelease {
        id: format!("{class}-{sequence}"),
        device_class: class.into(),
        version: format!("{sequence}.0.0"),
        sequence,
        image_sha256: format!("{:02x}", sequence).repeat(32),
        image,
        manifest: vec![0xd8, 0x6b, 0xa2, sequence as u8],
        measurement: ReferenceMeasurement {
            mtype: "APP".into(),
            digest_hex: "ab".repeat(32),
            signer_id: "51".repeat(32),
            version: format!("{sequence}.0.0+0"),
        },
        security_counter: counter,
        notes: Some("notes".into()),
        expires_at: (sequence == 2).then_some(1_900_000_000),
        created_by: "rm".into(),
    }
}

fn campaign(id: &str, release_id: &str) -> NewCampaign {
    NewCampaign {
        id: id.into(),
        release_id: release_id.into(),
        device_class: "sensor-v1".into(),
        spec: r#"{"canary":1}"#.into(),
        rollback_of: None,
        created_by: "rm".into(),
    }
}

fn members(ids: &[(&str, u32)]) -> Vec<(String, u32)> {
    ids.iter().map(|(d, w)| (d.to_string(), *w)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_key_is_set_once_and_survives_reopen() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert_eq!(s.release_key().await.unwrap(), None);
        let key: Vec<u8> = std::iter::once(4).chain(1..=64u8).collect();
        s.set_release_key(&key, 100, "admin").await.unwrap();
        let err = s.set_release_key(&[4; 65], 101, "admin").await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        let again = t.reopen().await;
        let got = again.release_key().await.unwrap().unwrap();
        assert_eq!(got.public_key, key, "the first key stands");
        assert_eq!((got.set_at, got.set_by.as_str()), (100, "admin"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_round_trip_and_sequence_must_grow_per_class() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let r2 = release("sensor-v1", 2, 1);
        s.create_release(&r2, 10).await.unwrap();
        let got = s.release("sensor-v1-2").await.unwrap().unwrap();
        assert_eq!(got.sequence, 2);
        assert_eq!(got.image_size, 300);
        assert_eq!(got.manifest, r2.manifest);
        assert_eq!(got.measurement, r2.measurement);
        assert_eq!(got.signer_id(), "51".repeat(32));
        assert_eq!(got.notes.as_deref(), Some("notes"));
        assert_eq!(got.expires_at, Some(1_900_000_000));
        assert_eq!(got.created_at, 10);
        assert_eq!(
            s.release_image("sensor-v1-2").await.unwrap(),
            Some(r2.image.clone()),
            "image bytes survive byte for byte"
        );
        // Same or lower sequence of the class: refused, nothing written.
        for seq in [1, 2] {
            let err = s
                .create_release(&release("sensor-v1", seq, 1), 11)
                .await
                .unwrap_err();
            assert_eq!(
                err,
                StoreError::SequenceNotNewer {
                    offered: seq,
                    latest: 2
                }
            );
        }
        assert_eq!(s.release("sensor-v1-1").await.unwrap(), None);
        // Another class has its own sequence.
        s.create_release(&release("gateway-v1", 1, 0), 12)
            .await
            .unwrap();
        s.create_release(&release("sensor-v1", 5, 2), 13)
            .await
            .unwrap();
        assert_eq!(
            s.latest_release_sequence("sensor-v1").await.unwrap(),
            Some(5)
        );
        assert_eq!(
            s.release("sensor-v1-5").await.unwrap().unwrap().expires_at,
            None
        );
        assert_eq!(s.latest_release_sequence("nope").await.unwrap(), None);
        let ids: Vec<String> = s
            .list_releases()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["gateway-v1-1", "sensor-v1-2", "sensor-v1-5"]);
        assert_eq!(s.releases_of_class("sensor-v1").await.unwrap().len(), 2);
        assert_eq!(s.release_image("nope").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_active_campaign_per_class_and_state_transitions() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.create_release(&release("sensor-v1", 2, 1), 1)
            .await
            .unwrap();
        s.create_campaign(
            &campaign("c1", "sensor-v1-2"),
            &members(&[("d1", 0), ("d2", 1)]),
            5,
        )
        .await
        .unwrap();
        let c = s.campaign("c1").await.unwrap().unwrap();
        assert_eq!(
            (c.state, c.wave, c.created_at, c.spec.as_str()),
            (CampaignState::Running, 0, 5, r#"{"canary":1}"#)
        );
        let err = s
            .create_campaign(&campaign("c2", "sensor-v1-2"), &[], 6)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            StoreError::AlreadyExists {
                what: "running or paused campaign of the class",
                key: "c1".into()
            }
        );
        assert_eq!(s.campaign("c2").await.unwrap(), None);
        // A campaign needs an existing release.
        let mut other = campaign("c3", "nope");
        other.device_class = "gateway-v1".into();
        assert!(matches!(
            s.create_campaign(&other, &[], 6).await,
            Err(StoreError::AlreadyExists { .. } | StoreError::Constraint { .. })
        ));
        // Pause only from running; resume only from paused.
        let running = [CampaignState::Running];
        let paused = [CampaignState::Paused];
        assert_eq!(
            s.transition_campaign("c1", &running, CampaignState::Paused, Some("why"), 7)
                .await
                .unwrap(),
            Some(CampaignState::Running)
        );
        assert_eq!(
            s.transition_campaign("c1", &running, CampaignState::Paused, None, 8)
                .await
                .unwrap(),
            None,
            "not running any more: nothing changes"
        );
        let c = s.campaign("c1").await.unwrap().unwrap();
        assert_eq!(
            (c.state, c.reason.as_deref(), c.updated_at),
            (CampaignState::Paused, Some("why"), 7)
        );
        s.set_campaign_baseline("c1", 2, 3).await.unwrap();
        s.transition_campaign("c1", &paused, CampaignState::Running, None, 9)
            .await
            .unwrap();
        s.set_campaign_wave("c1", 1, 10).await.unwrap();
        assert_eq!(s.active_campaigns().await.unwrap().len(), 1);
        s.transition_campaign("c1", &running, CampaignState::Aborted, Some("stop"), 11)
            .await
            .unwrap();
        assert!(s.active_campaigns().await.unwrap().is_empty());
        // Ended: a new campaign of the class may start, and the history stays.
        s.create_campaign(&campaign("c2", "sensor-v1-2"), &[], 12)
            .await
            .unwrap();
        let all = s.list_campaigns().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].wave, all[0].baseline_failed, all[0].baseline_updated),
            (1, 2, 3)
        );
        assert!(matches!(
            s.transition_campaign("nope", &running, CampaignState::Paused, None, 1)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.set_campaign_wave("nope", 1, 1).await,
            Err(StoreError::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_progress_tokens_nonces_and_final_states() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.create_release(&release("sensor-v1", 2, 4), 1)
            .await
            .unwrap();
        s.create_campaign(
            &campaign("c1", "sensor-v1-2"),
            &members(&[("d1", 0), ("d2", 1)]),
            5,
        )
        .await
        .unwrap();
        assert!(s.add_campaign_device("c1", "d3", 1, 6).await.unwrap());
        assert!(!s.add_campaign_device("c1", "d3", 0, 6).await.unwrap());
        // Offer: pending → offered, a token whose hash only is stored.
        let token = s
            .offer_campaign_device("c1", "d1", 7)
            .await
            .unwrap()
            .unwrap();
        assert!(token.starts_with(DOWNLOAD_TOKEN_PREFIX));
        assert!(
            !t.dump_table("campaign_devices").await.contains(&token),
            "the token itself is never stored"
        );
        let m = s
            .campaign_device_by_download_token(&token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.device_id.as_str(), m.state, m.offered_at),
            ("d1", DeviceUpdateState::Offered, Some(7))
        );
        assert_eq!(
            s.campaign_device_by_download_token("cdl_00").await.unwrap(),
            None
        );
        // Progress, then a re-offer keeps the state and replaces the token.
        assert!(
            s.record_campaign_progress("c1", "d1", DeviceUpdateState::Downloading, 150, None, 8)
                .await
                .unwrap()
        );
        let token2 = s
            .offer_campaign_device("c1", "d1", 9)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.campaign_device_by_download_token(&token).await.unwrap(),
            None,
            "the previous token is useless"
        );
        let m = s.campaign_device("c1", "d1").await.unwrap().unwrap();
        assert_eq!(
            (m.state, m.offset, m.updated_at),
            (DeviceUpdateState::Downloading, 150, 9)
        );
        // Challenge: a nonce, single use.
        let nonce = s.issue_update_nonce("c1", "d1", 10).await.unwrap().unwrap();
        let m = s.campaign_device("c1", "d1").await.unwrap().unwrap();
        assert_eq!(m.state, DeviceUpdateState::Confirming);
        assert_eq!(m.nonce.as_deref(), Some(&nonce[..]));
        // A repeated `confirmed` (a lost message) gets the outstanding challenge again, so the
        // answer the device is computing stays valid.
        assert_eq!(
            s.issue_update_nonce("c1", "d1", 10).await.unwrap(),
            Some(nonce)
        );
        assert!(!s.consume_update_nonce("c1", "d1", &[0; 32]).await.unwrap());
        assert!(
            !s.consume_update_nonce("c1", "d1", &nonce).await.unwrap(),
            "a wrong guess used the nonce up"
        );
        let fresh = s.issue_update_nonce("c1", "d1", 11).await.unwrap().unwrap();
        assert_ne!(fresh, nonce, "a used nonce is never issued again");
        let nonce = fresh;
        assert!(s.consume_update_nonce("c1", "d1", &nonce).await.unwrap());
        assert!(!s.consume_update_nonce("c1", "d1", &nonce).await.unwrap());
        // Updated: final; nothing moves it again.
        assert!(
            s.finish_campaign_device("c1", "d1", DeviceUpdateState::Updated, None, 12)
                .await
                .unwrap()
        );
        assert!(
            !s.finish_campaign_device("c1", "d1", DeviceUpdateState::Failed, Some("late"), 13)
                .await
                .unwrap()
        );
        assert!(
            !s.record_campaign_progress("c1", "d1", DeviceUpdateState::Installing, 0, None, 13)
                .await
                .unwrap()
        );
        assert_eq!(s.offer_campaign_device("c1", "d1", 13).await.unwrap(), None);
        assert_eq!(s.issue_update_nonce("c1", "d1", 13).await.unwrap(), None);
        assert_eq!(
            s.campaign_device_by_download_token(&token2).await.unwrap(),
            None,
            "a finished device's token is dropped"
        );
        assert!(matches!(
            s.record_campaign_progress("c1", "d2", DeviceUpdateState::Failed, 0, None, 13)
                .await,
            Err(StoreError::Corrupt { .. })
        ));
        // A pending device may leave; an offered one may not.
        s.offer_campaign_device("c1", "d2", 14)
            .await
            .unwrap()
            .unwrap();
        assert!(!s.remove_pending_campaign_device("c1", "d2").await.unwrap());
        assert!(s.remove_pending_campaign_device("c1", "d3").await.unwrap());
        s.finish_campaign_device("c1", "d2", DeviceUpdateState::Failed, Some("reverted"), 15)
            .await
            .unwrap();
        let all = s.campaign_devices("c1").await.unwrap();
        let states: Vec<(&str, DeviceUpdateState, Option<&str>)> = all
            .iter()
            .map(|m| (m.device_id.as_str(), m.state, m.reason.as_deref()))
            .collect();
        assert_eq!(
            states,
            [
                ("d1", DeviceUpdateState::Updated, None),
                ("d2", DeviceUpdateState::Failed, Some("reverted")),
            ]
        );
        // The fleet's confirmed security counter comes from updated devices only.
        assert_eq!(
            s.max_confirmed_security_counter("sensor-v1").await.unwrap(),
            Some(4)
        );
        assert_eq!(
            s.max_confirmed_security_counter("gateway-v1")
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_active_campaign_survives_reopen() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.create_release(&release("sensor-v1", 2, 1), 1)
            .await
            .unwrap();
        s.create_release(&release("sensor-v1", 3, 1), 1)
            .await
            .unwrap();
        s.create_campaign(&campaign("c1", "sensor-v1-2"), &members(&[("d1", 0)]), 5)
            .await
            .unwrap();
        s.finish_campaign_device("c1", "d1", DeviceUpdateState::Updated, None, 6)
            .await
            .unwrap();
        s.transition_campaign(
            "c1",
            &[CampaignState::Running],
            CampaignState::Completed,
            None,
            7,
        )
        .await
        .unwrap();
        assert_eq!(s.active_campaign_of_device("d1").await.unwrap(), None);
        let mut c2 = campaign("c2", "sensor-v1-3");
        c2.rollback_of = Some("c1".into());
        s.create_campaign(&c2, &members(&[("d1", 0)]), 8)
            .await
            .unwrap();
        s.record_campaign_progress("c1", "d1", DeviceUpdateState::Installing, 0, None, 9)
            .await
            .unwrap();
        s.record_campaign_progress("c2", "d1", DeviceUpdateState::Rebooting, 300, None, 9)
            .await
            .unwrap();
        s.set_campaign_wave("c2", 0, 9).await.unwrap();
        let again = t.reopen().await;
        let (c, m) = again
            .active_campaign_of_device("d1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.id.as_str(), c.rollback_of.as_deref(), c.state),
            ("c2", Some("c1"), CampaignState::Running)
        );
        assert_eq!(
            (m.state, m.offset, m.wave),
            (DeviceUpdateState::Rebooting, 300, 0)
        );
        assert_eq!(again.active_campaign_of_device("d9").await.unwrap(), None);
    })
    .await;
}

#[test]
fn state_names_round_trip() {
    for st in DeviceUpdateState::ALL {
        assert_eq!(DeviceUpdateState::parse(st.as_str()), Some(st));
    }
    assert!(DeviceUpdateState::Failed.is_terminal());
    assert!(DeviceUpdateState::Confirming.is_in_progress());
    assert!(!DeviceUpdateState::Pending.is_in_progress());
    for st in [
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Completed,
        CampaignState::Aborted,
    ] {
        assert_eq!(CampaignState::parse(st.as_str()), Some(st));
    }
    assert!(CampaignState::Paused.is_active());
    assert!(!CampaignState::Completed.is_active());
}
