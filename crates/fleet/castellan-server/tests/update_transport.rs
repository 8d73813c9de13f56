//! The update transports and the device-side attacks on a campaign: HTTPS range downloads with
//! good and bad tokens, MQTT chunks (capped, end of image, past the end), a replayed report of
//! an earlier campaign, and post-update evidence that still shows the old firmware; on SQLite
//! and PostgreSQL.

mod common;

use std::time::Duration;

use castellan_server::protocol::{CampaignRequest, Offer, UpdateState};
use castellan_server::{ACTION_FETCH, ACTION_REPORT};
use castellan_store::Decision;
use castellan_store::testing::{TestStore, each_backend};
use common::update::*;
use common::*;

const QUIET: Duration = Duration::from_millis(1200);

/// One enrolled device, a release, a running campaign that offered it; the device's session.
async fn offered(f: &Fleet, serial: &str, seed: u64) -> (TestDevice, Updater, Offer, Vec<u8>) {
    let dev = f.enroll(serial, seed).await;
    let (rid, image) = f.release(2, v(2, 0, 0), 1).await;
    let mut up = Updater::connect(&f.server, &dev).await;
    f.campaign(&CampaignRequest::new(&rid, CLASS)).await;
    let offer = up.expect_offer().await;
    (dev, up, offer, image)
}

/// The path of an offer's HTTPS URL.
fn path_of(url: &str) -> String {
    let (_, p) = url.split_once("/api/").unwrap();
    format!("/api/{p}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_range_download_with_good_and_bad_token() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let (_dev, up, offer, image) = offered(&f, "DL-A", 80).await;
        let https = offer.https.clone().unwrap();
        let path = path_of(&https.url);
        let good = format!("Bearer {}", https.token);
        let size = image.len();
        let get = |range: Option<&'static str>, auth: String| {
            let api = f.api.clone();
            let path = path.clone();
            async move {
                let mut h: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
                if let Some(r) = range {
                    h.push(("range", r));
                }
                api.get_raw(&path, &h).await
            }
        };
        // Ranges.
        let (status, headers, body) = get(Some("bytes=0-9"), good.clone()).await;
        assert_eq!(status, 206);
        assert_eq!(headers["content-range"], format!("bytes 0-9/{size}"));
        assert_eq!(body, image[..10]);
        let (status, headers, body) = get(Some("bytes=10-"), good.clone()).await;
        assert_eq!(status, 206);
        assert_eq!(
            headers["content-range"],
            format!("bytes 10-{}/{size}", size - 1)
        );
        assert_eq!(body, image[10..]);
        let (status, _, body) = get(Some("bytes=-5"), good.clone()).await;
        assert_eq!((status, body.as_slice()), (206, &image[size - 5..]));
        let (status, _, body) = get(None, good.clone()).await;
        assert_eq!((status, body), (200, image.clone()));
        for bad in ["bytes=5000-", "bytes=9-3", "bytes=0-1,4-5", "lines=1-2"] {
            let (status, headers, _) = get(Some(bad), good.clone()).await;
            assert_eq!(status, 416, "{bad}");
            assert_eq!(headers["content-range"], format!("bytes */{size}"));
        }
        // Tokens: wrong, missing, for another campaign's URL.
        let (status, headers, _) = get(None, "Bearer cdl_00ff".into()).await;
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
        let (status, _, _) = get(None, String::new()).await;
        assert_eq!(status, 401);
        let other = f
            .api
            .get_raw(
                "/api/v1/updates/cmp-000000000000/image",
                &[("authorization", &good)],
            )
            .await;
        assert_eq!(other.0, 401);
        // An operator token is not a download token.
        let (status, _, _) = get(None, format!("Bearer {}", f.rm)).await;
        assert_eq!(status, 401);
        let log = audit(&f.server).await;
        let refusals: Vec<_> = log
            .iter()
            .filter(|e| e.action == "update.download" && e.decision == Decision::Refused)
            .collect();
        assert_eq!(refusals.len(), 4, "{refusals:#?}");
        assert!(
            refusals
                .iter()
                .any(|e| e.reason.contains("unknown or expired"))
        );
        assert!(
            refusals
                .iter()
                .any(|e| e.actor == "DL-A" && e.reason.contains("is for campaign"))
        );
        assert!(
            log.iter().all(|e| !e.reason.contains(&https.token)),
            "the token leaked into the audit log"
        );
        up.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_mqtt_chunk_past_the_end_refused() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let (_dev, mut up, offer, image) = offered(&f, "CHK-A", 90).await;
        let rid = offer.release_id.clone();
        let size = image.len() as u64;
        // A request for more than chunk_size gets chunk_size.
        up.fetch(&rid, 100, 10_000).await;
        let (off, bytes) = up.chunk(&rid, Duration::from_secs(10)).await.unwrap();
        assert_eq!((off, bytes.as_slice()), (100, &image[100..164]));
        // The last bytes, then the end (an empty chunk).
        up.fetch(&rid, size - 3, 64).await;
        let (off, bytes) = up.chunk(&rid, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (off, bytes.as_slice()),
            (size - 3, &image[image.len() - 3..])
        );
        up.fetch(&rid, size, 64).await;
        let (off, bytes) = up.chunk(&rid, Duration::from_secs(10)).await.unwrap();
        assert_eq!((off, bytes.len()), (size, 0));
        // Past the end: nothing, and an audit entry.
        up.fetch(&rid, size + 1, 64).await;
        up.fetch(&rid, u64::MAX, 64).await;
        // Another release than the campaign's: nothing either.
        up.fetch("sensor-v1-9", 0, 64).await;
        assert!(up.chunk(&rid, QUIET).await.is_none());
        up.paho.drain(Duration::from_millis(300)).await;
        assert_eq!(
            up.paho
                .received_on(&castellan_server::protocol::topics::update_chunk(
                    "CHK-A",
                    "sensor-v1-9"
                )),
            0
        );
        let log = audit(&f.server).await;
        let refused: Vec<_> = log
            .iter()
            .filter(|e| {
                e.action == ACTION_FETCH && e.actor == "CHK-A" && e.decision == Decision::Refused
            })
            .collect();
        assert_eq!(refused.len(), 3, "{refused:#?}");
        assert!(refused.iter().any(|e| {
            e.code.as_deref() == Some("update.past_end")
                && e.reason
                    .contains(&format!("offset {} is past the end", size + 1))
        }));
        assert!(
            refused
                .iter()
                .any(|e| e.code.as_deref() == Some("update.wrong_release"))
        );
        // Once the campaign ended, the device gets nothing.
        let (status, _) = f.act(&offer.campaign_id, "abort", None).await;
        assert_eq!(status, 200);
        up.fetch(&rid, 0, 64).await;
        assert!(up.chunk(&rid, QUIET).await.is_none());
        assert!(
            audit_has_refusal(&f.server, ACTION_FETCH, "in no running or paused campaign").await
        );
        up.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_replayed_report_of_an_earlier_campaign_ignored() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut dev = f.enroll("RPL-A", 100).await;
        let (r2, _) = f.release(2, v(2, 0, 0), 1).await;
        let (r3, _) = f.release(3, v(3, 0, 0), 1).await;
        let mut up = Updater::connect(&f.server, &dev).await;
        let c1 = f.campaign(&CampaignRequest::new(&r2, CLASS)).await;
        let offer1 = up.expect_offer().await;
        assert!(up.complete(&mut dev, &offer1).await.updated);
        f.wait(&c1.campaign_id, 15, |c| c.state == "completed")
            .await;
        let c2 = f.campaign(&CampaignRequest::new(&r3, CLASS)).await;
        let offer2 = up.expect_offer().await;
        // Reports recorded during campaign 1, replayed now: none may touch either campaign.
        let old = c1.campaign_id.as_str();
        up.status(old, &r2, UpdateState::Failed, 0, Some("replayed"))
            .await;
        up.status(old, &r2, UpdateState::Confirmed, 0, None).await;
        up.evidence(old, &[0xd2, 0x84]).await;
        assert!(
            up.challenge(QUIET).await.is_none(),
            "no challenge for a replayed confirmation"
        );
        let log = audit(&f.server).await;
        let ignored: Vec<_> = log
            .iter()
            .filter(|e| e.action == ACTION_REPORT && e.actor == "RPL-A" && e.target == old)
            .collect();
        assert_eq!(ignored.len(), 3, "{ignored:#?}");
        assert!(ignored.iter().all(|e| e.decision == Decision::Refused
            && e.code.as_deref() == Some("update.not_current_campaign")
            && e.reason.ends_with(&format!("({})", c2.campaign_id))));
        assert_eq!(state_of(&f.get(old).await, "RPL-A"), "updated");
        assert_eq!(state_of(&f.get(&c2.campaign_id).await, "RPL-A"), "offered");
        // The current campaign still works.
        assert!(up.complete(&mut dev, &offer2).await.updated);
        f.wait(&c2.campaign_id, 15, |c| c.state == "completed")
            .await;
        // After it ended, a report for it is ignored too.
        up.status(&c2.campaign_id, &r3, UpdateState::Failed, 0, Some("late"))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            audit(&f.server)
                .await
                .iter()
                .any(|e| e.action == ACTION_REPORT
                    && e.decision == Decision::Refused
                    && e.code.as_deref() == Some("update.no_campaign"))
        );
        assert_eq!(state_of(&f.get(&c2.campaign_id).await, "RPL-A"), "updated");
        up.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_evidence_with_the_old_measurement_fails() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let (mut dev, mut up, offer, _image) = offered(&f, "OLD-A", 110).await;
        let before = f
            .api
            .call("GET", "/api/v1/devices/OLD-A", Some(&f.rm), None)
            .await
            .1;
        let old = (dev.app_hash, dev.app_signer, dev.app_version);
        up.install(&mut dev, &offer).await;
        // The device claims success but still runs (and attests) its old application.
        (dev.app_hash, dev.app_signer, dev.app_version) = old;
        let r = up.confirm(&mut dev, &offer).await;
        assert!(!r.updated);
        let reason = r.reason.unwrap();
        assert_eq!(
            r.code.as_deref(),
            Some("attestation.measurement_mismatch"),
            "{reason}"
        );
        // What the device and the operator read.
        assert!(
            reason.contains("post-update attestation failed"),
            "{reason}"
        );
        let c = f
            .wait(&offer.campaign_id, 15, |c| c.state == "completed")
            .await;
        assert_eq!((c.counts.failed, c.counts.updated), (1, 0));
        assert!(c.devices[0].reason.as_deref().unwrap().contains("APP"));
        // The registry still expects the old firmware, and says why the device failed.
        let after = f
            .api
            .call("GET", "/api/v1/devices/OLD-A", Some(&f.rm), None)
            .await
            .1;
        assert_eq!(
            after["reference_measurements"],
            before["reference_measurements"]
        );
        assert_eq!(after["firmware_version"], before["firmware_version"]);
        assert_eq!(after["attestation"], "failed");
        assert!(
            audit_has_refusal(&f.server, "update.device", "post-update attestation failed").await
        );
        up.quit().await;
        f.server.shutdown().await;
    })
    .await;
}
