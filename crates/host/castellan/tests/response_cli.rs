//! The fleet's response as an operator drives it from the command line, against a running
//! fleet service: `castellan policy set|show` (admin only), `castellan device quarantine|release`
//! of a provisioned device, `castellan device decommission` (refused to the admin; one
//! decommissioner's request waits for a second), `castellan alerts list` (empty: nothing misbehaved), each with
//! `--json` where a script reads it.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_device_and_alert_commands_speak_to_the_service() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let state = d.join("state");
    let server = fleet_service(d).await;
    let api_url = server.api_url();
    let admin = state.join("admin.token");
    let admin = admin.to_str().unwrap();
    let with_server = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--server".into(),
            api_url.clone(),
            "--token-file".into(),
            admin.into(),
        ]);
        v
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        output(castellan(d, &refs))
    };

    // The default policy, then the admin's.
    let o = run(with_server(&["policy", "show", "sensor-v1", "--json"])).await;
    assert!(o.status.success(), "{}", text(&o));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (p["auto_quarantine"].clone(), p["updated_by"].clone()),
        (true.into(), "default".into())
    );
    let o = run(with_server(&[
        "policy",
        "set",
        "sensor-v1",
        "--auto-quarantine",
        "off",
        "--max-per-hour",
        "1",
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("sensor-v1: automatic quarantine off, at most 1 an hour (set by admin)"),
        "{}",
        text(&o)
    );

    // A provisioned device, quarantined and released by hand.
    let o = output(factory_provision(
        d,
        &api_url,
        admin,
        "dev",
        &["--count", "1", "--prefix", "RSP-"],
    ))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(with_server(&["device", "quarantine", "RSP-0001"])).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("RSP-0001 quarantined"), "{}", text(&o));
    let o = run(with_server(&["device", "release", "RSP-0001"])).await;
    assert!(
        text(&o).contains("RSP-0001 released from quarantine"),
        "{}",
        text(&o)
    );
    let o = run(with_server(&["device", "quarantine", "NOPE-404"])).await;
    assert!(!o.status.success(), "an unknown device is refused");

    // Decommission is the decommissioner's alone: the admin is refused.
    let o = run(with_server(&["device", "decommission", "RSP-0001"])).await;
    assert!(
        !o.status.success(),
        "the admin decommissioned: {}",
        text(&o)
    );
    // A decommissioner's request only waits for a second one.
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).unwrap();
    let admin_api = castellan_agent::FleetApi::new(
        &api_url,
        std::fs::read_to_string(admin).unwrap().trim(),
        &ca,
    )
    .unwrap();
    let made: Value = admin_api
        .post(
            "/api/v1/operators",
            &serde_json::json!({"name": "dec-1", "role": "decommissioner"}),
        )
        .await
        .unwrap();
    let dec_token = state.join("dec-1.token");
    std::fs::write(&dec_token, made["token"].as_str().unwrap()).unwrap();
    let as_decommissioner = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--server".into(),
            api_url.clone(),
            "--token-file".into(),
            dec_token.to_str().unwrap().into(),
        ]);
        v
    };
    let o = run(as_decommissioner(&[
        "device",
        "decommission",
        "RSP-0001",
        "--json",
    ]))
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "awaiting_approval", "{r}");
    let o = run(as_decommissioner(&["device", "decommission", "RSP-0001"])).await;
    assert!(
        text(&o).contains("a second decommissioner must run the same command"),
        "{}",
        text(&o)
    );
    let o = run(with_server(&["device", "decommission", "NOPE-404"])).await;
    assert!(!o.status.success(), "an unknown device is refused");

    // Nothing misbehaved: no alerts, as text and as JSON.
    let o = run(with_server(&["alerts", "list"])).await;
    assert!(text(&o).contains("no alerts"), "{}", text(&o));
    let o = run(with_server(&[
        "alerts", "list", "--state", "open", "--json",
    ]))
    .await;
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list, Value::Array(vec![]));
    let o = run(with_server(&["alerts", "ack", "alr-000000000000"])).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no alert alr-000000000000"),
        "{}",
        text(&o)
    );
    server.shutdown().await;
}
