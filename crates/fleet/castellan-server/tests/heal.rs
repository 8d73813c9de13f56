//! Self-healing: a quarantined device is offered the last good release of its class (the
//! newest a campaign has updated a device to), installs it, attests its measurement over a
//! fresh nonce, goes on probation and leaves quarantine by itself; a device whose measurement
//! is the good one already (a run-time compromise) gets the signed reboot-and-reattest command
//! first, and its fresh token puts it on probation; a reattest that fails leaves the device
//! quarantined and goes on to the heal campaign.

mod common;

use std::time::Duration;

use castellan_protocol::{ReattestEvidence, WireMessage as _, topics};
use castellan_server::protocol::CampaignRequest;
use castellan_store::testing::TestStore;
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use common::update::*;
use common::*;
use serde_json::Value;

/// The device answers a reattest command: its token (as it boots now) over `nonce` (hex), on
/// its own LDevID session.
async fn answer_reattest(f: &Fleet, dev: &mut TestDevice, nonce: &str) {
    let tls = tls_config(
        &f.server.paths().ca_bundle,
        &dev.cert("ldevid"),
        &dev.key("ldevid"),
    )
    .unwrap();
    let mut s = MqttClient::connect(f.server.mqtt_addr(), tls, &dev.serial, 30)
        .await
        .expect("LDevID session");
    let ev = ReattestEvidence {
        nonce: nonce.into(),
        token: hex::encode(dev.token(&hex::decode(nonce).unwrap())),
    };
    s.publish_qos1(&topics::reattested(&dev.serial), &ev.to_payload(), 1)
        .await
        .unwrap();
}

async fn until_released(f: &Fleet, id: &str) {
    for _ in 0..80 {
        if device(f, id).await["quarantined"] == false {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{id} is still quarantined: {:#?}", audit(&f.server).await);
}

async fn device(f: &Fleet, id: &str) -> Value {
    let (status, body) = f
        .api
        .call(
            "GET",
            &format!("/api/v1/devices/{id}"),
            Some(&f.admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn call(f: &Fleet, method: &str, path: &str) -> (u16, Value) {
    f.api.call(method, path, Some(&f.admin), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quarantined_device_is_healed_with_the_last_good_release_then_released() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let mut a = f.enroll("HEAL-A", 40).await;
    let mut b = f.enroll("HEAL-B", 41).await;
    let (status, _) = call(&f, "POST", "/api/v1/devices/HEAL-A/quarantine").await;
    assert_eq!(status, 200);
    // Nothing is known good yet, and its last attestation matched its reference values: the
    // heal policy reboots and re-attests it first (it stays quarantined until it answers).
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-A/heal").await;
    assert_eq!(
        (status, body["heal"].as_str()),
        (202, Some("reattest")),
        "{body}"
    );
    // A reattest pending already is not sent twice.
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-A/heal").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("reattest.pending")),
        "{body}"
    );
    // 2.0.0 rolls out to the healthy peer (the quarantined device is skipped).
    let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
    let mut ub = Updater::connect(&f.server, &b).await;
    let c = f.campaign(&CampaignRequest::new(&rid, CLASS)).await;
    assert_eq!(c.devices.len(), 1, "{c:?}");
    let offer = ub.expect_offer().await;
    assert!(ub.complete(&mut b, &offer).await.updated);
    f.wait(&c.campaign_id, 15, |c| c.state == "completed").await;

    // Heal: the quarantined device alone is offered 2.0.0 over its update channel.
    let mut ua = Updater::connect(&f.server, &a).await;
    let (status, heal) = call(&f, "POST", "/api/v1/devices/HEAL-A/heal").await;
    assert_eq!(status, 201, "{heal}");
    assert_eq!(heal["heal"], "campaign");
    assert_eq!(heal["release_id"], rid.as_str());
    let ids: Vec<&str> = heal["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert_eq!(ids, ["HEAL-A"]);
    let offer = ua.expect_offer().await;
    let r = ua.complete(&mut a, &offer).await;
    assert!(r.updated, "{r:?}");
    assert_eq!(
        device(&f, "HEAL-A").await["quarantined"],
        true,
        "still on probation"
    );

    // The probation ends (1 s here): released, its alert resolved, every step audited.
    let mut released = false;
    for _ in 0..60 {
        if device(&f, "HEAL-A").await["quarantined"] == false {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(released, "HEAL-A is still quarantined after its probation");
    let log = audit(&f.server).await;
    let heal_entry = log
        .iter()
        .find(|e| e.action == "response.heal" && e.target == "HEAL-A")
        .unwrap_or_else(|| panic!("no response.heal: {log:?}"));
    assert!(heal_entry.reason.contains(&rid), "{}", heal_entry.reason);
    assert!(
        log.iter()
            .any(|e| e.action == "response.release" && e.target == "HEAL-A"),
        "{log:?}"
    );
    let (_, alerts) = call(&f, "GET", "/api/v1/alerts").await;
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["device_id"] == "HEAL-A")
        .unwrap();
    assert_eq!(alert["state"], "resolved", "{alert}");

    // A device that attests the good measurement already is not healed by an update: it is
    // rebooted and re-attested (tests below).
    let (status, _) = call(&f, "POST", "/api/v1/devices/HEAL-B/quarantine").await;
    assert_eq!(status, 200);
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-B/heal").await;
    assert_eq!(
        (status, body["heal"].as_str()),
        (202, Some("reattest")),
        "{body}"
    );
    // And a device that is not quarantined has nothing to heal.
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-A/heal").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("heal.not_quarantined")),
        "{body}"
    );
}

/// Two devices updated to 2.0.0 (the last good release); `id` is then quarantined.
async fn good_pair_one_quarantined(
    f: &Fleet,
    id: &str,
    peer: &str,
    seed: u64,
) -> (TestDevice, String) {
    let mut a = f.enroll(id, seed).await;
    let mut b = f.enroll(peer, seed + 1).await;
    let (rid, _) = f.release(2, v(2, 0, 0), 1).await;
    let mut ua = Updater::connect(&f.server, &a).await;
    let mut ub = Updater::connect(&f.server, &b).await;
    let c = f.campaign(&CampaignRequest::new(&rid, CLASS)).await;
    assert_eq!(c.devices.len(), 2, "{c:?}");
    for (u, d) in [(&mut ua, &mut a), (&mut ub, &mut b)] {
        let offer = u.expect_offer().await;
        assert!(u.complete(d, &offer).await.updated);
    }
    f.wait(&c.campaign_id, 15, |c| c.state == "completed").await;
    ua.quit().await;
    ub.quit().await;
    let (status, _) = call(f, "POST", &format!("/api/v1/devices/{id}/quarantine")).await;
    assert_eq!(status, 200);
    (a, rid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_time_compromise_is_rebooted_reattested_then_released() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let (mut a, _) = good_pair_one_quarantined(&f, "RA-A", "RA-B", 60).await;
    // Its measurement is the good release's: no campaign, the signed reattest command.
    let (status, h) = call(&f, "POST", "/api/v1/devices/RA-A/heal").await;
    assert_eq!((status, h["heal"].as_str()), (202, Some("reattest")), "{h}");
    let nonce = h["nonce"].as_str().unwrap().to_string();
    until_audited(&f, "response.reattest", "RA-A", "command sent").await;

    // A token over a nonce of the device's own choosing changes nothing.
    answer_reattest(&f, &mut a, &hex::encode([5u8; 32])).await;
    until_audited(
        &f,
        "response.reattest",
        "RA-A",
        "not the answer to a pending reattest",
    )
    .await;
    assert_eq!(device(&f, "RA-A").await["quarantined"], true);

    // The fresh token of the good image after the reboot: probation, then released.
    answer_reattest(&f, &mut a, &nonce).await;
    let ok = until_audited(
        &f,
        "response.reattest",
        "RA-A",
        "re-attested after a reboot",
    )
    .await;
    assert_eq!(ok.decision, castellan_store::Decision::Allowed);
    until_audited(&f, "response.heal", "RA-A", "on probation").await;
    until_released(&f, "RA-A").await;
    until_audited(&f, "response.release", "RA-A", "released from quarantine").await;
    // Answered once: the same token again is refused.
    answer_reattest(&f, &mut a, &nonce).await;
    let n = loop {
        let n = audit(&f.server)
            .await
            .iter()
            .filter(|e| {
                e.action == "response.reattest"
                    && e.target == "RA-A"
                    && e.code.as_deref() == Some("attestation.nonce_mismatch")
            })
            .count();
        if n >= 2 {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_reattest_leaves_the_device_quarantined_and_goes_on_to_the_heal_campaign() {
    let t = TestStore::sqlite().await;
    let f = fleet(&t).await;
    let (mut a, rid) = good_pair_one_quarantined(&f, "RF-A", "RF-B", 70).await;
    let (status, h) = call(&f, "POST", "/api/v1/devices/RF-A/heal").await;
    assert_eq!((status, h["heal"].as_str()), (202, Some("reattest")), "{h}");
    let nonce = h["nonce"].as_str().unwrap().to_string();
    // After the reboot the device measures another image (what the compromise left in flash):
    // an authentic token over the right nonce, but not the good image.
    let good_hash = a.app_hash;
    a.app_hash = [0x66; 32];
    answer_reattest(&f, &mut a, &nonce).await;
    let failed = until_audited(&f, "response.reattest", "RF-A", "reattest failed").await;
    assert_eq!(failed.decision, castellan_store::Decision::Refused);
    assert_eq!(
        failed.code.as_deref(),
        Some("attestation.measurement_mismatch")
    );
    assert_eq!(
        device(&f, "RF-A").await["quarantined"],
        true,
        "stays quarantined"
    );
    assert_eq!(device(&f, "RF-A").await["attestation"], "failed");
    // The heal campaign of the last good release follows, for that device alone, even though
    // the registry says it runs that release.
    let heal = until_audited(&f, "response.heal", "RF-A", "after the failed reattest").await;
    assert_eq!(
        heal.decision,
        castellan_store::Decision::Allowed,
        "{}",
        heal.reason
    );
    assert!(heal.reason.contains(&rid), "{}", heal.reason);
    let mut ua = Updater::connect(&f.server, &a).await;
    let offer = ua.expect_offer().await;
    let r = ua.complete(&mut a, &offer).await;
    assert!(r.updated, "{r:?}");
    assert_eq!(a.app_hash, good_hash, "the good image installed again");
    until_released(&f, "RF-A").await;
}
