//! The server's side of the signed decommission, on the real broker with a test device that
//! answers by hand: the final token is accepted once (a replayed one is refused and audited),
//! a token over another nonce or still showing a secured lifecycle is refused, a device that
//! never answers is recorded as "decommission unconfirmed" and revoked all the same, a
//! decommissioned device can never onboard again, only two decommissioners may decommission
//! (not an admin, not an operator), and a request waiting for its approval and a command
//! waiting for the device's answer (a decommission, a reattest) survive restarts. (The whole path with the simulated agent:
//! `castellan-agent/tests/decommission.rs`.)

mod common;

use std::time::Duration;

use castellan_protocol::{
    DecommissionCommand, ErasureEvidence, ReattestEvidence, WireMessage as _, topics,
};
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

/// A new operator `name` with the decommissioner role; its token.
async fn decommissioner(api: &Api, admin: &str, name: &str) -> String {
    let (status, op) = api
        .call(
            "POST",
            "/api/v1/operators",
            Some(admin),
            Some(&json!({"name": name, "role": "decommissioner"})),
        )
        .await;
    assert_eq!(status, 201, "{op}");
    op["token"].as_str().unwrap().to_string()
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
    let dec = decommissioner(&api, &admin, "dec-1").await;
    let (status, sent) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X1/decommission",
            Some(&dec),
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
            Some(&dec),
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
    // Neither an admin nor an operator may ask: decommissioners only.
    let (_, op) = api
        .call(
            "POST",
            "/api/v1/operators",
            Some(&admin),
            Some(&json!({"name": "ops-2", "role": "operator"})),
        )
        .await;
    let operator = op["token"].as_str().unwrap().to_string();
    for token in [&admin, &operator] {
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/CSTL-X2/decommission",
                Some(token),
                Some(&json!({})),
            )
            .await;
        assert_eq!(status, 403, "{body}");
    }
    // Two decommissioners: the first asks, the second approves.
    let first_dec = decommissioner(&api, &admin, "dec-1").await;
    let second = decommissioner(&api, &admin, "dec-2").await;
    let (status, first) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X2/decommission",
            Some(&first_dec),
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

async fn restart(
    server: castellan_server::ServerHandle,
    config: &dyn Fn() -> ServerConfig,
) -> (castellan_server::ServerHandle, Api) {
    server.shutdown().await;
    let server = Server::start(config()).await.unwrap();
    let api = Api::new(&server);
    (server, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decommission_request_and_pending_commands_survive_restarts() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let config = || {
        ServerConfig::new(state_dir(&tmp))
            .with_ephemeral_ports()
            .with_database(t.location.clone())
    };
    let server = Server::start(config()).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let mut dev = enrolled(&server, &api, &admin, "CSTL-X3", 903, tmp.path()).await;
    let mut other = enrolled(&server, &api, &admin, "CSTL-X4", 904, tmp.path()).await;
    let d1 = decommissioner(&api, &admin, "dec-1").await;
    let d2 = decommissioner(&api, &admin, "dec-2").await;
    let (status, first) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X3/decommission",
            Some(&d1),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    // A reattest is sent to the other device (quarantined, its measurement matched).
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X4/quarantine",
            Some(&admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, heal) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X4/heal",
            Some(&admin),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        (status, heal["heal"].as_str()),
        (202, Some("reattest")),
        "{heal}"
    );
    let reattest_nonce = heal["nonce"].as_str().unwrap().to_string();

    // Restart between the request and its approval: the second decommissioner approves.
    let (server, api) = restart(server, &config).await;
    let (status, sent) = api
        .call(
            "POST",
            "/api/v1/devices/CSTL-X3/decommission",
            Some(&d2),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (sent["requested_by"].as_str(), sent["approved_by"].as_str()),
        (Some("dec-1"), Some("dec-2"))
    );
    let nonce = hex::decode(sent["nonce"].as_str().unwrap()).unwrap();

    // Restart between the approval and the device's answer: the new instance takes the proof.
    let (server, _api) = restart(server, &config).await;
    dev.erase();
    let mut s = session(&server, &dev).await.expect("LDevID session");
    let genuine = ErasureEvidence {
        nonce: hex::encode(&nonce),
        token: hex::encode(dev.token(&nonce)),
    };
    s.publish_qos1(&topics::erased("CSTL-X3"), &genuine.to_payload(), 1)
        .await
        .unwrap();
    let entries = wait_until(&server, "CSTL-X3", |e| {
        e.iter()
            .any(|(ok, r, _)| *ok && r.contains("final token sha256"))
    })
    .await;
    assert!(
        entries
            .iter()
            .any(|(_, r, _)| r.contains("dec-1+dec-2")
                || r.contains("signed decommission command sent")),
        "{entries:#?}"
    );
    // And the reattest sent two restarts ago is answered on this one.
    let mut s = session(&server, &other).await.expect("LDevID session");
    let ev = ReattestEvidence {
        nonce: reattest_nonce.clone(),
        token: hex::encode(other.token(&hex::decode(&reattest_nonce).unwrap())),
    };
    s.publish_qos1(&topics::reattested("CSTL-X4"), &ev.to_payload(), 1)
        .await
        .unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if audit(&server).await.iter().any(|e| {
            e.action == "response.reattest"
                && e.target == "CSTL-X4"
                && e.decision == castellan_store::Decision::Allowed
                && e.reason.contains("re-attested after a reboot")
        }) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "{:#?}", audit(&server).await);
    server.shutdown().await;
}
