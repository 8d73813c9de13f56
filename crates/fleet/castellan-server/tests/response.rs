//! Analyse, then respond, on the real broker: six onboarded devices of one class are each
//! other's peers; one of them probes other devices' topics. The fleet's analysis raises a high
//! alert naming the signal, the device's value and its peers', quarantines the device at once
//! (its session closed; reconnected, it may publish only on the update channel), and audits both
//! steps with the evidence. The peers raise nothing.

mod common;

use std::time::Duration;

use castellan_pki::{KeyBackend, Pki};
use castellan_protocol::topics;
use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use common::{Api, Paho, TestDevice, audit, enrolled, service_identity, state_dir, tempdir};
use serde_json::Value;

/// A device's LDevID session.
async fn session(server: &castellan_server::ServerHandle, dev: &TestDevice) -> Option<MqttClient> {
    let tls = tls_config(
        &server.paths().ca_bundle,
        &dev.cert("ldevid"),
        &dev.key("ldevid"),
    )
    .unwrap();
    MqttClient::connect(server.mqtt_addr(), tls, &dev.serial, 30)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_topic_probing_device_is_alerted_and_quarantined_automatically() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let offline = castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = ServerConfig::new(state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.analysis_window = Duration::from_secs(2);
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let mut devices = Vec::new();
    for i in 0..6 {
        let serial = format!("CSTL-R{i}");
        devices.push(enrolled(&server, &api, &admin, &serial, 700 + i, tmp.path()).await);
    }
    // Everyone sends a little telemetry.
    for dev in &devices {
        let mut s = session(&server, dev).await.expect("LDevID session");
        s.publish_qos1(&topics::telemetry(&dev.serial), b"{\"t\":21}", 3)
            .await
            .unwrap();
        let _ = s.disconnect().await;
    }
    // An integration with a service identity listens to the fleet's alerts.
    let (cert, key) = service_identity(
        &Pki::init(&offline, KeyBackend::Files).unwrap(),
        "alerts",
        tmp.path(),
    );
    let mut integration = Paho::connect(
        server.mqtt_addr().port(),
        &server.paths().ca_bundle,
        &cert,
        &key,
        "svc:alerts",
        &[topics::FLEET_ALERTS.to_string()],
    );
    integration
        .wait_event("suback", Duration::from_secs(15))
        .await
        .expect("the integration's SUBACK");
    // CSTL-R5 probes its peers' topics (each refusal closes its session: it comes back).
    let prober = &devices[5];
    for i in 0..25 {
        if let Some(mut s) = session(&server, prober).await {
            let victim = format!("CSTL-R{}", i % 5);
            let _ = s.publish_qos1(&topics::telemetry(&victim), b"{}", 1).await;
        }
    }

    let alert = wait_for_alert(&api, &admin, "CSTL-R5").await;
    assert_eq!(alert["severity"], "high", "{alert}");
    assert_eq!(alert["kind"], "device");
    assert_eq!(alert["state"], "open");
    let evidence = alert["evidence"].as_array().unwrap();
    let probing = evidence
        .iter()
        .find(|e| e["signal"] == "refused_publishes")
        .unwrap_or_else(|| panic!("no refused_publishes evidence: {alert}"));
    assert!(probing["value"].as_f64().unwrap() >= 5.0, "{probing}");
    assert_eq!(probing["peers"], 6);
    assert!(probing["peer_median"].as_f64().unwrap() < 1.0, "{probing}");

    // The integration heard it on fleet/alerts, as the API shows it.
    let heard = integration
        .message_on(topics::FLEET_ALERTS, Duration::from_secs(15))
        .await
        .expect("no alert on fleet/alerts");
    let heard: Value = serde_json::from_str(&heard).unwrap();
    assert_eq!(
        (heard["alert_id"].clone(), heard["device_id"].clone()),
        (alert["alert_id"].clone(), Value::from("CSTL-R5"))
    );
    integration.quit().await;

    // Contained at once: quarantined in the registry, the audit trail says why.
    let (status, dev) = api
        .call("GET", "/api/v1/devices/CSTL-R5", Some(&admin), None)
        .await;
    assert_eq!(
        (status, dev["quarantined"].clone()),
        (200, Value::Bool(true))
    );
    let alert_id = alert["alert_id"].as_str().unwrap();
    let log = audit(&server).await;
    assert!(
        log.iter().any(|e| e.action == "alert.raise"
            && e.target == "CSTL-R5"
            && e.reason.contains(alert_id)
            && e.reason.contains("refused_publishes")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|e| e.action == "response.quarantine"
            && e.target == "CSTL-R5"
            && e.reason.contains(alert_id)),
        "{log:?}"
    );
    // Healing was started at once: its measurement matched its reference values (a run-time
    // compromise), so the heal policy sends the signed reboot-and-reattest command.
    assert!(
        log.iter().any(|e| e.action == "response.heal"
            && e.target == "CSTL-R5"
            && e.reason.contains(alert_id)
            && e.reason.contains("reboot-and-reattest command sent")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|e| e.action == "response.reattest"
            && e.target == "CSTL-R5"
            && e.actor == "system"),
        "{log:?}"
    );
    // Reconnected, the device may no longer publish telemetry (update channel only).
    let mut s = session(&server, prober).await.expect("quarantined session");
    let _ = s
        .publish_qos1(&topics::telemetry("CSTL-R5"), b"{}", 1)
        .await;
    let refused_own = wait_until(|| async {
        audit(&server).await.iter().any(|e| {
            e.action == "mqtt.publish"
                && e.actor == "CSTL-R5"
                && e.target == topics::telemetry("CSTL-R5")
        })
    })
    .await;
    assert!(
        refused_own,
        "the quarantined device's telemetry was not refused"
    );
    // The peers raised nothing.
    let (_, all) = api.call("GET", "/api/v1/alerts", Some(&admin), None).await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["device_id"].as_str())
        .collect();
    assert_eq!(ids, ["CSTL-R5"], "{all}");

    // An operator acknowledges, then resolves it; a resolved alert stays resolved.
    for (action, state) in [("acknowledge", "acknowledged"), ("resolve", "resolved")] {
        let (status, a) = api
            .call(
                "POST",
                &format!("/api/v1/alerts/{alert_id}/{action}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!((status, a["state"].as_str()), (200, Some(state)), "{a}");
    }
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/v1/alerts/{alert_id}/acknowledge"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 409);
    server.shutdown().await;
}

/// The first alert naming `device`, waiting up to 30 s.
async fn wait_for_alert(api: &Api, token: &str, device: &str) -> Value {
    for _ in 0..60 {
        let (status, all) = api.call("GET", "/api/v1/alerts", Some(token), None).await;
        assert_eq!(status, 200, "{all}");
        if let Some(a) = all
            .as_array()
            .and_then(|a| a.iter().find(|a| a["device_id"] == device))
        {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no alert for {device} within 30 s");
}

async fn wait_until<F, Fut>(mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..40 {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
