//! The campaign engine against scripted devices speaking the update protocol over MQTT (paho,
//! LDevID sessions): canary then waves, per-device timeout, pause on a threshold and resume,
//! abort with cancel, a late joiner, rollback, and a restart in the middle of a campaign; on
//! SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use castellan_server::protocol::{CampaignRequest, OnThreshold, UpdateState};
use castellan_server::{ACTION_CAMPAIGN, ACTION_DEVICE};
use castellan_store::Decision;
use castellan_store::testing::{TestStore, each_backend};
use common::update::*;
use common::*;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(1200);

fn request(release: &str, canary: u32, waves: &[&str]) -> CampaignRequest {
    let mut r = CampaignRequest::new(release, CLASS);
    r.canary = canary;
    r.waves = waves.iter().map(|w| w.to_string()).collect();
    r
}

async fn device_json(f: &Fleet, id: &str) -> Value {
    let (status, body) = f
        .api
        .call("GET", &format!("/api/v1/devices/{id}"), Some(&f.rm), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_then_waves_update_every_device_and_the_registry() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut devs = Vec::new();
        for (i, s) in ["WAV-A", "WAV-B", "WAV-C"].iter().enumerate() {
            devs.push(f.enroll(s, 10 + i as u64).await);
        }
        let (rid, image) = f.release(2, v(2, 0, 0), 1).await;
        let mut ups = Vec::new();
        for d in &devs {
            ups.push(Updater::connect(&f.server, d).await);
        }
        // Canary 1, then 50 % (2 of 3 cumulative), then 100 %.
        let c = f.campaign(&request(&rid, 1, &["50%", "100%"])).await;
        let waves: Vec<u32> = c.devices.iter().map(|d| d.wave).collect();
        assert_eq!(waves, [0, 1, 2]);
        assert_eq!((c.state.as_str(), c.wave), ("running", 0));
        let id = c.campaign_id.clone();

        let offer = ups[0].expect_offer().await;
        assert_eq!(
            (offer.campaign_id.as_str(), offer.release_id.as_str()),
            (id.as_str(), rid.as_str())
        );
        assert_eq!(offer.image_size, image.len() as u64);
        assert_eq!(offer.chunk_size, 64);
        let https = offer.https.clone().expect("an HTTPS source");
        assert!(
            https.url.ends_with(&format!("/api/v1/updates/{id}/image")),
            "{}",
            https.url
        );
        // Only the canary is offered while it runs.
        assert!(ups[1].offer(QUIET).await.is_none());
        assert!(ups[2].offer(Duration::ZERO).await.is_none());
        let downloaded = ups[0].install(&mut devs[0], &offer).await;
        assert_eq!(downloaded, image, "the MQTT chunks are the release image");
        let r = ups[0].confirm(&mut devs[0], &offer).await;
        assert!(r.updated, "{r:?}");
        // Wave 1, then wave 2.
        for i in 1..3 {
            let offer = ups[i].expect_offer().await;
            if i == 1 {
                assert!(ups[2].offer(Duration::from_millis(500)).await.is_none());
            }
            let r = ups[i].complete(&mut devs[i], &offer).await;
            assert!(r.updated, "{r:?}");
        }
        let c = f.wait(&id, 15, |c| c.state == "completed").await;
        assert_eq!((c.counts.updated, c.counts.failed, c.wave), (3, 0, 2));
        assert_eq!(c.failure_rate, 0.0);
        assert!(c.reason.as_deref().unwrap().contains("3 updated, 0 failed"));
        // The registry expects the new firmware now (next onboarding / appraisal).
        let (digest, signer, version) = measurement_of(&image);
        for d in ["WAV-A", "WAV-B", "WAV-C"] {
            let dj = device_json(&f, d).await;
            assert_eq!(dj["firmware_version"], "2.0.0+0", "the release's version");
            let last = dj["reference_measurements"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone();
            assert_eq!(
                last,
                json!({"type": "APP", "digest": hex::encode(digest),
                       "signer_id": hex::encode(signer), "version": version.to_string()})
            );
            assert_eq!(dj["attestation"], "passed");
            // The post-update token's claims are kept for the console's device page.
            let kept = f.server.store().last_attestation(d).await.unwrap().unwrap();
            assert!(
                kept.passed && kept.context.starts_with("update campaign"),
                "{kept:?}"
            );
            assert!(kept.claims_json.contains(&hex::encode(digest)), "{kept:?}");
        }
        let log = audit(&f.server).await;
        let updated = log
            .iter()
            .filter(|e| e.action == ACTION_DEVICE && e.reason.contains("updated: attested"))
            .count();
        assert_eq!(updated, 3);
        assert!(
            log.iter()
                .any(|e| e.action == ACTION_CAMPAIGN && e.reason.contains("wave 2 started"))
        );
        // A device already on the release is not in a new campaign's cohort.
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/campaigns",
                Some(&f.rm),
                Some(&serde_json::to_value(request(&rid, 1, &["100%"])).unwrap()),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "campaign.no_eligible_device", "{body}");
        // What the release manager reads.
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("no device is eligible")
        );
        for u in ups {
            u.quit().await;
        }
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_without_progress_times_out() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let dev = f.enroll("TMO-A", 20).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let mut up = Updater::connect(&f.server, &dev).await;
        let mut req = request(&rid, 1, &["100%"]);
        req.device_timeout_s = 2;
        let c = f.campaign(&req).await;
        let offer = up.expect_offer().await;
        up.status(&offer.campaign_id, &rid, UpdateState::Accepted, 0, None)
            .await;
        // ... then silence.
        let c = f.wait(&c.campaign_id, 15, |c| c.state == "completed").await;
        assert_eq!((c.counts.failed, c.counts.updated), (1, 0));
        let reason = c.devices[0].reason.clone().unwrap();
        assert!(
            reason.contains("no progress for 2 s (last state downloading)"),
            "{reason}"
        );
        assert!(
            audit(&f.server)
                .await
                .iter()
                .any(|e| e.action == ACTION_DEVICE
                    && e.decision == Decision::Refused
                    && e.target == "TMO-A"
                    && e.reason.contains("no progress"))
        );
        up.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_on_threshold_then_resume() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let a = f.enroll("THR-A", 30).await;
        let mut b = f.enroll("THR-B", 31).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let mut ua = Updater::connect(&f.server, &a).await;
        let mut ub = Updater::connect(&f.server, &b).await;
        let mut req = request(&rid, 1, &["100%"]);
        req.max_failures = 1;
        req.on_threshold = OnThreshold::Pause;
        let c = f.campaign(&req).await;
        let id = c.campaign_id.clone();
        let offer = ua.expect_offer().await;
        // The canary's trial image fails its self-test: the bootloader reverted it.
        ua.status(
            &id,
            &rid,
            UpdateState::Reverted,
            offer.image_size,
            Some("self-test failed"),
        )
        .await;
        let c = f.wait(&id, 15, |c| c.state == "paused").await;
        assert_eq!(c.counts.failed, 1);
        let reason = c.reason.clone().unwrap();
        assert!(
            reason.contains("threshold crossed: 1 devices failed"),
            "{reason}"
        );
        assert!(
            c.devices[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("reverted: self-test failed")
        );
        assert!(ub.offer(QUIET).await.is_none(), "paused: no new offers");
        assert!(
            audit(&f.server)
                .await
                .iter()
                .any(|e| e.action == ACTION_CAMPAIGN
                    && e.reason.contains("paused: threshold crossed"))
        );
        // Pausing a paused campaign is refused; resuming works and counts from here.
        let (status, body) = f.act(&id, "pause", None).await;
        assert_eq!(status, 409);
        assert_eq!(body["code"], "campaign.wrong_state", "{body}");
        let (status, body) = f.act(&id, "resume", None).await;
        assert_eq!(
            (status, body["state"].clone()),
            (200, json!("running")),
            "{body}"
        );
        let offer = ub.expect_offer().await;
        assert!(ub.complete(&mut b, &offer).await.updated);
        let c = f.wait(&id, 15, |c| c.state == "completed").await;
        assert_eq!((c.counts.updated, c.counts.failed), (1, 1));
        assert_eq!(c.failure_rate, 50.0);
        ua.quit().await;
        ub.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abort_sends_cancel_and_ends_the_download_token() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let a = f.enroll("ABT-A", 40).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let mut ua = Updater::connect(&f.server, &a).await;
        let c = f.campaign(&request(&rid, 1, &["100%"])).await;
        let id = c.campaign_id.clone();
        let offer = ua.expect_offer().await;
        ua.status(&id, &rid, UpdateState::Accepted, 0, None).await;
        ua.status(&id, &rid, UpdateState::Downloading, 64, None)
            .await;
        f.wait(&id, 10, |c| state_of(c, "ABT-A") == "downloading")
            .await;
        let (status, body) = f.act(&id, "abort", None).await;
        assert_eq!(
            (status, body["state"].clone()),
            (200, json!("aborted")),
            "{body}"
        );
        let cancel = ua.cancel(Duration::from_secs(10)).await.expect("a cancel");
        assert_eq!(cancel.campaign_id, id);
        let c = f.get(&id).await;
        assert_eq!(state_of(&c, "ABT-A"), "failed");
        assert!(
            c.devices[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("campaign aborted: abort by rm")
        );
        // The HTTPS token of the offer is useless now.
        let https = offer.https.unwrap();
        let path = https
            .url
            .split_once("/api/")
            .map(|(_, p)| format!("/api/{p}"))
            .unwrap();
        let auth = format!("Bearer {}", https.token);
        let (status, _, _) = f.api.get_raw(&path, &[("authorization", &auth)]).await;
        assert_eq!(status, 401);
        // Nothing more to do with an aborted campaign.
        let (status, body) = f.act(&id, "resume", None).await;
        assert_eq!(status, 409);
        assert_eq!(body["code"], "campaign.wrong_state", "{body}");
        assert!(audit_has_refusal(&f.server, "update.download", "expired").await);
        ua.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_joiner_joins_the_current_wave() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut a = f.enroll("LATE-A", 50).await;
        let mut b = f.enroll("LATE-B", 51).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let mut ua = Updater::connect(&f.server, &a).await;
        let mut ub = Updater::connect(&f.server, &b).await;
        let c = f.campaign(&request(&rid, 1, &["100%"])).await;
        let id = c.campaign_id.clone();
        assert_eq!(c.devices.len(), 2);
        let offer_a = ua.expect_offer().await;
        // A new device is onboarded while the canary runs: it joins wave 0 and is offered.
        let mut l = f.enroll("LATE-L", 52).await;
        let mut ul = Updater::connect(&f.server, &l).await;
        let offer_l = ul.expect_offer().await;
        let c = f.get(&id).await;
        let late = c.devices.iter().find(|d| d.device_id == "LATE-L").unwrap();
        assert_eq!(late.wave, 0);
        assert!(
            ub.offer(Duration::ZERO).await.is_none(),
            "wave 1 has not started"
        );
        assert!(
            audit(&f.server)
                .await
                .iter()
                .any(|e| e.target == "LATE-L" && e.reason.contains("late joiner"))
        );
        assert!(ua.complete(&mut a, &offer_a).await.updated);
        assert!(ul.complete(&mut l, &offer_l).await.updated);
        let offer_b = ub.expect_offer().await;
        assert!(ub.complete(&mut b, &offer_b).await.updated);
        let c = f.wait(&id, 15, |c| c.state == "completed").await;
        assert_eq!(c.counts.updated, 3);
        for u in [ua, ub, ul] {
            u.quit().await;
        }
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_puts_the_previous_image_back_on_the_updated_devices() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut a = f.enroll("RBK-A", 60).await;
        let (r2, image2) = f.release(2, v(2, 0, 0), 1).await;
        let (r3, _) = f.release(3, v(3, 0, 0), 1).await;
        let mut ua = Updater::connect(&f.server, &a).await;
        let mut last = None;
        for rid in [&r2, &r3] {
            let c = f.campaign(&request(rid, 1, &["100%"])).await;
            let offer = ua.expect_offer().await;
            assert!(ua.complete(&mut a, &offer).await.updated);
            last = Some(f.wait(&c.campaign_id, 15, |c| c.state == "completed").await);
        }
        let c3 = last.unwrap();
        // The release manager re-signs release 2's image with a newer sequence.
        let manifest = f.kit.manifest(CLASS, 4, &image2);
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/releases",
                Some(&f.rm),
                Some(&release_body(CLASS, "2.0.0", &image2, &manifest)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        // A release with another image is not a rollback.
        let (status, body) = f
            .act(
                &c3.campaign_id,
                "rollback",
                Some(&json!({"release_id": r3})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "campaign.rollback_not_newer", "{body}");
        let (status, body) = f
            .act(
                &c3.campaign_id,
                "rollback",
                Some(&json!({"release_id": "sensor-v1-4"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let rb: castellan_server::protocol::CampaignJson = serde_json::from_value(body).unwrap();
        assert_eq!(rb.rollback_of.as_deref(), Some(c3.campaign_id.as_str()));
        assert_eq!(rb.devices.len(), 1);
        let offer = ua.expect_offer().await;
        assert_eq!(offer.release_id, "sensor-v1-4");
        assert!(ua.complete(&mut a, &offer).await.updated);
        f.wait(&rb.campaign_id, 15, |c| c.state == "completed")
            .await;
        let (digest, _, _) = measurement_of(&image2);
        let dj = device_json(&f, "RBK-A").await;
        assert_eq!(
            dj["reference_measurements"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["digest"],
            hex::encode(digest)
        );
        ua.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_resumes_a_running_campaign() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let mut a = f.enroll("RST-A", 70).await;
        let mut b = f.enroll("RST-B", 71).await;
        let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
        let mut ua = Updater::connect(&f.server, &a).await;
        let mut ub = Updater::connect(&f.server, &b).await;
        let (id, offer_b) = f.campaign_midway(&rid, &mut ua, &mut a, &mut ub).await;
        ua.quit().await;
        ub.quit().await;
        // Restart the service on the same state and store.
        let Fleet {
            server,
            kit,
            tmp,
            rm,
            ..
        } = f;
        server.shutdown().await;
        let server = start(t, &tmp).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let f = Fleet {
            server,
            api,
            admin,
            rm,
            kit,
            tmp,
        };
        let c = f.get(&id).await;
        assert_eq!((c.state.as_str(), c.wave), ("running", 1));
        assert_eq!(state_of(&c, "RST-A"), "updated");
        assert_eq!(state_of(&c, "RST-B"), "downloading");
        // B reconnects: offered again in the same campaign, resumes and finishes.
        let mut ub = Updater::connect(&f.server, &b).await;
        let again = ub.expect_offer().await;
        assert_eq!(
            (again.campaign_id.as_str(), again.manifest.as_str()),
            (id.as_str(), offer_b.manifest.as_str())
        );
        assert_ne!(
            again.https.as_ref().unwrap().token,
            offer_b.https.as_ref().unwrap().token
        );
        assert!(ub.complete(&mut b, &again).await.updated);
        let c = f.wait(&id, 15, |c| c.state == "completed").await;
        assert_eq!(c.counts.updated, 2);
        ub.quit().await;
        f.server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_release_stops_its_campaign() {
    each_backend(async |t: &TestStore| {
        let f = fleet(t).await;
        let a = f.enroll("EXP-A", 120).await;
        let image = f.kit.image(v(2, 0, 0), 1, b"short-lived");
        let expires = castellan_store::unix_now() as u64 + 5;
        let manifest = manifest_expiring(&f.kit.release_key, 2, &image, expires);
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
        let mut ua = Updater::connect(&f.server, &a).await;
        let c = f.campaign(&request("sensor-v1-2", 1, &["100%"])).await;
        let offer = ua.expect_offer().await;
        ua.status(
            &offer.campaign_id,
            &offer.release_id,
            UpdateState::Accepted,
            0,
            None,
        )
        .await;
        // The device stalls; the release expires under the campaign.
        let c = f.wait(&c.campaign_id, 20, |c| c.state == "aborted").await;
        assert!(c.reason.as_deref().unwrap().contains("expired at"), "{c:?}");
        assert!(ua.cancel(Duration::from_secs(10)).await.is_some());
        let (status, body) = f
            .api
            .call(
                "POST",
                "/api/v1/campaigns",
                Some(&f.rm),
                Some(&serde_json::to_value(request("sensor-v1-2", 1, &["100%"])).unwrap()),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "campaign.release_expired", "{body}");
        ua.quit().await;
        f.server.shutdown().await;
    })
    .await;
}
