//! Self-healing: a quarantined device is offered the last good release of its class (the
//! newest a campaign has updated a device to), installs it, attests its measurement over a
//! fresh nonce, goes on probation and leaves quarantine by itself; a device whose measurement
//! is the good one already is not "healed" by an update (a run-time compromise); nothing is
//! healed before a release is known good.

mod common;

use std::time::Duration;

use castellan_server::protocol::CampaignRequest;
use castellan_store::testing::TestStore;
use common::update::*;
use common::*;
use serde_json::Value;

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
    // Nothing is known good yet.
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-A/heal").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("heal.no_good_release")),
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

    // A device that attests the good measurement already is not healed by an update.
    let (status, _) = call(&f, "POST", "/api/v1/devices/HEAL-B/quarantine").await;
    assert_eq!(status, 200);
    let (status, body) = call(&f, "POST", "/api/v1/devices/HEAL-B/heal").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("heal.measurement_already_good")),
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
