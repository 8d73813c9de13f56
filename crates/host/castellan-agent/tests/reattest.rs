//! The signed reboot-and-reattest on the real broker: a simulated device (secure world and
//! agent) whose application misbehaves at run time is quarantined and healed; its measurement
//! is the good one, so the service sends the signed reattest command; the device checks it,
//! reboots (the run-time compromise is gone), attests over the command's nonce, goes on
//! probation and is released. A forged command, or a genuine decommission signature presented
//! as a reattest command, changes nothing on the device.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_agent::compromise::{Behaviour, Compromise};
use castellan_agent::{
    AgentConfig, Backoff, Endpoint, FirmwareKit, FleetApi, IdentityFiles, KeyChoice,
    ProvisionRequest, build_device,
};
use castellan_image::Version;
use castellan_protocol::{ReattestCommand, SignedCommand as _, WireMessage as _};
use castellan_server::{Server, ServerConfig, ServerHandle};
use serde_json::{Value, json};

async fn start(state: &Path) -> (ServerHandle, FleetApi, std::path::PathBuf) {
    let offline = castellan_testkit::fleet::hand_over_pki(state);
    let mut config = ServerConfig::new(state).with_ephemeral_ports();
    config.analysis_window = Duration::from_secs(1);
    config.heal_probation = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let token = std::fs::read_to_string(&server.paths().admin_token_file).unwrap();
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).unwrap();
    let api = FleetApi::new(&server.api_url(), &token, &ca).unwrap();
    (server, api, offline)
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

type Lines = Arc<Mutex<Vec<String>>>;

fn config(dev: &Path, mqtt: SocketAddr, lines: &Lines) -> AgentConfig {
    let lines = lines.clone();
    let mut cfg = AgentConfig::new(
        dev,
        Endpoint::parse(&mqtt.to_string()).unwrap(),
        Arc::new(move |l: &str| {
            println!("agent: {l}");
            lines.lock().unwrap().push(l.to_string());
        }),
    );
    cfg.interval = Duration::from_millis(200);
    cfg.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
    cfg.max_failures = Some(10);
    cfg
}

fn logged(lines: &Lines, needle: &str) -> usize {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

async fn online(api: &FleetApi, id: &str) {
    for _ in 0..100 {
        let d: Value = api.get(&format!("/api/v1/devices/{id}")).await.unwrap();
        if d["onboarded_at"].is_i64() && d["last_seen"].is_i64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_time_compromise_is_rebooted_away_reattested_and_released() {
    let t = tempfile::tempdir().unwrap();
    let (server, api, _) = start(&t.path().join("state")).await;
    let dev = provision(&api, t.path(), "CSTL-R1").await;
    let lines: Lines = Arc::default();
    let compromise = Arc::new(Compromise::default());
    let mut cfg = config(&dev, server.mqtt_addr(), &lines);
    cfg.compromise = Some(compromise.clone());
    let agent = tokio::spawn(castellan_agent::run(cfg));
    online(&api, "CSTL-R1").await;
    compromise.set(Behaviour::ProbeTopics);

    let _: Value = api
        .post("/api/v1/devices/CSTL-R1/quarantine", &json!({}))
        .await
        .unwrap();
    // The session is closed; the device comes back with its quarantined policy.
    for _ in 0..50 {
        if logged(&lines, "quarantined: command channel refused") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged(&lines, "quarantined: command channel refused"), 1);
    let h: Value = api
        .post("/api/v1/devices/CSTL-R1/heal", &json!({}))
        .await
        .unwrap();
    assert_eq!(h["heal"], "reattest", "{h}");

    // The device checks the command, reboots, attests; probation, then released.
    let mut released = false;
    for _ in 0..120 {
        let d: Value = api.get("/api/v1/devices/CSTL-R1").await.unwrap();
        if d["quarantined"] == false {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if !released {
        let audit: Value = api.get("/api/v1/audit?limit=1000").await.unwrap();
        panic!("{:#?}\n{audit:#}", lines.lock().unwrap());
    }
    assert_eq!(logged(&lines, "reattest command verified"), 1);
    assert_eq!(logged(&lines, "rebooting to re-attest"), 1);
    assert_eq!(logged(&lines, "fresh attestation token sent"), 1);
    assert_eq!(
        compromise.get(),
        Behaviour::Healthy,
        "the reboot ended the run-time compromise"
    );
    agent.abort();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_forged_reattest_command_refused() {
    use castellan_agent::decommission::CommandRefusal;
    use castellan_agent::reattest::check;
    let t = tempfile::tempdir().unwrap();
    let (server, api, offline) = start(&t.path().join("state")).await;
    let dev = provision(&api, t.path(), "CSTL-R2").await;
    let lines: Lines = Arc::default();
    let agent = tokio::spawn(castellan_agent::run(config(
        &dev,
        server.mqtt_addr(),
        &lines,
    )));
    online(&api, "CSTL-R2").await;
    let files = IdentityFiles::of(&dev);
    let now = now();
    let pki = castellan_pki::Pki::init(&offline, castellan_pki::KeyBackend::Files).unwrap();
    let op_ca = pki
        .ca_certificate(castellan_pki::CaKind::Operational)
        .der
        .clone();
    let unsigned = ReattestCommand {
        device_id: "CSTL-R2".into(),
        nonce: hex::encode([7u8; 32]),
        issued_at: now,
        expires_at: now + 60,
        signer_cert: hex::encode(&op_ca),
        signature: String::new(),
    };
    // Control: signed by the operational CA over the reattest domain, it holds.
    let genuine = ReattestCommand {
        signature: hex::encode(pki.sign_command(&unsigned.signed_bytes()).unwrap()),
        ..unsigned.clone()
    };
    assert!(check(&genuine.to_payload(), "CSTL-R2", &files, now).is_ok());
    // A key of the forger's, presenting the real operational CA certificate.
    let forger = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&forger, &unsigned.signed_bytes());
    let forged = ReattestCommand {
        signature: hex::encode(sig.to_bytes()),
        ..unsigned.clone()
    };
    assert_eq!(
        check(&forged.to_payload(), "CSTL-R2", &files, now),
        Err(CommandRefusal::BadSignature)
    );
    // A genuine decommission signature (same fields) presented as a reattest command: the
    // domain tags differ, so the signature does not verify.
    let decommission = castellan_protocol::DecommissionCommand {
        device_id: unsigned.device_id.clone(),
        nonce: unsigned.nonce.clone(),
        issued_at: unsigned.issued_at,
        expires_at: unsigned.expires_at,
        signer_cert: unsigned.signer_cert.clone(),
        signature: String::new(),
    };
    let cross = ReattestCommand {
        signature: hex::encode(pki.sign_command(&decommission.signed_bytes()).unwrap()),
        ..unsigned.clone()
    };
    assert_eq!(
        check(&cross.to_payload(), "CSTL-R2", &files, now),
        Err(CommandRefusal::BadSignature)
    );
    // Another device's genuine command; an expired one; garbage.
    let other = ReattestCommand {
        device_id: "CSTL-OTHER".into(),
        ..genuine.clone()
    };
    assert!(matches!(
        check(&other.to_payload(), "CSTL-R2", &files, now),
        Err(CommandRefusal::WrongDevice(_))
    ));
    assert!(matches!(
        check(&genuine.to_payload(), "CSTL-R2", &files, now + 3600),
        Err(CommandRefusal::NotValidNow { .. })
    ));
    assert!(matches!(
        check(b"\xff{", "CSTL-R2", &files, now),
        Err(CommandRefusal::Malformed(_))
    ));

    // Delivered over the broker by a service identity (which may publish commands but holds
    // no CA key), the forged ones change nothing: no reboot, the device keeps running.
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
    for cmd in [&forged, &cross, &other] {
        svc.publish_qos1(
            &castellan_protocol::topics::reattest("CSTL-R2"),
            &cmd.to_payload(),
            1,
        )
        .await
        .unwrap();
    }
    for _ in 0..40 {
        if logged(&lines, "reattest command refused") >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged(&lines, "reattest command refused"), 3);
    assert_eq!(logged(&lines, "rebooting to re-attest"), 0);
    assert!(!agent.is_finished(), "a forged command stopped the device");
    agent.abort();
    server.shutdown().await;
}
