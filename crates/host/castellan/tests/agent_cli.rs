//! The device side's commands as a user runs them: `castellan factory provision` (one device
//! built from scratch, then a bulk run with its progress line), `castellan agent --once`
//! against a running fleet service, and `castellan demo` end to end (exit 0, every step shown).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_provision_and_agent_against_a_running_fleet_service() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let state = d.join("state");
    let server = fleet_service(d).await;
    let api = server.api_url();
    let mqtt = server.mqtt_addr().to_string();
    let token = state.join("admin.token");
    let token = token.to_str().unwrap();

    // One device, built from scratch; the CA bundle is found beside the token file.
    let o = output(factory_provision(
        d,
        &api,
        token,
        "dev1",
        &["--serial", "CSTL-0100", "--class", "meter-v2", "--new"],
    ))
    .await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("registered CSTL-0100 (meter-v2)"), "{out}");
    assert!(out.contains("crypto service (never exported)"), "{out}");
    assert!(d.join("dev1/identity/idevid.pem").exists());
    // The "next:" hint names the broker this server listens on, not a fixed port.
    assert!(
        out.contains(&format!("--mqtt {mqtt}")),
        "the hint does not name the server's MQTT port {mqtt}: {out}"
    );

    // The same device again: refused, nothing overwritten.
    let o = output(factory_provision(
        d,
        &api,
        token,
        "dev1",
        &["--serial", "CSTL-0100"],
    ))
    .await;
    assert!(!o.status.success());
    assert!(text(&o).contains("already holds an IDevID"), "{}", text(&o));

    // Bulk: three new devices with a progress line.
    let o = output(factory_provision(
        d,
        &api,
        token,
        "fleet",
        &["--count", "3", "--prefix", "BULK-"],
    ))
    .await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("3/3 devices, 0 failed"), "{out}");
    assert!(out.contains("provisioned 3 of 3"), "{out}");
    for s in ["BULK-0001", "BULK-0002", "BULK-0003"] {
        assert!(d.join("fleet").join(s).join("identity/idevid.pem").exists());
    }

    // The agent onboards the first device and sends one message.
    let started = Instant::now();
    let o = output(castellan(
        d,
        &["agent", "--device-dir", "dev1", "--mqtt", &mqtt, "--once"],
    ))
    .await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for needle in [
        "onboarding: connected",
        "onboarding: accepted; LDevID stored",
        "connected to",
        "telemetry #1 sent",
        "CSTL-0100: 1 telemetry message(s), 1 connection(s), 0 reconnect(s), onboarded in this run",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let rows = server
        .store()
        .latest_telemetry("CSTL-0100", 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    server.shutdown().await;

    // With the server gone, the agent backs off and gives up when told to.
    let o = output(castellan(
        d,
        &[
            "agent",
            "--device-dir",
            "dev1",
            "--mqtt",
            &mqtt,
            "--once",
            "--backoff-initial",
            "0.1",
            "--backoff-max",
            "0.2",
            "--max-failures",
            "3",
        ],
    ))
    .await;
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("retrying in") && out.contains("giving up after 3 attempts"),
        "{out}"
    );
}

#[test]
fn demo_runs_end_to_end_on_embedded_defaults() {
    let t = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = castellan(t.path(), &["demo", "--messages", "2"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for needle in [
        "[6] The fleet service starts",
        "CSTL-0001: identity key",
        "CSTL-0004: identity key",
        "onboarding: accepted",
        "telemetry #2 sent",
        "secured   passed",
        "refused: appraisal failed: software component \"APP\"",
        "release sensor-v1-1: version 1.1.0",
        "[completed] wave 1/1  updated 3/3",
        "firmware 1.1.0    attestation passed",
        "[paused] wave 0/1  updated 0/3",
        "the trial image was reverted",
        "the release manager aborts it: aborted",
        "chain verification: intact",
        "Where to look next",
        "castellan agent --device-dir",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // The forged publish on another device's topic is refused and audited.
    assert!(
        out.contains("tries to publish on CSTL-0002's telemetry topic"),
        "{out}"
    );
    assert!(
        out.contains("mqtt.publish dev/CSTL-0002/telemetry refused"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the demo took {:?}",
        started.elapsed()
    );
}
