//! The device side against the real fleet service (`castellan_server`, in process, SQLite,
//! built-in broker, free ports): factory provisioning over the HTTPS API, an IDevID that
//! `openssl verify` accepts, onboarding with an attestation token, telemetry the server stores,
//! reconnection with backoff after a server restart, and a device with replaced firmware refused
//! with the reason in the audit log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use castellan_agent::{
    AgentConfig, AgentError, Backoff, Endpoint, FirmwareKit, FleetApi, IdentityFiles, KeyChoice,
    ProvisionRequest, build_device,
};
use castellan_image::Version;
use castellan_server::{Server, ServerConfig, ServerHandle};
use serde_json::Value;

struct Fleet {
    server: ServerHandle,
    api: FleetApi,
    ca_bundle: PathBuf,
    state: PathBuf,
}

async fn start(state: &Path, ports: Option<(SocketAddr, SocketAddr)>) -> ServerHandle {
    castellan_testkit::fleet::hand_over_pki(state);
    let mut config = ServerConfig::new(state).with_ephemeral_ports();
    if let Some((api, mqtt)) = ports {
        config.api_listen = api;
        config.mqtt_listen = mqtt;
    }
    // A restarted server may wait a moment for its old ports.
    let mut last = None;
    for _ in 0..50 {
        match Server::start(config.clone()).await {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server does not start: {last:?}");
}

async fn fleet(dir: &Path) -> Fleet {
    let state = dir.join("state");
    let server = start(&state, None).await;
    let token = std::fs::read_to_string(&server.paths().admin_token_file).unwrap();
    let ca_bundle = server.paths().ca_bundle.clone();
    let api = FleetApi::new(
        &server.api_url(),
        &token,
        &std::fs::read_to_string(&ca_bundle).unwrap(),
    )
    .unwrap();
    Fleet {
        server,
        api,
        ca_bundle,
        state,
    }
}

async fn provision(fleet: &Fleet, dir: &Path, serial: &str) -> castellan_agent::ProvisionedDevice {
    let kit = FirmwareKit::load_or_create(&dir.join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = dir.join(serial);
    build_device(&dev, &kit).unwrap();
    let req = ProvisionRequest {
        serial: serial.into(),
        device_class: "sensor-v1".into(),
        keys: KeyChoice::CryptoService,
    };
    castellan_agent::provision_sim_device(&fleet.api, &dev, &req)
        .await
        .unwrap()
}

fn config(dev: &Path, mqtt: SocketAddr, count: u64) -> AgentConfig {
    let mut cfg = AgentConfig::new(
        dev,
        Endpoint::parse(&mqtt.to_string()).unwrap(),
        Arc::new(|l: &str| println!("agent: {l}")),
    );
    cfg.interval = Duration::from_millis(200);
    cfg.count = Some(count);
    cfg.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    cfg.max_failures = Some(40);
    cfg
}

async fn telemetry(api: &FleetApi, id: &str) -> Vec<Value> {
    api.get(&format!("/api/v1/devices/{id}/telemetry?limit=100"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_provisioning_registers_the_device_and_its_idevid_passes_openssl_verify() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let done = provision(&fleet, t.path(), "CSTL-0001").await;
    assert_eq!(done.device_id, "CSTL-0001");

    let device: Value = fleet.api.get("/api/v1/devices/CSTL-0001").await.unwrap();
    assert_eq!(device["device_class"], "sensor-v1");
    assert_eq!(device["lifecycle_name"], "secured");
    let registered = device["reference_measurements"].as_array().unwrap();
    assert_eq!(registered.len(), 2);
    for (r, m) in registered.iter().zip(&done.measurements) {
        assert_eq!(r["type"], m.sw_type.as_str());
        assert_eq!(r["digest"], m.digest.as_str());
    }

    let files = IdentityFiles::of(&t.path().join("CSTL-0001"));
    let (ok, out) = castellan_testkit::peers::openssl::verify(&fleet.ca_bundle, &files.idevid());
    assert!(ok, "openssl verify: {out}");

    // The same serial cannot be registered twice.
    let dev = t.path().join("CSTL-0001-again");
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    build_device(&dev, &kit).unwrap();
    let req = ProvisionRequest {
        serial: "CSTL-0001".into(),
        device_class: "sensor-v1".into(),
        keys: KeyChoice::CryptoService,
    };
    let err = castellan_agent::provision_sim_device(&fleet.api, &dev, &req)
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Http { status: 409, .. }), "{err}");
    fleet.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_onboards_and_its_telemetry_reaches_the_server() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    provision(&fleet, t.path(), "CSTL-0002").await;
    let dev = t.path().join("CSTL-0002");
    let report = castellan_agent::run(config(&dev, fleet.server.mqtt_addr(), 3))
        .await
        .unwrap();
    assert!(report.onboarded_now);
    assert_eq!(report.messages_sent, 3);

    let device: Value = fleet.api.get("/api/v1/devices/CSTL-0002").await.unwrap();
    assert_eq!(device["attestation"], "passed", "{device}");
    assert!(device["ldevid_serial"].is_string(), "{device}");
    let rows = telemetry(&fleet.api, "CSTL-0002").await;
    let newest = &rows.first().expect("no telemetry stored")["payload"];
    assert_eq!(newest["messages_sent"], 3, "{rows:?}");
    assert_eq!(newest["firmware"], "1.0.0");
    assert_eq!(newest["boot_count"], 1);
    // The secure side's detector signed a report on connect; the server verified it with the
    // registered attestation key and lists it.
    assert!(report.detection_reports >= 1, "{report:?}");
    let mut listed: Vec<Value> = Vec::new();
    for _ in 0..50 {
        listed = fleet
            .api
            .get("/api/v1/devices/CSTL-0002/detections")
            .await
            .unwrap();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.last().unwrap()["counter"], 1, "{listed:?}");
    assert_eq!(listed.last().unwrap()["crossed"], false, "{listed:?}");
    fleet.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_comes_back_with_backoff_after_a_server_restart() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    provision(&fleet, t.path(), "CSTL-0003").await;
    let dev = t.path().join("CSTL-0003");
    let ports = (fleet.server.api_addr(), fleet.server.mqtt_addr());
    let agent = tokio::spawn(castellan_agent::run(config(&dev, ports.1, 12)));

    // Wait for the first messages, then take the server away for a while.
    let mut seen = 0;
    for _ in 0..100 {
        seen = telemetry(&fleet.api, "CSTL-0003").await.len();
        if seen >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen >= 2, "no telemetry before the restart");
    let Fleet {
        server, api, state, ..
    } = fleet;
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let server = start(&state, Some(ports)).await;

    let report = tokio::time::timeout(Duration::from_secs(60), agent)
        .await
        .expect("the agent did not finish")
        .unwrap()
        .unwrap();
    assert_eq!(report.messages_sent, 12);
    assert!(report.connections >= 2, "{report:?}");
    assert!(report.reconnects >= 1, "{report:?}");
    // The restarted server (same store) has the messages sent after it came back.
    let rows = telemetry(&api, "CSTL-0003").await;
    assert_eq!(rows[0]["payload"]["messages_sent"], 12, "{rows:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_replaced_firmware_is_refused_with_the_reason_in_the_audit_log() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    provision(&fleet, t.path(), "CSTL-0004").await;
    let dev = t.path().join("CSTL-0004");
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    castellan_agent::device::replace_app(&dev, &kit.other_app(b"implant").unwrap()).unwrap();

    let err = castellan_agent::run(config(&dev, fleet.server.mqtt_addr(), 1))
        .await
        .unwrap_err();
    let AgentError::OnboardingRefused { code, reason } = err else {
        panic!("expected a refusal, got {err}");
    };
    assert_eq!(
        code.as_deref(),
        Some("attestation.measurement_mismatch"),
        "{reason}"
    );
    assert!(!IdentityFiles::of(&dev).ldevid().exists());

    fleet.server.flush_audit().await;
    let audit: Vec<Value> = fleet.api.get("/api/v1/audit?limit=1000").await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e["target"] == "CSTL-0004" && e["decision"] == "refused")
        .unwrap_or_else(|| panic!("no refusal for CSTL-0004 in the audit log: {audit:?}"));
    assert_eq!(entry["reason"], reason.as_str());
    assert_eq!(entry["code"], "attestation.measurement_mismatch");
    let device: Value = fleet.api.get("/api/v1/devices/CSTL-0004").await.unwrap();
    assert_eq!(device["attestation"], "failed");
    fleet.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_moves_to_the_next_broker_when_the_first_is_unreachable() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    provision(&fleet, t.path(), "CSTL-0006").await;
    let dev = t.path().join("CSTL-0006");
    // A port nobody listens on (bound, then released).
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(&dev, dead, 2);
    cfg.mqtt_fallbacks = vec![Endpoint::parse(&fleet.server.mqtt_addr().to_string()).unwrap()];
    // A backoff that would make the test time out: moving on must not wait for it.
    cfg.backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
    let report = tokio::time::timeout(Duration::from_secs(45), castellan_agent::run(cfg))
        .await
        .expect("the agent waited instead of moving to the next broker")
        .unwrap();
    assert!(report.onboarded_now);
    assert_eq!(report.messages_sent, 2);
    assert!(report.reconnects >= 1, "{report:?}");
    assert_eq!(report.connections, 1, "{report:?}");
    fleet.server.shutdown().await;
}
