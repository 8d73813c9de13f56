//! A broker node dies mid-download: two service instances on one database, a simulated device
//! whose agent holds both MQTT endpoints and is connected to the second instance while the
//! first runs the campaign engine. The second instance is killed (no clean stop) while the
//! device downloads its update; the agent moves to the first instance at once, resumes the
//! download at the offset its secure services kept, and the campaign completes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use castellan_agent::{AgentConfig, Backoff, Endpoint, FirmwareKit};
use castellan_image::Version;
use castellan_server::{Server, ServerConfig, ServerHandle};
use castellan_store::{DeviceUpdateState, Store};
use common::*;

async fn instance(state: &std::path::Path, database: &str) -> ServerHandle {
    let mut config = ServerConfig::new(state)
        .with_ephemeral_ports()
        .with_database(database.to_string());
    config.campaign_tick = Duration::from_millis(200);
    // Small MQTT chunks and no HTTPS source: the download lasts long enough to be cut.
    config.update_chunk_size = 32;
    config.public_api_url = Some("https://127.0.0.1:9".into());
    Server::start(config).await.unwrap()
}

/// The agent's log lines that contain `needle`.
fn lines(log: &Mutex<Vec<String>>, needle: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_fails_over_to_another_broker_and_resumes_its_download() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let db = d.join("fleet.db").to_string_lossy().into_owned();
    let state_a = d.join("state-a");
    castellan_testkit::fleet::hand_over_pki(&state_a);
    let a = instance(&state_a, &db).await;
    let state_b = d.join("state-b");
    castellan_testkit::fleet::pki::copy_tree(&state_a, &state_b);
    let b = instance(&state_b, &db).await;
    let api_url = a.api_url();
    let admin_token = state_a.join("admin.token");
    let admin_token = admin_token.to_str().unwrap();

    let o = output(castellan(
        d,
        &["keygen", "-t", "ecdsa-p256", "-k", "release.key"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let server_args = ["--server", api_url.as_str(), "--token-file"];
    let mut args = vec!["release", "trust"];
    args.extend(server_args);
    args.extend([admin_token, "--key", "release.key"]);
    let o = output(castellan(d, &args)).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = output(factory_provision(
        d,
        &api_url,
        admin_token,
        "fleet",
        &["--count", "1", "--prefix", "FO-"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));

    // The agent: the second instance first, the first as its fallback.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let mut cfg = AgentConfig::new(
        d.join("fleet").join("FO-0001"),
        Endpoint::parse(&b.mqtt_addr().to_string()).unwrap(),
        Arc::new(move |l: &str| {
            println!("FO-0001 {l}");
            sink.lock().unwrap().push(l.to_string());
        }),
    );
    cfg.mqtt_fallbacks = vec![Endpoint::parse(&a.mqtt_addr().to_string()).unwrap()];
    cfg.interval = Duration::from_secs(2);
    cfg.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let agent = tokio::spawn(castellan_agent::run(cfg));
    let until = Instant::now() + Duration::from_secs(60);
    while !b.is_connected("FO-0001").await {
        assert!(
            Instant::now() < until,
            "the device never connected to the second instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!a.is_connected("FO-0001").await);

    // A 100 KiB release (the secondary slot takes 128 KiB), rolled out by the first instance (it holds the engine's lease).
    let kit =
        FirmwareKit::load_or_create(&d.join(".castellan/factory-kit"), Version::new(1, 0, 0, 0))
            .unwrap();
    let img = kit
        .release_image(Version::new(1, 1, 0, 0), 100 * 1024, b"failover 1.1.0")
        .unwrap();
    std::fs::write(d.join("app-1.1.0.bin"), img).unwrap();
    // Releases and campaigns are the release manager's.
    let op = release_manager(d, &api_url, admin_token).await;
    let mut args = vec!["release", "create"];
    args.extend(server_args);
    args.extend([
        op.as_str(),
        "--image",
        "app-1.1.0.bin",
        "--key",
        "release.key",
    ]);
    let o = output(castellan(d, &args)).await;
    assert!(o.status.success(), "{}", text(&o));
    let mut args = vec!["campaign", "create"];
    args.extend(server_args);
    args.extend([
        op.as_str(),
        "--release",
        "sensor-v1-1",
        "--waves",
        "100%",
        "--watch",
    ]);
    let watch = tokio::spawn(output(castellan(d, &args)));

    // Mid-download (progress recorded, not finished): the second instance dies.
    let store = Store::open(&db).await.unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let cut_at = loop {
        assert!(Instant::now() < until, "no download progress within 120 s");
        let campaigns = store.list_campaigns().await.unwrap();
        if let Some(c) = campaigns.first() {
            let m = store.campaign_devices(&c.id).await.unwrap();
            if let Some(m) = m.first() {
                assert_ne!(
                    m.state,
                    DeviceUpdateState::Updated,
                    "finished before the cut"
                );
                if m.state == DeviceUpdateState::Downloading && m.offset > 0 {
                    break m.offset;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = Instant::now();
    b.abandon().await;

    let until = Instant::now() + Duration::from_secs(30);
    while !a.is_connected("FO-0001").await {
        assert!(
            Instant::now() < until,
            "the device did not move to the first instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved_in = killed.elapsed();
    println!("killed at offset {cut_at}; the device was on the other broker {moved_in:?} later");
    assert!(
        moved_in < Duration::from_secs(10),
        "failover took {moved_in:?}"
    );

    let o = tokio::time::timeout(Duration::from_secs(300), watch)
        .await
        .expect("the campaign did not finish")
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("completed: 1 updated, 0 failed"), "{out}");

    // The download went on from where it was, not from the start.
    let resumed = lines(&log, "resuming the download of");
    let at: Vec<u64> = resumed
        .iter()
        .filter_map(|l| l.rsplit("at byte ").next()?.trim().parse().ok())
        .collect();
    assert!(!at.is_empty() && at.iter().all(|&n| n > 0), "{resumed:?}");
    assert!(
        !lines(&log, "moving to the next broker").is_empty(),
        "{:?}",
        log.lock().unwrap()
    );
    agent.abort();
    a.shutdown().await;
}

/// A release-manager operator; returns the path of its token file.
async fn release_manager(d: &std::path::Path, api_url: &str, admin_token: &str) -> String {
    let ca = std::fs::read_to_string(d.join("state-a/tls/ca-bundle.pem")).unwrap();
    let admin = castellan_agent::FleetApi::new(
        api_url,
        std::fs::read_to_string(admin_token).unwrap().trim(),
        &ca,
    )
    .unwrap();
    let op: serde_json::Value = admin
        .post(
            "/api/v1/operators",
            &serde_json::json!({"name": "rm", "role": "release-manager"}),
        )
        .await
        .unwrap();
    // Beside the state's tls/ca-bundle.pem, which the commands find from the token file.
    let path = d.join("state-a/rm.token");
    std::fs::write(&path, op["token"].as_str().unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}
