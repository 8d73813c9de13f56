//! A connection storm against the store-backed authorizer, on SQLite and PostgreSQL: 200
//! onboarded devices connect at once (mutual TLS), each authorized from the registry, on a
//! runtime with a small blocking-thread pool. Every device gets in and publishes, none is left
//! waiting: the authorizer's blocking registry lookups are bounded below the pool
//! (`mqtt_max_handshaking`), so a storm queues instead of exhausting it (each lookup holds a
//! blocking thread and SQLite needs another). A revoked device in the crowd is refused.

mod common;

use sha2::Digest as _;
use std::sync::Arc;
use std::time::Duration;

use castellan_pki::LdevidKey;
use castellan_server::{Server, ServerConfig};
use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{NewDevice, Revocation, unix_now};
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

const DEVICES: usize = 200;

#[test]
fn connection_storm_is_authorized_from_the_registry_without_exhausting_the_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(24)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(each_backend(async |t: &TestStore| {
        let tmp = tempfile::tempdir().unwrap();
        castellan_testkit::fleet::hand_over_pki(&tmp.path().join("state"));
        let mut config = ServerConfig::new(tmp.path().join("state"))
            .with_ephemeral_ports()
            .with_database(t.location.clone());
        config.mqtt_max_handshaking = 8;
        let server = Server::start(config).await.unwrap();
        let ca = server.paths().ca_bundle.clone();
        let mut clients = Vec::new();
        for i in 0..DEVICES {
            let id = format!("STORM-{i:04}");
            let key = {
                use p256::elliptic_curve::Generate as _;
                let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
                p256::ecdsa::SigningKey::generate_from_rng(&mut rng)
            };
            let public = key.verifying_key().to_sec1_point(false);
            let ldevid = server
                .pki()
                .issue_ldevid(LdevidKey::PublicKey(public.as_bytes()), &id)
                .unwrap();
            let device = NewDevice {
                id: id.clone(),
                serial: id.clone(),
                device_class: "storm".into(),
                tags: vec![],
                idevid_der: vec![0x30, 0x00],
                idevid_serial: format!("7{i:031x}"),
                lifecycle: 0x3000,
                reference_measurements: vec![],
                firmware_version: None,
            };
            server.store().register_device(&device, unix_now()).await.unwrap();
            server
                .store()
                .record_onboarding(
                    &id,
                    &ldevid.serial_hex(),
                    &hex::encode(sha2::Sha256::digest(&ldevid.der)),
                    unix_now(),
                )
                .await
                .unwrap();
            let cert = tmp.path().join(format!("{id}.pem"));
            let key_file = tmp.path().join(format!("{id}.key"));
            std::fs::write(&cert, &ldevid.pem).unwrap();
            std::fs::write(&key_file, key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
            clients.push((id, ldevid.serial_hex(), tls_config(&ca, &cert, &key_file).unwrap()));
        }
        // One of them is revoked before the storm (through the store, as another instance
        // would, then the server's revocation set is refreshed by a revoke through the API).
        let (victim, victim_serial, _) = clients[DEVICES / 2].clone();
        server
            .store()
            .revoke(&Revocation {
                serial: victim_serial,
                issuer: "operational".into(),
                reason: 1,
                revoked_at: unix_now(),
                device_id: Some(victim.clone()),
            })
            .await
            .unwrap();
        let api = common::Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let (s, _) = api.call("POST", &format!("/api/v1/devices/{victim}/revoke"), Some(&admin), None).await;
        assert_eq!(s, 200);

        let addr = server.mqtt_addr();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for (id, _, tls) in clients {
            tasks.push(tokio::spawn(async move {
                let r = async {
                    let mut c = MqttClient::connect(addr, Arc::clone(&tls), &id, 30).await?;
                    c.publish_qos1(&format!("dev/{id}/status"), b"{\"online\":true}", 1).await?;
                    c.disconnect().await
                }
                .await;
                (id, r)
            }));
        }
        let results = tokio::time::timeout(Duration::from_secs(120), futures_join(tasks))
            .await
            .expect("the connection storm did not finish within 120 s (runtime exhausted?)");
        let elapsed = started.elapsed();
        let mut refused = Vec::new();
        for (id, r) in results {
            if r.is_err() {
                refused.push(id);
            }
        }
        assert_eq!(refused, vec![victim.clone()], "only the revoked device is refused");
        eprintln!(
            "{:?}: {DEVICES} devices authorized from the registry in {elapsed:?} ({:.0} connections/s)",
            t.backend,
            DEVICES as f64 / elapsed.as_secs_f64()
        );
        let devices = server.store().list_devices().await.unwrap();
        assert!(devices.iter().filter(|d| d.id != victim).all(|d| d.last_seen.is_some()));
        server.shutdown().await;
    }));
}

async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
