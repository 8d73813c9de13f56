//! Two service instances on one database (SQLite and PostgreSQL), each with its own broker: a
//! device connected to the instance that does not run the campaign engine gets its offer through
//! the store's outbox and finishes its update without reconnecting; a quarantine and a
//! revocation made through one instance's API close the device's session on the other within a
//! bound, audited by the instance that closed it.

mod common;

use std::time::{Duration, Instant};

use castellan_server::ServerHandle;
use castellan_store::testing::{TestStore, each_backend};
use common::cluster::{another_instance, canary_of_one};
use common::update::*;
use common::*;
use serde_json::json;

/// The second instance, configured like the first, on the same database.
async fn second_instance(t: &TestStore, f: &Fleet) -> (ServerHandle, tempfile::TempDir) {
    let (second, tmp2) = another_instance(&t.location, &f.tmp).await;
    assert_ne!(second.instance_name(), f.server.instance_name());
    (second, tmp2)
}

/// `session.recheck` entries about `device` written by `instance`.
async fn rechecks(t: &TestStore, instance: &str, device: &str) -> Vec<String> {
    t.store
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "session.recheck" && e.actor == instance && e.target == device)
        .map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offer_reaches_a_device_connected_to_another_instance() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut dev = f.enroll("CL-B", 90).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let (b, _tmp2) = second_instance(t, &f).await;

        // The device's session is on the second instance; the engine's lease on the first.
        let mut u = Updater::connect(&b, &dev).await;
        assert!(!f.server.is_connected("CL-B").await);
        let c = f.campaign(&canary_of_one(&rid)).await;
        let started = Instant::now();
        let offer = u.expect_offer().await;
        let offered_in = started.elapsed();
        assert_eq!(offer.campaign_id, c.campaign_id);
        assert!(u.complete(&mut dev, &offer).await.updated);
        let done = f.wait(&c.campaign_id, 20, |c| c.state == "completed").await;
        assert_eq!(done.counts.updated, 1);
        assert_eq!(state_of(&done, "CL-B"), "updated");
        // Delivered messages leave the outbox; the device never moved.
        assert_eq!(t.store.outbox_len("CL-B").await.unwrap(), 0);
        assert_eq!(
            u.paho
                .received_on(&castellan_server::protocol::topics::update_offer("CL-B")),
            1
        );
        assert!(
            offered_in < Duration::from_secs(5),
            "offer across instances took {offered_in:?}"
        );
        eprintln!(
            "cross-instance offer after {offered_in:?} ({:?})",
            t.backend
        );
        u.quit().await;
        b.shutdown().await;
        // A clean stop clears the instance's presence rows.
        assert_eq!(t.store.presence_of("CL-B", 0).await.unwrap(), None);
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quarantine_and_revocation_on_one_instance_close_the_session_on_another() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let dev = f.enroll("CL-Q", 91).await;
        let (b, _tmp2) = second_instance(t, &f).await;
        let b_name = b.instance_name().to_string();
        let bound = Duration::from_secs(5);

        let (mut s, codes) = ldevid_session(&b, &dev, &["dev/CL-Q/down/update/#"]).await;
        assert_eq!(codes, json!([1]));
        // Let the second instance record the device's presence.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = Instant::now();
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/devices/CL-Q/quarantine",
                Some(&f.admin),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["session_closed"], true, "{body}");
        assert!(
            s.wait_event("disconnected", bound).await.is_some(),
            "the session on the other instance stayed open: {:?}",
            s.events
        );
        let closed_in = started.elapsed();
        eprintln!(
            "quarantine closed the remote session in {closed_in:?} ({:?})",
            t.backend
        );
        s.quit().await;
        b.flush_audit().await;
        let r = rechecks(t, &b_name, "CL-Q").await;
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with("session closed at the request of"),
            "{r:?}"
        );

        // Reconnected (quarantine policy: the update channel is still allowed), then revoked.
        let (mut s, codes) = ldevid_session(&b, &dev, &["dev/CL-Q/down/update/#"]).await;
        assert_eq!(codes, json!([1]));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/devices/CL-Q/revoke",
                Some(&f.admin),
                Some(&json!({"reason": "keyCompromise"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            s.wait_event("disconnected", bound).await.is_some(),
            "the revoked device's session on the other instance stayed open: {:?}",
            s.events
        );
        s.quit().await;
        // The other instance knows the revocation at once: its next connection is refused there.
        let (ok, out) = peers::mosquitto_pub(
            b.mqtt_addr().port(),
            &b.paths().ca_bundle,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CL-Q",
            "dev/CL-Q/status",
            "{}",
        )
        .await;
        assert!(!ok, "revoked device connected to the other instance: {out}");
        b.flush_audit().await;
        assert_eq!(rechecks(t, &b_name, "CL-Q").await.len(), 2);
        b.shutdown().await;
        f.server.shutdown().await;
    })
    .await;
}
