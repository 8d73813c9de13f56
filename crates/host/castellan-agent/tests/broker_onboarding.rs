//! The device side against the real embedded broker (rmqtt, mutual TLS) and the real fleet PKI,
//! with a small onboarding responder standing in for the fleet server's appraisal. It proves the
//! parts the fleet server does not own: the TLS client key stays in the crypto service (rustls
//! signs through `sign_hash`), the IDevID passes `openssl verify`, the MQTT client onboards and
//! publishes, and a device whose firmware was replaced is refused (its token verifies with the
//! registered IAK, which survives firmware changes by the same authority, but shows another
//! measurement).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan_agent::factory::{RegistrationRequest, RegistrationResponse};
use castellan_agent::{
    AgentConfig, AgentError, Backoff, Endpoint, FirmwareKit, KeyChoice, ProvisionRequest,
    build_device,
};
use castellan_broker::BrokerHandle;
use castellan_image::Version;
use castellan_pki::{CaKind, KeyBackend, LdevidKey, Pki};

/// Device id, the IAK the factory registered for it, and the reference APP measurement.
type IakRegistry = Arc<Mutex<Vec<(String, Vec<u8>, Vec<u8>)>>>;
/// Topic and payload of each message a device published outside onboarding.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct Fleet {
    pki: Arc<Pki>,
    broker: Arc<BrokerHandle>,
    /// Registered IAK per device (what the factory recorded).
    iaks: IakRegistry,
    /// Other device messages received (topic, payload).
    telemetry: Received,
}

async fn fleet(dir: &Path) -> Fleet {
    let pki = Arc::new(Pki::init(&dir.join("pki"), KeyBackend::Files).unwrap());
    let broker = Arc::new(castellan_testkit::fleet::stand_in_broker(dir, &pki).await);
    let fleet = Fleet {
        pki,
        broker,
        iaks: Arc::default(),
        telemetry: Arc::default(),
    };
    responder(&fleet);
    fleet
}

/// The onboarding half of the fleet server, reduced to what the protocol says: a nonce per
/// hello, the token verified with the IAK the factory registered, an LDevID for the CSR.
fn responder(fleet: &Fleet) {
    let mut events = fleet.broker.subscribe_events();
    let (pki, iaks, telemetry) = (
        fleet.pki.clone(),
        fleet.iaks.clone(),
        fleet.telemetry.clone(),
    );
    let publisher = fleet.broker.clone();
    tokio::spawn(async move {
        let mut nonces = std::collections::HashMap::new();
        while let Some(m) = events.recv().await {
            let id = m.device_id.clone();
            let down = format!("dev/{id}/down/onboard");
            if m.topic.ends_with("/up/onboard/hello") {
                let nonce: [u8; 32] =
                    std::array::from_fn(|i| (i as u8) ^ 0x5a ^ nonces.len() as u8);
                nonces.insert(id.clone(), nonce);
                let body = serde_json::json!({"nonce": hex::encode(nonce)}).to_string();
                publisher
                    .publish(&format!("{down}/challenge"), body, 1)
                    .await
                    .unwrap();
            } else if m.topic.ends_with("/up/onboard/evidence") {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                let token = hex::decode(v["token"].as_str().unwrap()).unwrap();
                let csr = hex::decode(v["csr"].as_str().unwrap()).unwrap();
                let (iak, reference) = iaks
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(d, _, _)| *d == id)
                    .map(|(_, k, r)| (k.clone(), r.clone()))
                    .unwrap();
                let key = castellan_attest::VerificationKey::Es256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&iak).unwrap(),
                );
                let result = match castellan_attest::verify_token(&token, &key) {
                    // The IAK survives updates by the same authority, so the measurements
                    // decide what runs: the APP entry must be the factory's reference.
                    Ok(claims)
                        if claims
                            .software_components
                            .last()
                            .is_none_or(|c| c.measurement_value != reference) =>
                    {
                        serde_json::json!({"accepted": false,
                            "reason": "attestation token refused: the APP measurement is not the reference"})
                    }
                    Ok(claims) if claims.nonce.as_slice() == nonces[&id].as_slice() => {
                        let cert = pki.issue_ldevid(LdevidKey::Csr(&csr), &id).unwrap();
                        serde_json::json!({"accepted": true, "ldevid_pem": cert.pem,
                            "chain_pem": pki.chain_pem(CaKind::Operational),
                            "policy": {"publish": [format!("dev/{id}/telemetry")], "subscribe": []}})
                    }
                    Ok(_) => serde_json::json!({"accepted": false, "reason": "nonce mismatch"}),
                    Err(e) => serde_json::json!({"accepted": false,
                        "reason": format!("attestation token refused: {e}")}),
                };
                publisher
                    .publish(&format!("{down}/result"), result.to_string(), 1)
                    .await
                    .unwrap();
            } else {
                telemetry
                    .lock()
                    .unwrap()
                    .push((m.topic.clone(), m.payload.to_vec()));
            }
        }
    });
}

/// The factory: the registrar issues the IDevID with the manufacturer CA directly.
async fn provision(fleet: &Fleet, dir: &Path, kit: &FirmwareKit, serial: &str, keys: KeyChoice) {
    build_device(dir, kit).unwrap();
    register(fleet, dir, serial, keys).await;
}

/// The factory's registration of a device that is already built.
async fn register(
    fleet: &Fleet,
    dir: &Path,
    serial: &str,
    keys: KeyChoice,
) -> castellan_agent::ProvisionedDevice {
    let pki = fleet.pki.clone();
    let iaks = fleet.iaks.clone();
    let req = ProvisionRequest {
        serial: serial.into(),
        device_class: "sensor-v1".into(),
        keys,
    };
    let done = castellan_agent::factory::provision_sim_device_with(
        dir,
        &req,
        move |r: RegistrationRequest| async move {
            let csr = hex::decode(&r.csr).unwrap();
            let cert = pki.issue_idevid(&csr, &r.serial, &r.device_class).unwrap();
            let app = r
                .reference_measurements
                .iter()
                .find(|m| m.sw_type == "APP")
                .map(|m| hex::decode(&m.digest).unwrap())
                .unwrap();
            iaks.lock().unwrap().push((
                r.serial.clone(),
                hex::decode(&r.iak_public_key).unwrap(),
                app,
            ));
            Ok(RegistrationResponse {
                device_id: r.serial,
                idevid_pem: cert.pem,
                chain_pem: pki.chain_pem(CaKind::Manufacturer),
                mqtt_ca_pem: pki.root_pem(),
                release_public_key: None,
                mqtt: None,
                tuf_root: None,
            })
        },
    )
    .await
    .unwrap();
    assert_eq!(done.device_id, serial);
    assert_eq!(done.measurements.len(), 2);
    done
}

fn config(dir: &Path, broker: &BrokerHandle, count: u64) -> AgentConfig {
    let mut cfg = AgentConfig::new(
        dir,
        Endpoint::parse(&broker.local_addr().to_string()).unwrap(),
        Arc::new(|l: &str| println!("agent: {l}")),
    );
    cfg.interval = Duration::from_millis(100);
    cfg.count = Some(count);
    cfg.backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
    cfg.max_failures = Some(5);
    cfg.onboard_timeout = Duration::from_secs(10);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_onboards_with_keys_that_never_leave_the_crypto_service() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = t.path().join("dev1");
    provision(&fleet, &dev, &kit, "CSTL-0001", KeyChoice::CryptoService).await;

    // The IDevID verifies against the fleet's CAs with OpenSSL.
    let files = castellan_agent::IdentityFiles::of(&dev);
    std::fs::write(
        fleet.pki.dir().join("bundle-for-test.pem"),
        fleet.pki.chain_pem(CaKind::Manufacturer),
    )
    .unwrap();
    let (ok, out) = castellan_testkit::peers::openssl::verify(
        &fleet.pki.dir().join("bundle-for-test.pem"),
        &files.idevid(),
    );
    assert!(ok, "openssl verify: {out}");

    // The identity key cannot be exported from the crypto service.
    let world = castellan_agent::SecureWorld::power_on(&dev).unwrap();
    let export = world
        .call(|svc| {
            let mut buf = [0u8; 64];
            svc.export_key(castellan_services::KEY_ID_DEVICE_IDENTITY, &mut buf)
        })
        .unwrap();
    assert!(export.is_err(), "the identity key was exported");
    world.shut_down().unwrap();

    let report = castellan_agent::run(config(&dev, &fleet.broker, 3))
        .await
        .unwrap();
    assert!(report.onboarded_now);
    assert_eq!(report.messages_sent, 3);
    assert!(files.ldevid().exists());
    // The operational key is not exportable either.
    let world = castellan_agent::SecureWorld::power_on(&dev).unwrap();
    let export = world
        .call(|svc| {
            let mut buf = [0u8; 64];
            svc.export_key(castellan_agent::identity::KEY_ID_OPERATIONAL, &mut buf)
        })
        .unwrap();
    assert!(export.is_err(), "the operational key was exported");
    world.shut_down().unwrap();
    let seen: Vec<String> = fleet
        .telemetry
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .filter(|t| t.ends_with("/telemetry"))
        .collect();
    assert_eq!(seen, vec!["dev/CSTL-0001/telemetry"; 3]);

    // A second run goes straight to the LDevID (no onboarding) and counts a new boot.
    let report = castellan_agent::run(config(&dev, &fleet.broker, 1))
        .await
        .unwrap();
    assert!(!report.onboarded_now);
    assert_eq!(report.connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_replaced_firmware_is_refused_onboarding() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = t.path().join("dev2");
    provision(&fleet, &dev, &kit, "CSTL-0002", KeyChoice::CryptoService).await;
    // The attacker flashes another application, validly signed: it boots, but it is not the
    // firmware the factory registered.
    castellan_agent::device::replace_app(&dev, &kit.other_app(b"implant").unwrap()).unwrap();
    let err = castellan_agent::run(config(&dev, &fleet.broker, 1))
        .await
        .unwrap_err();
    match err {
        AgentError::OnboardingRefused { reason, .. } => {
            assert!(reason.contains("attestation token refused"), "{reason}")
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(!castellan_agent::IdentityFiles::of(&dev).ldevid().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pem_file_identity_onboards_too() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = t.path().join("dev3");
    let pem = t.path().join("dev3-identity.pem");
    provision(
        &fleet,
        &dev,
        &kit,
        "CSTL-0003",
        KeyChoice::PemFile(pem.clone()),
    )
    .await;
    assert!(pem.exists());
    let report = castellan_agent::run(config(&dev, &fleet.broker, 1))
        .await
        .unwrap();
    assert!(report.onboarded_now && report.messages_sent == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_command_power_cycles_the_device_and_it_comes_back() {
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = t.path().join("dev5");
    provision(&fleet, &dev, &kit, "CSTL-0005", KeyChoice::CryptoService).await;
    let agent = tokio::spawn(castellan_agent::run(config(&dev, &fleet.broker, 6)));
    let telemetry = |fleet: &Fleet| -> Vec<serde_json::Value> {
        fleet
            .telemetry
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with("/telemetry"))
            .map(|(_, p)| serde_json::from_slice(p).unwrap())
            .collect()
    };
    for _ in 0..100 {
        if telemetry(&fleet).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet
        .broker
        .publish("dev/CSTL-0005/cmd/reboot", "{}", 1)
        .await
        .unwrap();
    let report = agent.await.unwrap().unwrap();
    assert_eq!(report.reboots, 1);
    assert_eq!(report.connections, 2);
    let rows = telemetry(&fleet);
    assert_eq!(rows.first().unwrap()["boot_count"], 1);
    assert_eq!(rows.last().unwrap()["boot_count"], 2, "{rows:?}");
    assert_eq!(rows.last().unwrap()["messages_sent"], 6);
    // The device answered the command before going down, and said it was going offline.
    let topics: Vec<String> = fleet
        .telemetry
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert!(
        topics.contains(&"dev/CSTL-0005/up/reboot".to_string()),
        "{topics:?}"
    );
    assert!(
        topics.contains(&"dev/CSTL-0005/status".to_string()),
        "{topics:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_still_in_provisioning_is_secured_before_its_keys_are_made() {
    use castellan_boot::{Lifecycle, advance_lifecycle, program_root_key_hash};
    let t = tempfile::tempdir().unwrap();
    let fleet = fleet(t.path()).await;
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    // As `castellan sim provision --lifecycle provisioning` leaves it: root key, fuses open,
    // never booted.
    let dev = t.path().join("dev6");
    let mut sim =
        castellan_sim::SimDevice::create(&dev, castellan_agent::device::standard_config()).unwrap();
    let root = castellan_image::signer_id(&kit.key.public_spki_der());
    program_root_key_hash(&mut sim.otp, &root).unwrap();
    advance_lifecycle(&mut sim.otp, Lifecycle::PsaRotProvisioning).unwrap();
    let layout = castellan_boot::FlashLayout::from_table(|n| sim.partition(n)).unwrap();
    castellan_agent::device::write_partition(&mut sim, layout.bootloader, &kit.bootloader).unwrap();
    castellan_agent::device::write_partition(&mut sim, layout.primary, &kit.app).unwrap();
    sim.save().unwrap();

    let done = register(&fleet, &dev, "CSTL-0006", KeyChoice::CryptoService).await;
    assert!(done.secured_now);
    let world = castellan_agent::SecureWorld::power_on(&dev).unwrap();
    assert_eq!(world.boot_info().lifecycle, Lifecycle::Secured);
    // The IAK registered is the one of the secured boot (DICE mode normal): onboarding passes.
    assert_eq!(world.boot_info().iak_public_key, done.iak_public_key);
    world.shut_down().unwrap();
    let report = castellan_agent::run(config(&dev, &fleet.broker, 1))
        .await
        .unwrap();
    assert!(report.onboarded_now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_storage_predates_securing_is_refused_with_the_reason() {
    use castellan_boot::{Lifecycle, advance_lifecycle, program_root_key_hash};
    let t = tempfile::tempdir().unwrap();
    let kit = FirmwareKit::load_or_create(&t.path().join("kit"), Version::new(1, 0, 0, 0)).unwrap();
    let dev = t.path().join("dev7");
    let mut sim =
        castellan_sim::SimDevice::create(&dev, castellan_agent::device::standard_config()).unwrap();
    let root = castellan_image::signer_id(&kit.key.public_spki_der());
    program_root_key_hash(&mut sim.otp, &root).unwrap();
    advance_lifecycle(&mut sim.otp, Lifecycle::PsaRotProvisioning).unwrap();
    let layout = castellan_boot::FlashLayout::from_table(|n| sim.partition(n)).unwrap();
    castellan_agent::device::write_partition(&mut sim, layout.bootloader, &kit.bootloader).unwrap();
    castellan_agent::device::write_partition(&mut sim, layout.primary, &kit.app).unwrap();
    sim.save().unwrap();
    // The secure services run once in provisioning: storage is sealed to that state.
    castellan_agent::SecureWorld::power_on(&dev)
        .unwrap()
        .shut_down()
        .unwrap();
    let req = ProvisionRequest {
        serial: "CSTL-0007".into(),
        device_class: "sensor-v1".into(),
        keys: KeyChoice::CryptoService,
    };
    let err = castellan_agent::factory::provision_sim_device_with(&dev, &req, |_| async {
        panic!("a device that cannot keep its identity key must not be registered")
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("initialised before the device was secured"),
        "{err}"
    );
}
