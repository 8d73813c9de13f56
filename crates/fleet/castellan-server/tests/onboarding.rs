//! Attested onboarding over MQTT with a real peer (paho-mqtt) and a simulated device whose
//! secure services produce the attestation token, on SQLite and PostgreSQL: an honest device
//! gets its LDevID and then operates with it; a wrong nonce, a token signed by another key, an
//! unexpected measurement and a replayed nonce are refused, with the reason in the answer, in
//! the registry and in the audit log.

mod common;

use std::time::Duration;

use castellan_server::ACTION_ONBOARD;
use castellan_store::testing::{TestStore, each_backend};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onboarding_accepted_with_a_correct_token_then_device_operates() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let mut dev = TestDevice::new("CSTL-0001", 1, tmp.path());
        let factory = register(&api, &admin, &mut dev).await;
        assert_eq!(factory.device_id, "CSTL-0001");
        castellan_pki::parse_certificate_pem(&factory.idevid_pem).unwrap();

        let result = onboard(&server, &mut dev, EvidenceKind::Honest).await;
        assert!(result.accepted, "refused: {:?}", result.reason);
        let policy = result.policy.unwrap();
        assert!(policy.publish.contains(&"dev/CSTL-0001/telemetry".to_string()));
        // Every filter is inside the device's own namespace (dev/CSTL-0001/…).
        assert!(policy.subscribe.iter().all(|f| {
            let levels: Vec<&str> = f.split('/').collect();
            levels.len() > 2 && levels[..2] == ["dev", "CSTL-0001"]
        }));
        let ldevid = castellan_pki::parse_certificate_pem(&result.ldevid_pem.unwrap()).unwrap();
        assert_eq!(ldevid.subject_common_name.as_deref(), Some("CSTL-0001"));

        // The registry: attestation passed, LDevID recorded.
        let (status, d) = api.call("GET", "/api/v1/devices/CSTL-0001", Some(&admin), None).await;
        assert_eq!(status, 200);
        assert_eq!(d["attestation"], "passed");
        assert_eq!(d["ldevid_serial"], ldevid.serial_hex());
        assert_eq!(d["lifecycle_name"], "secured");

        // Operation with the LDevID (mosquitto): telemetry reaches the registry.
        let telemetry = r#"{"ts":1,"uptime_s":5,"boot_count":1,"firmware":"1.2.3","temperature_c":21.5,"messages_sent":1}"#;
        let (ok, out) = peers::mosquitto_pub(
            server.mqtt_addr().port(),
            &server.paths().ca_bundle,
            Some((&dev.cert("ldevid"), &dev.key("ldevid"))),
            "CSTL-0001",
            "dev/CSTL-0001/telemetry",
            telemetry,
        )
        .await;
        assert!(ok, "LDevID publish failed: {out}");
        let mut got = serde_json::Value::Null;
        for _ in 0..50 {
            let (_, body) = api
                .call("GET", "/api/v1/devices/CSTL-0001/telemetry", Some(&admin), None)
                .await;
            if body.as_array().is_some_and(|a| !a.is_empty()) {
                got = body;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(got[0]["payload"]["temperature_c"], 21.5, "{got}");
        let (_, d) = api.call("GET", "/api/v1/devices/CSTL-0001", Some(&admin), None).await;
        assert!(d["last_seen"].as_i64().is_some());

        // The IDevID is for onboarding only: telemetry with it is refused.
        let (ok, _) = peers::mosquitto_pub(
            server.mqtt_addr().port(),
            &server.paths().ca_bundle,
            Some((&dev.cert("idevid"), &dev.key("idevid"))),
            "CSTL-0001",
            "dev/CSTL-0001/telemetry",
            telemetry,
        )
        .await;
        let _ = ok;
        assert!(audit_has_refusal(&server, "mqtt.publish", "topic outside the topic policy").await);
        let log = audit(&server).await;
        assert!(log.iter().any(|e| e.action == ACTION_ONBOARD
            && e.decision == castellan_store::Decision::Allowed
            && e.reason.contains("LDevID")));
        server.shutdown().await;
    })
    .await;
}

/// Onboarding with the evidence of `kind_of` is refused with the stable `code`; the registry
/// and the audit log hold the reason the device was given (the audit entry with the code).
async fn refused_with(
    kind_of: impl Fn(&std::path::Path) -> (TestDevice, EvidenceKind),
    code: &str,
) {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let (mut dev, kind) = kind_of(tmp.path());
        register(&api, &admin, &mut dev).await;
        let result = onboard(&server, &mut dev, kind).await;
        assert!(!result.accepted);
        assert!(result.ldevid_pem.is_none() && result.policy.is_none());
        let reason = result.reason.unwrap();
        assert_eq!(result.code.as_deref(), Some(code), "{reason}");
        let (_, d) = api
            .call(
                "GET",
                &format!("/api/v1/devices/{}", dev.serial),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(d["attestation"], "failed");
        assert_eq!(d["attestation_reason"], reason.as_str());
        assert!(d["ldevid_serial"].is_null());
        assert!(
            audit_has_coded_refusal(&server, ACTION_ONBOARD, code, &reason).await,
            "the refusal reason is not in the audit log"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_onboarding_token_over_wrong_nonce_refused() {
    refused_with(
        |dir| {
            (
                TestDevice::new("CSTL-0002", 2, dir),
                EvidenceKind::WrongNonce,
            )
        },
        "attestation.nonce_mismatch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_onboarding_token_signed_by_another_key_refused() {
    refused_with(
        |dir| {
            let other = TestDevice::new("OTHER-1", 99, dir);
            (
                TestDevice::new("CSTL-0003", 3, dir),
                EvidenceKind::OtherKey(Box::new(other)),
            )
        },
        "attestation.bad_signature",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_onboarding_with_unexpected_measurement_refused() {
    // The factory registers what the device ships with; the device then runs another image.
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let mut dev = TestDevice::new("CSTL-0004", 4, tmp.path());
        register(&api, &admin, &mut dev).await;
        dev.app_hash = [0xEE; 32];
        let result = onboard(&server, &mut dev, EvidenceKind::Honest).await;
        assert!(!result.accepted);
        // What the device (and its operator) reads.
        let reason = result.reason.unwrap();
        assert!(
            reason.contains("measurement") && reason.contains("APP"),
            "{reason}"
        );
        assert_eq!(
            result.code.as_deref(),
            Some("attestation.measurement_mismatch")
        );
        assert!(
            audit_has_coded_refusal(
                &server,
                ACTION_ONBOARD,
                "attestation.measurement_mismatch",
                &reason
            )
            .await
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_onboarding_replayed_evidence_refused() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let mut dev = TestDevice::new("CSTL-0005", 5, tmp.path());
        register(&api, &admin, &mut dev).await;
        let (first, token) = onboard_with_token(&server, &mut dev, EvidenceKind::Honest).await;
        assert!(first.accepted);
        // The recorded token, answered to a new challenge: its nonce was used up.
        let replay = onboard(&server, &mut dev, EvidenceKind::Replay(token)).await;
        assert!(!replay.accepted);
        let reason = replay.reason.unwrap();
        assert_eq!(
            replay.code.as_deref(),
            Some("attestation.nonce_mismatch"),
            "{reason}"
        );
        assert!(
            audit_has_coded_refusal(
                &server,
                ACTION_ONBOARD,
                "attestation.nonce_mismatch",
                &reason
            )
            .await
        );
        server.shutdown().await;
    })
    .await;
}
