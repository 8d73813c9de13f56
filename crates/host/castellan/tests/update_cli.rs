//! Over-the-air updates as the release manager runs them, end to end against a running fleet
//! service and simulated devices running their agents: `castellan release trust|create`,
//! `castellan campaign create --watch` until every device is updated (downloaded, installed,
//! rebooted, confirmed and attested), a broken release that pauses its own campaign, an abort,
//! a rollback to the previous release, and the refusal of an update started without the
//! release-manager role.

mod common;

use std::time::Duration;

use castellan_agent::{AgentConfig, Backoff, Endpoint, FirmwareKit, FleetApi};
use castellan_image::Version;
use castellan_server::{Server, ServerConfig};
use common::*;
use serde_json::{Value, json};

/// The campaign id in `castellan campaign create` output ("campaign <id> started: …").
fn campaign_id(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.strip_prefix("campaign ")?
                .split_once(" started")?
                .0
                .into()
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no campaign id in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_update_simulated_devices_pause_on_a_bad_release_and_roll_back() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let state = d.join("state");
    castellan_testkit::fleet::hand_over_pki(&state);
    let mut config = ServerConfig::new(&state).with_ephemeral_ports();
    config.campaign_tick = Duration::from_millis(200);
    let server = Server::start(config).await.unwrap();
    let api_url = server.api_url();
    let admin_token = state.join("admin.token");
    let admin_token = admin_token.to_str().unwrap();
    let server_args = ["--server", api_url.as_str(), "--token-file"];

    // The release manager's key becomes the fleet's release trust anchor (admin, once).
    let o = output(castellan(
        d,
        &["keygen", "-t", "ecdsa-p256", "-k", "release.key"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let mut args = vec!["release", "trust"];
    args.extend(server_args);
    args.extend([admin_token, "--key", "release.key"]);
    let o = output(castellan(d, &args)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("release trust anchor registered"));

    let ca = std::fs::read_to_string(state.join("tls/ca-bundle.pem")).unwrap();
    let admin = FleetApi::new(
        &api_url,
        &std::fs::read_to_string(state.join("admin.token")).unwrap(),
        &ca,
    )
    .unwrap();
    let op: Value = admin
        .post(
            "/api/v1/operators",
            &json!({"name": "rm", "role": "release-manager"}),
        )
        .await
        .unwrap();
    std::fs::write(state.join("rm.token"), op["token"].as_str().unwrap()).unwrap();
    let rm_token = state.join("rm.token");
    let rm_token = rm_token.to_str().unwrap();

    // Three devices from the factory (they store the trust anchor), each running its agent.
    let o = output(factory_provision(
        d,
        &api_url,
        admin_token,
        "fleet",
        &["--count", "3", "--prefix", "UPD-"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let endpoint = Endpoint::parse(&server.mqtt_addr().to_string()).unwrap();
    let mut agents = tokio::task::JoinSet::new();
    for s in ["UPD-0001", "UPD-0002", "UPD-0003"] {
        let mut cfg = AgentConfig::new(
            d.join("fleet").join(s),
            endpoint.clone(),
            castellan_agent::stdout_logger(&format!("{s} ")),
        );
        cfg.interval = Duration::from_secs(2);
        cfg.backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
        agents.spawn(castellan_agent::run(cfg));
    }

    let kit =
        FirmwareKit::load_or_create(&d.join(".castellan/factory-kit"), Version::new(1, 0, 0, 0))
            .unwrap();
    let write_image = |name: &str, version: Version, label: &[u8]| {
        let img = kit.release_app(version, 1, label).unwrap();
        std::fs::write(d.join(name), img).unwrap();
    };
    write_image("app-1.1.0.bin", Version::new(1, 1, 0, 0), b"release 1.1.0");
    write_image(
        "app-1.2.0.bin",
        Version::new(1, 2, 0, 0),
        b"release 1.2.0 CASTELLAN-SELFTEST-FAIL",
    );
    write_image("app-1.3.0.bin", Version::new(1, 3, 0, 0), b"release 1.3.0");

    let create = |token: &str, image: &str| {
        let mut args = vec!["release", "create"];
        args.extend(server_args);
        args.extend([token, "--image", image, "--key", "release.key"]);
        castellan(d, &args)
    };
    // Attack: the admin is not a release manager; the refusal says why.
    let o = output(create(admin_token, "app-1.1.0.bin")).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("403"), "{}", text(&o));

    let o = output(create(rm_token, "app-1.1.0.bin")).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("release:          sensor-v1-1"),
        "{}",
        text(&o)
    );

    let campaign = |release: &str, extra: &[&str]| {
        let mut args = vec!["campaign", "create"];
        args.extend(server_args);
        args.extend([rm_token, "--release", release, "--watch"]);
        args.extend(extra);
        castellan(d, &args)
    };
    let o = output(campaign("sensor-v1-1", &["--waves", "100%"])).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("completed: 3 updated, 0 failed"), "{out}");
    assert!(
        out.contains("[running] wave"),
        "progress lines are printed:\n{out}"
    );
    let devices: Vec<Value> = admin.get("/api/v1/devices").await.unwrap();
    assert_eq!(devices.len(), 3);
    for dev in &devices {
        assert_eq!(dev["firmware_version"], "1.1.0", "{dev}");
    }

    // A broken release: the canary reverts, the campaign pauses itself and says why.
    let o = output(create(rm_token, "app-1.2.0.bin")).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = output(campaign("sensor-v1-2", &["--max-failures", "1"])).await;
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("paused"), "{out}");
    assert!(
        out.contains("revert"),
        "the device's reason is shown:\n{out}"
    );
    let id = campaign_id(&out);
    let mut args = vec!["campaign", "abort"];
    args.extend(server_args);
    args.extend([rm_token, id.as_str()]);
    let o = output(castellan(d, &args)).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("aborted"), "{}", text(&o));
    let devices: Vec<Value> = admin.get("/api/v1/devices").await.unwrap();
    for dev in &devices {
        assert_eq!(dev["firmware_version"], "1.1.0", "still 1.1.0: {dev}");
    }

    // 1.3.0 goes out, then is rolled back: 1.1.0 re-signed as a new release, every device back.
    let o = output(create(rm_token, "app-1.3.0.bin")).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = output(campaign("sensor-v1-3", &[])).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let id = campaign_id(&out);
    let mut args = vec!["campaign", "rollback"];
    args.extend(server_args);
    args.extend([rm_token, "--key", "release.key", id.as_str(), "--watch"]);
    let o = output(castellan(d, &args)).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("re-signing release sensor-v1-1"), "{out}");
    assert!(out.contains("completed: 3 updated"), "{out}");
    let devices: Vec<Value> = admin.get("/api/v1/devices").await.unwrap();
    for dev in &devices {
        assert_eq!(dev["firmware_version"], "1.1.0", "rolled back: {dev}");
    }

    agents.abort_all();
    server.shutdown().await;
}

/// `castellan bench rollout` on a small cohort: every figure is printed, with the ratios to the
/// floor measured in the same run.
#[test]
fn bench_rollout_reports_time_server_cpu_memory_and_the_floor() {
    let t = tempfile::tempdir().unwrap();
    let o = castellan(
        t.path(),
        &[
            "bench",
            "rollout",
            "--devices",
            "3",
            "--image-size",
            "65536",
            "--dir",
        ],
    )
    .arg(t.path().join("work"))
    .output()
    .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for needle in [
        "updated 3/3",
        "rollout, wall clock",
        "server CPU (user + system) during the rollout",
        "server peak memory (VmHWM, whole run)",
        "floor: hashing + signature checks, same bytes",
        "rollout / floor",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    assert!(
        !t.path().join("work").exists(),
        "the working directory is removed"
    );
}
