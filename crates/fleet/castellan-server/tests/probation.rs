//! A healed device's probation judged by its own detector: during the probation, a signed
//! detection report whose score crossed the alarm threshold, or a replayed report, ends it; the
//! device stays quarantined and the step is audited. A clean report changes nothing.

mod common;

use std::time::Duration;

use castellan_protocol::{ReattestEvidence, WireMessage as _, topics};
use castellan_store::testing::TestStore;
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use common::update::*;
use common::*;
use serde_json::Value;

/// A fleet whose healed devices stay on probation for ten minutes (the test decides before).
async fn long_probation_fleet(t: &TestStore) -> Fleet {
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = instance_config(&t.location, &state_dir(&tmp));
    config.heal_probation = Duration::from_secs(600);
    let server = castellan_server::Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    fleet_on(server, api, admin, tmp).await
}

/// The device's LDevID session.
async fn session(f: &Fleet, dev: &TestDevice) -> MqttClient {
    let tls = tls_config(
        &f.server.paths().ca_bundle,
        &dev.cert("ldevid"),
        &dev.key("ldevid"),
    )
    .unwrap();
    MqttClient::connect(f.server.mqtt_addr(), tls, &dev.serial, 30)
        .await
        .expect("LDevID session")
}

async fn call(f: &Fleet, method: &str, path: &str) -> (u16, Value) {
    f.api.call(method, path, Some(&f.admin), None).await
}

/// The device's unresolved alert, as the registry holds it.
async fn alert_of(t: &TestStore, id: &str) -> castellan_store::Alert {
    t.store
        .unresolved_alert_of(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no alert of {id}"))
}

/// Once the device's detection reports listed by the API number `n`.
async fn until_listed(f: &Fleet, id: &str, n: usize) {
    for _ in 0..80 {
        let (status, body) = call(f, "GET", &format!("/api/v1/devices/{id}/detections")).await;
        assert_eq!(status, 200, "{body}");
        if body.as_array().map_or(0, Vec::len) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("fewer than {n} detection reports of {id} listed");
}

/// Quarantine `dev` (its open session is closed), heal it (reattest: its measurement was always
/// good), answer the command on a new session under the quarantine policy: the device is on
/// probation. Returns that session.
async fn on_probation(t: &TestStore, f: &Fleet, dev: &mut TestDevice) -> MqttClient {
    let id = dev.serial.clone();
    let (status, _) = call(f, "POST", &format!("/api/v1/devices/{id}/quarantine")).await;
    assert_eq!(status, 200);
    let mut s = session(f, dev).await;
    let (status, h) = call(f, "POST", &format!("/api/v1/devices/{id}/heal")).await;
    assert_eq!((status, h["heal"].as_str()), (202, Some("reattest")), "{h}");
    let nonce = h["nonce"].as_str().unwrap().to_string();
    let ev = ReattestEvidence {
        nonce: nonce.clone(),
        token: hex::encode(dev.token(&hex::decode(&nonce).unwrap())),
    };
    s.publish_qos1(&topics::reattested(&id), &ev.to_payload(), 1)
        .await
        .unwrap();
    until_audited(f, "response.heal", &id, "on probation").await;
    assert!(alert_of(t, &id).await.probation_until.is_some());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_detector_alarm_during_probation_puts_the_device_back_in_quarantine() {
    let t = TestStore::sqlite().await;
    let f = long_probation_fleet(&t).await;
    let mut dev = f.enroll("PRB-A", 91).await;
    let mut s = on_probation(&t, &f, &mut dev).await;
    // A quiet report: the probation runs on.
    let quiet = dev.detection_report(0);
    s.publish_qos1(&topics::detect_report("PRB-A"), &quiet, 1)
        .await
        .unwrap();
    until_listed(&f, "PRB-A", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alert_of(&t, "PRB-A").await.probation_until.is_some());
    // The compromise is back: the detector's report crosses its alarm threshold.
    let alarm = dev.detection_report(3);
    s.publish_qos1(&topics::detect_report("PRB-A"), &alarm, 1)
        .await
        .unwrap();
    let failed = until_audited(&f, "response.probation", "PRB-A", "alarm threshold").await;
    assert_eq!(failed.decision, castellan_store::Decision::Refused);
    assert_eq!(failed.code.as_deref(), Some("probation.failed"));
    let alert = alert_of(&t, "PRB-A").await;
    assert!(alert.probation_until.is_none(), "{alert:?}");
    assert_eq!(alert.severity, "high");
    assert!(
        alert.evidence.contains("detector_score"),
        "{}",
        alert.evidence
    );
    let (_, d) = call(&f, "GET", "/api/v1/devices/PRB-A").await;
    assert_eq!(d["quarantined"], true, "stays quarantined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_replayed_detection_report_during_probation_counts_against_the_device() {
    let t = TestStore::sqlite().await;
    let f = long_probation_fleet(&t).await;
    let mut dev = f.enroll("PRB-B", 92).await;
    let mut s = session(&f, &dev).await;
    let old = dev.detection_report(0);
    s.publish_qos1(&topics::detect_report("PRB-B"), &old, 1)
        .await
        .unwrap();
    until_listed(&f, "PRB-B", 1).await;
    drop(s);
    let mut s = on_probation(&t, &f, &mut dev).await;
    // The compromised normal world hides what its detector says by sending an old quiet report.
    s.publish_qos1(&topics::detect_report("PRB-B"), &old, 1)
        .await
        .unwrap();
    let failed = until_audited(&f, "response.probation", "PRB-B", "replayed").await;
    assert_eq!(failed.decision, castellan_store::Decision::Refused);
    assert!(alert_of(&t, "PRB-B").await.probation_until.is_none());
    let (_, d) = call(&f, "GET", "/api/v1/devices/PRB-B").await;
    assert_eq!(d["quarantined"], true);
}
