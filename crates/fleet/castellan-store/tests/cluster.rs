//! Schemas 10 and 14: presence (kept fresh by one heartbeat per instance), the device outbox and
//! session events, on SQLite and on PostgreSQL. Two instances are two names on one database.

use std::time::Duration;

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{
    CHANNEL_OUTBOX, CHANNEL_SESSION, Fence, LeaseAnswer, OUTBOX_CAP_PER_DEVICE, StoreError, fenced,
    unix_now_ms,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_names_the_instance_and_goes_stale() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let now = unix_now_ms();
        s.set_presence("dev-1", "b", now).await.unwrap();
        assert_eq!(
            s.presence_of("dev-1", now - 1000).await.unwrap().as_deref(),
            Some("b")
        );
        // Stale: not refreshed after the cut-off.
        assert_eq!(s.presence_of("dev-1", now + 1).await.unwrap(), None);
        assert_eq!(s.refresh_presence("b", now + 10).await.unwrap(), 1);
        assert_eq!(
            s.presence_of("dev-1", now + 1).await.unwrap().as_deref(),
            Some("b")
        );
        // The device moved to a: b's late disconnect does not erase it.
        s.set_presence("dev-1", "a", now + 20).await.unwrap();
        s.clear_presence("dev-1", "b").await.unwrap();
        assert_eq!(
            s.presence_of("dev-1", now).await.unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(s.clear_instance_presence("a").await.unwrap(), 1);
        assert_eq!(s.presence_of("dev-1", 0).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_is_delivered_by_the_instance_holding_the_session_and_capped() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let now = unix_now_ms();
        s.set_presence("dev-1", "b", now).await.unwrap();
        let first = s
            .enqueue_outbox("dev-1", "dev/dev-1/down/x", b"one", now)
            .await
            .unwrap();
        s.enqueue_outbox("dev-2", "dev/dev-2/down/x", b"other", now)
            .await
            .unwrap();
        // a holds no session: nothing for it; b gets dev-1's only.
        assert!(s.outbox_for("a", now - 1000, 10).await.unwrap().is_empty());
        let for_b = s.outbox_for("b", now - 1000, 10).await.unwrap();
        assert_eq!(for_b.len(), 1);
        assert_eq!(
            (
                for_b[0].seq,
                for_b[0].topic.as_str(),
                for_b[0].payload.as_slice()
            ),
            (first, "dev/dev-1/down/x", &b"one"[..])
        );
        // Stale presence (b died): its devices' messages are nobody's.
        assert!(s.outbox_for("b", now + 1, 10).await.unwrap().is_empty());
        assert!(s.delete_outbox(first).await.unwrap());
        assert!(!s.delete_outbox(first).await.unwrap(), "deleted twice");

        // Capped: the oldest go first.
        for i in 0..OUTBOX_CAP_PER_DEVICE + 5 {
            s.enqueue_outbox("dev-1", "t", format!("{i}").as_bytes(), now)
                .await
                .unwrap();
        }
        assert_eq!(s.outbox_len("dev-1").await.unwrap(), OUTBOX_CAP_PER_DEVICE);
        let kept = s.outbox_for("b", now - 1000, 1).await.unwrap();
        assert_eq!(kept[0].payload, b"5".to_vec());
        // Expired rows are purged.
        s.purge_cluster(now + 1).await.unwrap();
        assert_eq!(s.outbox_len("dev-1").await.unwrap(), 0);
        assert_eq!(s.outbox_len("dev-2").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_campaign_engine_cannot_queue_messages() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let LeaseAnswer::Held { fence, .. } =
            s.acquire_lease("campaigns", "a", None, 1).await.unwrap()
        else {
            panic!("lease not taken");
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stale: Fence = fence;
        let r = fenced(stale, s.enqueue_outbox("dev-1", "t", b"x", unix_now_ms())).await;
        assert!(matches!(r, Err(StoreError::Fenced { .. })), "{r:?}");
        assert_eq!(s.outbox_len("dev-1").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_events_are_read_in_order_from_a_cursor_and_wake_listeners() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let mut wake = s.listen().await.unwrap();
        assert_eq!(
            wake.is_some(),
            t.backend == castellan_store::Backend::Postgres
        );
        let start = s.last_session_event().await.unwrap();
        let now = unix_now_ms();
        let one = s
            .post_session_event("dev-1", "revoked", "a", now)
            .await
            .unwrap();
        let two = s
            .post_session_event("dev-2", "quarantined", "a", now)
            .await
            .unwrap();
        assert!(two > one && one > start);
        let all = s.session_events_after(start, 10).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|e| (e.device_id.as_str(), e.kind.as_str()))
                .collect::<Vec<_>>(),
            vec![("dev-1", "revoked"), ("dev-2", "quarantined")]
        );
        assert_eq!(s.session_events_after(one, 10).await.unwrap().len(), 1);
        assert_eq!(s.last_session_event().await.unwrap(), two);
        if let Some(rx) = wake.as_mut() {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("no NOTIFY within 5 s");
            assert_eq!(got.as_deref(), Some(CHANNEL_SESSION));
            s.set_presence("dev-9", "b", now).await.unwrap();
            s.enqueue_outbox("dev-9", "t", b"x", now).await.unwrap();
            let mut seen = Vec::new();
            while let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                seen.push(c.clone());
                if c == CHANNEL_OUTBOX {
                    break;
                }
            }
            assert!(seen.iter().any(|c| c == CHANNEL_OUTBOX), "{seen:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_fresh_while_its_instance_heartbeat_is() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let now = unix_now_ms();
        for i in 0..50 {
            s.set_presence(&format!("dev-{i}"), "b", now).await.unwrap();
        }
        s.set_presence("dev-a", "a", now).await.unwrap();
        // Ten seconds later: b's one heartbeat row keeps all 50 of its devices fresh; a sent
        // none, so its device is stale.
        let later = now + 10_000;
        assert_eq!(s.refresh_presence("b", later).await.unwrap(), 1);
        for i in [0, 25, 49] {
            assert_eq!(
                s.presence_of(&format!("dev-{i}"), later - 1000)
                    .await
                    .unwrap()
                    .as_deref(),
                Some("b")
            );
        }
        assert_eq!(s.presence_of("dev-a", later - 1000).await.unwrap(), None);
        s.enqueue_outbox("dev-7", "t", b"x", later).await.unwrap();
        assert_eq!(s.outbox_for("b", later - 1000, 10).await.unwrap().len(), 1);
        // The presence rows were not rewritten by the heartbeat.
        assert_eq!(s.refresh_presence("b", later + 1).await.unwrap(), 1);
        // b dies (no heartbeat after `later + 1`): its devices go stale together, and a purge
        // takes its heartbeat and its rows, not a's fresher row.
        let much_later = later + 20_000;
        assert_eq!(
            s.presence_of("dev-3", much_later - 1000).await.unwrap(),
            None
        );
        assert!(
            s.outbox_for("b", much_later - 1000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        s.set_presence("dev-a", "a", much_later).await.unwrap();
        s.purge_cluster(much_later - 1000).await.unwrap();
        assert_eq!(s.presence_of("dev-3", 0).await.unwrap(), None);
        assert_eq!(
            s.presence_of("dev-a", 0).await.unwrap().as_deref(),
            Some("a")
        );
        // A clean stop removes the heartbeat with the rows.
        s.refresh_presence("a", much_later).await.unwrap();
        assert_eq!(s.clear_instance_presence("a").await.unwrap(), 1);
        assert_eq!(s.presence_of("dev-a", 0).await.unwrap(), None);
    })
    .await;
}
