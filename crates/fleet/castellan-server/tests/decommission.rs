//! The server's side of the signed decommission, on the real broker with a test device that
//! answers by hand: the final token is accepted once (a replayed one is refused and audited),
//! a token over another nonce or still showing a secured lifecycle is refused, a device that
//! never answers is recorded as "decommission unconfirmed" and revoked all the same, and a
//! decommissioned device can never onboard again. (The whole path with the simulated agent:
//! `castellan-agent/tests/decommission.rs`.)

mod common;

use std::time::Duration;

use castellan_protocol::{DecommissionCommand, ErasureEvidence, WireMessage as _, topics};
use castellan_server::{Server, ServerConfig};
use castellan_store::testing::TestStore;
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use common::{Api, TestDevice, audit, enrolled, state_dir, tempdir};
use serde_json::{Value, json};

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

async fn decommission_entries(
    server: &castellan_server::ServerHandle,
    id: &str,
) -> Vec<(bool, String, Option<String>)> {
    audit(server)
        .await
        .into_iter()
        .filter(|e| e.action == "device.decommission" && e.target == id)
        .map(|e| {
            (
                e.decision == castellan_store::Decision::Allowed,
                e.reason.clone(),
                e.code.clone(),
            )
        })
        .collect()
}

async fn wait_until<F: Fn(&[(bool, String, Option<String>)]) -> bool>(
    server: &castellan_server::ServerHandle,
    id: &str,
    f: F,
) -> Vec<(bool, String, Option<String>)> {
    for _ in 0..100 {
        let e = decommission_entries(server, id).await;
        if f(&e) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id}: {:#?}", decommission_entries(server, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_replayed_final_token_refused_and_onboarding_after_decommission_refused() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = ServerConfig::new(state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.decommission_approval = false;
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let mut dev = enrolled(&server, &api, &admin, "CSTL-X1", 901, tmp.path()).await;
    let (status, sent) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X1/decommission",
            Some(&admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "sent");
    let nonce = hex::decode(sent["nonce"].as_str().unwrap()).unwrap();

    let mut s = session(&server, &dev).await.expect("LDevID session");
    // A token still showing the secured lifecycle (the device did not erase itself).
    let secured = ErasureEvidence {
        nonce: hex::encode(&nonce),
        token: hex::encode(dev.token(&nonce)),
    };
    s.publish_qos1(&topics::erased("CSTL-X1"), &secured.to_payload(), 1)
        .await
        .unwrap();
    wait_until(&server, "CSTL-X1", |e| {
        e.iter()
            .any(|(_, _, c)| c.as_deref() == Some("attestation.lifecycle"))
    })
    .await;
    // The device erases itself; a token over a nonce of its own choosing is refused.
    dev.erase();
    let other = ErasureEvidence {
        nonce: hex::encode([9u8; 32]),
        token: hex::encode(dev.token(&[9u8; 32])),
    };
    s.publish_qos1(&topics::erased("CSTL-X1"), &other.to_payload(), 1)
        .await
        .unwrap();
    wait_until(&server, "CSTL-X1", |e| {
        e.iter()
            .any(|(_, _, c)| c.as_deref() == Some("attestation.nonce_mismatch"))
    })
    .await;
    // The genuine final token, sent twice: accepted once, the replay refused.
    let genuine = ErasureEvidence {
        nonce: hex::encode(&nonce),
        token: hex::encode(dev.token(&nonce)),
    };
    s.publish_qos1(&topics::erased("CSTL-X1"), &genuine.to_payload(), 1)
        .await
        .unwrap();
    let _ = s
        .publish_qos1(&topics::erased("CSTL-X1"), &genuine.to_payload(), 1)
        .await;
    let entries = wait_until(&server, "CSTL-X1", |e| {
        e.iter()
            .any(|(ok, r, _)| *ok && r.contains("final token sha256"))
            && e.iter()
                .filter(|(_, _, c)| c.as_deref() == Some("attestation.nonce_mismatch"))
                .count()
                >= 2
    })
    .await;
    let proofs: Vec<_> = entries
        .iter()
        .filter(|(ok, r, _)| *ok && r.contains("final token sha256"))
        .collect();
    assert_eq!(proofs.len(), 1, "{entries:#?}");
    assert!(proofs[0].1.contains("revoked"), "{entries:#?}");

    let (_, d) = api
        .call("GET", "/api/v1/devices/CSTL-X1", Some(&admin), None)
        .await;
    assert_eq!(d["lifecycle_name"], "decommissioned", "{d}");
    assert_eq!(d["revoked"], true, "{d}");
    // Its LDevID is refused too.
    assert!(
        session(&server, &dev).await.is_none(),
        "a decommissioned device connected"
    );
    // attack: onboarding after decommission is refused: the IDevID session itself is.
    let tls = tls_config(
        &server.paths().ca_bundle,
        &dev.cert("idevid"),
        &dev.key("idevid"),
    )
    .unwrap();
    let idevid = MqttClient::connect(server.mqtt_addr(), tls, &dev.serial, 30).await;
    assert!(
        idevid.is_err(),
        "a decommissioned device connected to onboard"
    );
    let refused: Vec<_> = audit(&server)
        .await
        .into_iter()
        .filter(|e| {
            e.decision == castellan_store::Decision::Refused && e.action.starts_with("mqtt")
        })
        .map(|e| format!("{} {} {}", e.action, e.target, e.reason))
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r.contains("Manufacturer CA") && r.contains("cessationOfOperation")),
        "{refused:#?}"
    );
    let (status, again): (u16, Value) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X1/decommission",
            Some(&admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_that_never_answers_is_decommission_unconfirmed_and_revoked() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let mut config = ServerConfig::new(state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    config.decommission_timeout = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let _dev = enrolled(&server, &api, &admin, "CSTL-X2", 902, tmp.path()).await;
    // Two operators: the admin asks, a second operator approves.
    let (_, op) = api
        .call(
            "POST",
            "/api/v1/operators",
            Some(&admin),
            Some(&json!({"name": "ops-2", "role": "operator"})),
        )
        .await;
    let second = op["token"].as_str().unwrap().to_string();
    let (status, first) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X2/decommission",
            Some(&admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    assert!(decommission_entries(&server, "CSTL-X2").await.is_empty());
    let (status, sent) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X2/decommission",
            Some(&second),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    // The command is a real signed command (what a device would check).
    let cmd_nonce = sent["nonce"].as_str().unwrap().to_string();
    let _ = DecommissionCommand::parse(b"{}").unwrap_err();
    let entries = wait_until(&server, "CSTL-X2", |e| {
        e.iter()
            .any(|(ok, r, _)| !*ok && r.contains("decommission unconfirmed"))
    })
    .await;
    assert!(
        entries.iter().any(|(_, r, _)| r.contains(&cmd_nonce)),
        "{entries:#?}"
    );
    let (_, d) = api
        .call("GET", "/api/v1/devices/CSTL-X2", Some(&admin), None)
        .await;
    assert_eq!(d["lifecycle_name"], "decommissioned", "{d}");
    assert_eq!(d["revoked"], true, "{d}");
    server.shutdown().await;
}
