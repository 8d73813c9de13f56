//! The signed decommission on the real broker: a simulated device (secure world and agent)
//! onboards; two decommissioners ask for its decommission (the first request alone sends nothing);
//! the device verifies the command against its factory root, its secure services crypto-erase
//! it, and its final attestation token is the server's proof of erasure; its certificates are
//! revoked and onboarding is refused afterwards. A forged command changes nothing on the
//! device. (The server's side of replayed tokens and silent devices:
//! `castellan-server/tests/decommission.rs`.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use castellan_agent::{
    AgentConfig, Backoff, Endpoint, FirmwareKit, FleetApi, IdentityFiles, KeyChoice,
    ProvisionRequest, build_device,
};
use castellan_image::Version;
use castellan_protocol::{DecommissionCommand, WireMessage as _};
use castellan_server::{Server, ServerConfig, ServerHandle};
use serde_json::{Value, json};

async fn start(state: &Path, timeout: Duration) -> (ServerHandle, FleetApi) {
    castellan_testkit::fleet::hand_over_pki(state);
    let mut config = ServerConfig::new(state).with_ephemeral_ports();
    config.decommission_timeout = timeout;
    let server = Server::start(config).await.unwrap();
    let token = std::fs::read_to_string(&server.paths().admin_token_file).unwrap();
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).unwrap();
    let api = FleetApi::new(&server.api_url(), &token, &ca).unwrap();
    (server, api)
}

async fn decommissioner(server: &ServerHandle, api: &FleetApi, name: &str) -> FleetApi {
    let made: Value = api
        .post(
            "/api/v1/operators",
            &json!({"name": name, "role": "decommissioner"}),
        )
        .await
        .unwrap();
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).unwrap();
    FleetApi::new(&server.api_url(), made["token"].as_str().unwrap(), &ca).unwrap()
}

async fn provision(api: &FleetApi, dir: &Path, serial: &str) -> std::path::PathBuf {
    let kit = FirmwareKit::load_or_create(&dir.join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = dir.join(serial);
    build_device(&dev, &kit).unwrap();
    let req = ProvisionRequest {
        serial: serial.into(),
        device_class: "sensor-v1".into(),
        keys: KeyChoice::CryptoService,
    };
    castellan_agent::provision_sim_device(api, &dev, &req)
        .await
        .unwrap();
    dev
}

fn config(dev: &Path, mqtt: SocketAddr, count: Option<u64>) -> AgentConfig {
    let mut cfg = AgentConfig::new(
        dev,
        Endpoint::parse(&mqtt.to_string()).unwrap(),
        Arc::new(|l: &str| println!("agent: {l}")),
    );
    cfg.interval = Duration::from_millis(200);
    cfg.count = count;
    cfg.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    cfg.max_failures = Some(5);
    cfg
}

async fn audit(api: &FleetApi, id: &str) -> Vec<Value> {
    let all: Value = api.get("/api/v1/audit?limit=1000").await.unwrap();
    let entries = all
        .get("entries")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| all.as_array().cloned())
        .unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| e["action"] == "device.decommission" && e["target"] == id)
        .collect()
}

async fn wait_for<F: Fn(&[Value]) -> bool>(api: &FleetApi, id: &str, f: F) -> Vec<Value> {
    for _ in 0..150 {
        let a = audit(api, id).await;
        if f(&a) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("audit of {id}: {:#?}", audit(api, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decommission_with_two_operators_erases_the_device_and_records_its_proof() {
    let t = tempfile::tempdir().unwrap();
    let (server, api) = start(&t.path().join("state"), Duration::from_secs(60)).await;
    let first = decommissioner(&server, &api, "first-decommissioner").await;
    let second = decommissioner(&server, &api, "second-decommissioner").await;
    let dev = provision(&api, t.path(), "CSTL-D1").await;
    // Onboard and stay connected.
    let agent = tokio::spawn(castellan_agent::run(config(&dev, server.mqtt_addr(), None)));
    for _ in 0..100 {
        let d: Value = api.get("/api/v1/devices/CSTL-D1").await.unwrap();
        if d["onboarded_at"].is_i64() && d["last_seen"].is_i64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // One decommissioner alone sends nothing, however often they ask.
    for _ in 0..2 {
        let r: Value = first
            .post("/api/v1/devices/CSTL-D1/decommission", &json!({}))
            .await
            .unwrap();
        assert_eq!(r["status"], "awaiting_approval", "{r}");
    }
    // The second decommissioner's request sends the signed command.
    let r: Value = second
        .post("/api/v1/devices/CSTL-D1/decommission", &json!({}))
        .await
        .unwrap();
    assert_eq!(r["status"], "sent", "{r}");
    assert_eq!(r["approved_by"], "second-decommissioner");

    // The device verifies it, erases itself and answers; the agent stops.
    let report = tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("the agent stops after the decommission")
        .unwrap()
        .unwrap();
    assert!(report.decommissioned);
    let entries = wait_for(&api, "CSTL-D1", |a| {
        a.iter().any(|e| {
            e["reason"]
                .as_str()
                .unwrap_or("")
                .contains("final token sha256")
        })
    })
    .await;
    let proof = entries
        .iter()
        .find(|e| e["reason"].as_str().unwrap().contains("final token sha256"))
        .unwrap();
    assert_eq!(proof["decision"], "allowed", "{proof}");
    let d: Value = api.get("/api/v1/devices/CSTL-D1").await.unwrap();
    assert_eq!(d["lifecycle_name"], "decommissioned", "{d}");
    assert_eq!(d["revoked"], true, "{d}");

    // The device's storage is gone: its secure services refuse every asset.
    let world = castellan_agent::SecureWorld::power_on(&dev);
    assert!(world.is_err(), "a decommissioned device boots nothing");

    // attack: onboarding after decommission refused (the IDevID session is refused at once).
    let files = IdentityFiles::of(&dev);
    std::fs::remove_file(files.ldevid()).unwrap();
    let again = castellan_agent::run(config(&dev, server.mqtt_addr(), Some(1))).await;
    assert!(again.is_err(), "a decommissioned device onboarded again");

    // A second decommission is refused: it is for good.
    let err = first
        .post::<_, Value>("/api/v1/devices/CSTL-D1/decommission", &json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("409"), "{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_forged_decommission_command_refused_by_the_device() {
    use castellan_agent::decommission::{CommandRefusal, verify};
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let offline = castellan_testkit::fleet::hand_over_pki(&state);
    let mut config = ServerConfig::new(&state).with_ephemeral_ports();
    config.decommission_timeout = Duration::from_secs(60);
    let server = Server::start(config).await.unwrap();
    let token = std::fs::read_to_string(&server.paths().admin_token_file).unwrap();
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).unwrap();
    let api = FleetApi::new(&server.api_url(), &token, &ca).unwrap();
    let dev = provision(&api, t.path(), "CSTL-D2").await;
    let agent = tokio::spawn(castellan_agent::run(config_for(&dev, server.mqtt_addr())));
    for _ in 0..100 {
        let d: Value = api.get("/api/v1/devices/CSTL-D2").await.unwrap();
        if d["last_seen"].is_i64() && d["onboarded_at"].is_i64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files = IdentityFiles::of(&dev);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let op_ca = castellan_x509::parse_certificate_pem(
        &std::fs::read_to_string(files.ldevid_chain()).unwrap(),
    )
    .unwrap();
    // Signed by a key of the forger's, presenting the real operational CA certificate.
    let forger = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let mut forged = DecommissionCommand {
        device_id: "CSTL-D2".into(),
        nonce: hex::encode([7u8; 32]),
        issued_at: now,
        expires_at: now + 60,
        signer_cert: hex::encode(&op_ca.der),
        signature: String::new(),
    };
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&forger, &forged.signed_bytes());
    forged.signature = hex::encode(sig.to_bytes());
    assert_eq!(
        verify(&forged, "CSTL-D2", &files, now),
        Err(CommandRefusal::BadSignature)
    );
    // Signed by another CA of the same root (the service CA, whose key the forger holds in
    // this drill): not the CA that issued the device's LDevID.
    let pki = castellan_pki::Pki::init(&offline, castellan_pki::KeyBackend::Files).unwrap();
    let svc_ca = pki
        .ca_certificate(castellan_pki::CaKind::Service)
        .der
        .clone();
    let wrong_ca = DecommissionCommand {
        signer_cert: hex::encode(svc_ca),
        ..forged.clone()
    };
    assert!(matches!(
        verify(&wrong_ca, "CSTL-D2", &files, now),
        Err(CommandRefusal::SignerNotOperationalCa(_))
    ));
    // Another device's command, an expired one.
    let other = DecommissionCommand {
        device_id: "CSTL-OTHER".into(),
        ..forged.clone()
    };
    assert!(matches!(
        verify(&other, "CSTL-D2", &files, now),
        Err(CommandRefusal::WrongDevice(_))
    ));
    let expired = DecommissionCommand {
        expires_at: now - 1,
        ..forged.clone()
    };
    assert!(matches!(
        verify(&expired, "CSTL-D2", &files, now),
        Err(CommandRefusal::NotValidNow { .. })
    ));

    // Delivered over the broker by a service identity (which may publish commands, but holds
    // no CA key), the forged command changes nothing: the device keeps running, secured.
    let creds = pki.issue_service_client_cert("forger").unwrap();
    let cert = t.path().join("forger.pem");
    let key = t.path().join("forger.key");
    std::fs::write(
        &cert,
        format!("{}{}", creds.certificate.pem, creds.chain_pem),
    )
    .unwrap();
    std::fs::write(&key, creds.key_pem.as_bytes()).unwrap();
    let tls =
        castellan_testkit::mqtt_client::tls_config(&server.paths().ca_bundle, &cert, &key).unwrap();
    let mut svc = castellan_testkit::mqtt_client::MqttClient::connect(
        server.mqtt_addr(),
        tls,
        "svc:forger",
        30,
    )
    .await
    .unwrap();
    for cmd in [&forged, &wrong_ca] {
        svc.publish_qos1(
            &castellan_protocol::topics::decommission("CSTL-D2"),
            &cmd.to_payload(),
            1,
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!agent.is_finished(), "a forged command stopped the device");
    let d: Value = api.get("/api/v1/devices/CSTL-D2").await.unwrap();
    assert_eq!(d["lifecycle_name"], "secured", "{d}");
    agent.abort();
    server.shutdown().await;
}

fn config_for(dev: &Path, mqtt: SocketAddr) -> AgentConfig {
    config(dev, mqtt, None)
}
