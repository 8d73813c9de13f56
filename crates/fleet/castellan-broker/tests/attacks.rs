//! Attacks on the broker by real MQTT peers (mosquitto_pub / mosquitto_sub, MQTT 3.1.1 and 5)
//! over mutual TLS on loopback. Each test is named after the attack it stops and also proves the
//! legitimate path still works, so a broker that refuses everything cannot pass.

mod common;

use std::time::{Duration, Instant};

use castellan_testkit::test_pki::{ClientCertOptions, TestPki};
use common::*;

const SEC: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_device_a_publishes_to_device_b_refused() {
    let env = Env::start(&["dev-a", "dev-b", "svc:ops"]).await;
    let mut events = env.handle.subscribe_events();
    for v in VERSIONS {
        // The service identity watches B's telemetry: whatever reaches that topic, it sees.
        let mut watcher = env
            .subscribe_as("svc:ops", &["dev/dev-b/telemetry"], v)
            .await;
        let attack = format!("forged-by-a-{v}");
        env.publish_as("dev-a", "dev/dev-b/telemetry", &attack, v)
            .await;
        let refused = env
            .audit
            .wait_for(|r| {
                r.actor == "dev-a"
                    && r.action == "mqtt.publish"
                    && r.target == "dev/dev-b/telemetry"
                    && !r.allowed
            })
            .await;
        assert!(
            refused.is_some(),
            "refusal not audited: {:?}",
            env.audit.all()
        );
        // Control: B's own publish on the same topic arrives, so the watcher works.
        let control = format!("genuine-from-b-{v}");
        let (ok, out) = env
            .publish_as("dev-b", "dev/dev-b/telemetry", &control, v)
            .await;
        assert!(ok, "B could not publish its own telemetry: {out}");
        let got = watcher.wait_line(|l| l.contains(&control), 5 * SEC).await;
        assert!(
            got.is_some(),
            "control message did not arrive: {:?}",
            watcher.lines
        );
        assert!(
            !watcher.lines.iter().any(|l| l.contains(&attack)),
            "forged message delivered: {:?}",
            watcher.lines
        );
        let ev = next_event(
            &mut events,
            |m| m.payload.as_ref() == control.as_bytes(),
            5 * SEC,
        )
        .await
        .unwrap();
        assert_eq!(ev.device_id, "dev-b");
        assert_eq!(ev.topic, "dev/dev-b/telemetry");
    }
    // The server never received the forged messages as anyone's telemetry.
    while let Ok(m) = events.try_recv() {
        assert_ne!(
            m.device_id, "dev-a",
            "forged publish reached the server: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_device_a_subscribes_to_device_b_refused() {
    let env = Env::start(&["dev-a", "dev-b"]).await;
    for v in VERSIONS {
        // Every filter that would reach B's commands (or anything outside A) is denied.
        let attacks = [
            "dev/dev-b/cmd/#",
            "dev/+/cmd/#",
            "dev/#",
            "#",
            "+/+/cmd/x",
            "+/dev-b/#",
            "$SYS/#",
        ];
        for filter in attacks {
            let files = env.cert("dev-a");
            let mut args = env.mosq_args(Some(&files), "dev-a", v);
            args.extend(["-d".into(), "-v".into(), "-t".into(), filter.into()]);
            let mut sub = Sub::spawn(&args);
            assert!(
                sub.wait_line(|l| l.contains("SUBACK"), 10 * SEC)
                    .await
                    .is_some(),
                "{:?}",
                sub.lines
            );
            env.handle
                .publish("dev/dev-b/cmd/unlock", format!("secret-{v}"), 1)
                .await
                .unwrap();
            sub.drain(SEC / 2).await;
            // SUBACK failure: 0x80 in MQTT 3.1.1, 0x87 NotAuthorized in MQTT 5.
            let code = if v == "mqttv5" { "135" } else { "128" };
            assert!(
                sub.lines
                    .iter()
                    .any(|l| l.starts_with("Subscribed (mid: 1): ") && l.ends_with(code)),
                "{filter}: expected SUBACK code {code}: {:?}",
                sub.lines
            );
            assert!(
                !sub.lines.iter().any(|l| l.contains("secret-")),
                "A received B's command through {filter}: {:?}",
                sub.lines
            );
            let denied = env
                .audit
                .wait_for(|r| {
                    r.actor == "dev-a"
                        && r.action == "mqtt.subscribe"
                        && r.target == filter
                        && !r.allowed
                })
                .await;
            assert!(
                denied.is_some(),
                "subscription {filter} not refused: {:?}",
                env.audit.all()
            );
        }
        // Control: A's own command topic works, with the same kind of wildcard.
        let mut own = env.subscribe_as("dev-a", &["dev/dev-a/cmd/+"], v).await;
        env.handle
            .publish("dev/dev-a/cmd/reboot", format!("for-a-{v}"), 1)
            .await
            .unwrap();
        assert!(
            own.wait_line(|l| l.contains(&format!("for-a-{v}")), 5 * SEC)
                .await
                .is_some(),
            "{:?}",
            own.lines
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_no_client_certificate_refused() {
    let env = Env::start(&["dev-a"]).await;
    for v in VERSIONS {
        let mut args = env.mosq_args(None, "dev-a", v);
        args.extend([
            "-t".into(),
            "dev/dev-a/telemetry".into(),
            "-m".into(),
            "x".into(),
        ]);
        let (ok, out) = mosquitto_pub(&args).await;
        assert!(
            !ok,
            "connection without a client certificate succeeded: {out}"
        );
        let (ok, out) = env
            .publish_as("dev-a", "dev/dev-a/telemetry", "with-cert", v)
            .await;
        assert!(ok, "control with a certificate failed: {out}");
    }
    // Only the two certificate-bearing connections got as far as the authorizer.
    assert_eq!(env.authz.seen.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_certificate_from_unknown_ca_refused() {
    let env = Env::start(&["dev-a"]).await;
    // A rogue CA issues a certificate with the CN of a real, active device.
    let rogue = TestPki::new(&env.dir.path().join("rogue"), "rogue").unwrap();
    let forged = rogue.issue_client("dev-a").unwrap();
    for v in VERSIONS {
        let mut args = env.mosq_args(Some(&forged), "dev-a", v);
        args.extend([
            "-t".into(),
            "dev/dev-a/telemetry".into(),
            "-m".into(),
            "x".into(),
        ]);
        let (ok, out) = mosquitto_pub(&args).await;
        assert!(!ok, "certificate from an unknown CA accepted: {out}");
    }
    assert!(
        env.authz.seen.lock().unwrap().is_empty(),
        "rogue certificate reached the authorizer"
    );
    let (ok, out) = env
        .publish_as("dev-a", "dev/dev-a/telemetry", "genuine", "mqttv311")
        .await;
    assert!(ok, "control failed: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_expired_certificate_refused() {
    let env = Env::start(&["dev-a"]).await;
    let expired = env.cert_with(
        "dev-a",
        &ClientCertOptions {
            expired: true,
            ..Default::default()
        },
    );
    let mut args = env.mosq_args(Some(&expired), "dev-a", "mqttv311");
    args.extend([
        "-t".into(),
        "dev/dev-a/telemetry".into(),
        "-m".into(),
        "x".into(),
    ]);
    let (ok, out) = mosquitto_pub(&args).await;
    assert!(!ok, "expired certificate accepted: {out}");
    assert!(env.authz.seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_revoked_device_refused_at_connect() {
    let env = Env::start(&["dev-a"]).await;
    env.authz.set("dev-a", State::Revoked);
    for v in VERSIONS {
        let (ok, out) = env.publish_as("dev-a", "dev/dev-a/telemetry", "x", v).await;
        assert!(!ok, "revoked device connected ({v}): {out}");
        assert!(
            out.to_lowercase().contains("not authori"),
            "expected a not-authorised CONNACK ({v}): {out}"
        );
    }
    let r = env
        .audit
        .wait_for(|r| r.actor == "dev-a" && r.action == "mqtt.connect" && !r.allowed)
        .await
        .unwrap();
    assert!(r.reason.starts_with("revoked; certificate serial"), "{r:?}");
    // An unknown (never registered) device is refused the same way, with its own reason.
    let (ok, _) = env
        .publish_as("dev-unknown", "dev/dev-unknown/telemetry", "x", "mqttv311")
        .await;
    assert!(!ok);
    assert!(
        env.audit
            .wait_for(|r| r.actor == "dev-unknown" && r.reason.starts_with("unknown device;"))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_revoked_device_open_session_closed() {
    let env = Env::start(&["dev-a"]).await;
    for v in VERSIONS {
        env.authz.set("dev-a", State::Active);
        let mut sub = env.subscribe_as("dev-a", &["dev/dev-a/cmd/#"], v).await;
        assert!(env.handle.is_connected("dev-a").await);
        // The server revokes the device and closes its open session.
        env.authz.set("dev-a", State::Revoked);
        let t0 = Instant::now();
        assert!(
            env.handle.kick("dev-a").await.unwrap(),
            "no session to kick"
        );
        while env.handle.is_connected("dev-a").await {
            assert!(
                t0.elapsed() < SEC,
                "session still open {:?} after kick",
                t0.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Commands sent after revocation do not reach it.
        env.handle
            .publish("dev/dev-a/cmd/x", format!("after-revoke-{v}"), 1)
            .await
            .unwrap();
        assert!(
            sub.exited_within(15 * SEC).await,
            "mosquitto_sub kept running: {:?}",
            sub.lines
        );
        assert!(
            !sub.lines.iter().any(|l| l.contains("after-revoke")),
            "{:?}",
            sub.lines
        );
        // The device comes back: its reconnection is refused because it is revoked.
        let (ok, out) = env
            .publish_as("dev-a", "dev/dev-a/telemetry", "back", v)
            .await;
        assert!(!ok, "revoked device reconnected: {out}");
        assert!(!env.handle.is_connected("dev-a").await);
    }
    let kicks = env
        .audit
        .all()
        .into_iter()
        .filter(|r| r.action == "mqtt.kick" && r.target == "dev-a")
        .count();
    assert_eq!(kicks, 2);
    let refused = env
        .audit
        .all()
        .into_iter()
        .filter(|r| r.action == "mqtt.connect" && r.reason.starts_with("revoked;"))
        .count();
    // The refused reconnections with the same certificate from the same address are one
    // entry per aggregation window (see `front_door.rs`).
    assert!(refused >= 1, "{:?}", env.audit.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_client_id_differs_from_certificate_cn_refused() {
    let env = Env::start(&["dev-a", "dev-b"]).await;
    let a = env.cert("dev-a");
    for v in VERSIONS {
        // A presents its own certificate but claims B's client id (to take over B's session).
        let mut sub_b = env.subscribe_as("dev-b", &["dev/dev-b/cmd/#"], v).await;
        let mut args = env.mosq_args(Some(&a), "dev-b", v);
        args.extend([
            "-t".into(),
            "dev/dev-b/telemetry".into(),
            "-m".into(),
            "x".into(),
        ]);
        let (ok, out) = mosquitto_pub(&args).await;
        assert!(!ok, "client id != CN accepted ({v}): {out}");
        // B's session was not taken over: it still receives its commands.
        env.handle
            .publish("dev/dev-b/cmd/ping", format!("still-b-{v}"), 1)
            .await
            .unwrap();
        assert!(
            sub_b
                .wait_line(|l| l.contains(&format!("still-b-{v}")), 5 * SEC)
                .await
                .is_some(),
            "{:?}",
            sub_b.lines
        );
    }
    let r = env
        .audit
        .wait_for(|r| r.actor == "dev-a" && r.target == "dev-b" && !r.allowed)
        .await
        .unwrap();
    assert!(r.reason.contains("differs from certificate CN"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_quarantined_device_limited_to_update_channel() {
    let env = Env::start(&["svc:ops"]).await;
    env.authz.set("dev-q", State::Quarantined);
    let mut events = env.handle.subscribe_events();
    for v in VERSIONS {
        // Telemetry and commands are closed to it ...
        env.publish_as("dev-q", "dev/dev-q/telemetry", &format!("tele-{v}"), v)
            .await;
        assert!(
            env.audit
                .wait_for(|r| r.actor == "dev-q" && r.target == "dev/dev-q/telemetry" && !r.allowed)
                .await
                .is_some()
        );
        let files = env.cert("dev-q");
        let mut args = env.mosq_args(Some(&files), "dev-q", v);
        args.extend(["-d".into(), "-t".into(), "dev/dev-q/cmd/#".into()]);
        let mut sub = Sub::spawn(&args);
        sub.wait_line(|l| l.contains("SUBACK"), 10 * SEC).await;
        assert!(
            env.audit
                .wait_for(|r| r.actor == "dev-q" && r.target == "dev/dev-q/cmd/#" && !r.allowed)
                .await
                .is_some()
        );
        drop(sub);
        // ... the update channel is open both ways.
        let (ok, out) = env
            .publish_as(
                "dev-q",
                "dev/dev-q/up/update/status",
                &format!("upd-{v}"),
                v,
            )
            .await;
        assert!(ok, "{out}");
        let ev = next_event(
            &mut events,
            |m| m.payload.as_ref() == format!("upd-{v}").as_bytes(),
            5 * SEC,
        )
        .await;
        assert_eq!(ev.unwrap().topic, "dev/dev-q/up/update/status");
        let mut upd = env
            .subscribe_as("dev-q", &["dev/dev-q/down/update/#"], v)
            .await;
        env.handle
            .publish("dev/dev-q/down/update/manifest", format!("manifest-{v}"), 1)
            .await
            .unwrap();
        assert!(
            upd.wait_line(|l| l.contains(&format!("manifest-{v}")), 5 * SEC)
                .await
                .is_some(),
            "{:?}",
            upd.lines
        );
    }
    while let Ok(m) = events.try_recv() {
        assert!(
            m.topic.starts_with("dev/dev-q/up/update/"),
            "quarantined device reached the server: {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_last_will_on_other_device_topic_refused() {
    let env = Env::start(&["dev-a", "dev-b"]).await;
    let a = env.cert("dev-a");
    for v in VERSIONS {
        // rmqtt publishes wills without an ACL check: the will topic is checked at connect.
        let mut args = env.mosq_args(Some(&a), "dev-a", v);
        args.extend([
            "--will-topic".into(),
            "dev/dev-b/cmd/unlock".into(),
            "--will-payload".into(),
            "x".into(),
            "-t".into(),
            "dev/dev-a/telemetry".into(),
            "-m".into(),
            "x".into(),
        ]);
        let (ok, out) = mosquitto_pub(&args).await;
        assert!(
            !ok,
            "connect with a will on B's topic accepted ({v}): {out}"
        );
    }
    let r = env
        .audit
        .wait_for(|r| r.actor == "dev-a" && r.reason.contains("last-will"))
        .await;
    assert!(r.is_some(), "{:?}", env.audit.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_dot_dot_and_empty_levels_refused() {
    let env = Env::start(&["dev-a"]).await;
    // Inside its own `up/#` on paper, but a path-normalizing consumer would read B's command topic.
    for topic in ["dev/dev-a/up/../../dev-b/cmd/unlock", "dev/dev-a/up//x"] {
        env.publish_as("dev-a", topic, "x", "mqttv311").await;
        let r = env
            .audit
            .wait_for(|r| r.actor == "dev-a" && r.target == topic && !r.allowed)
            .await;
        assert!(r.is_some(), "{topic} not refused: {:?}", env.audit.all());
    }
    let (ok, out) = env
        .publish_as("dev-a", "dev/dev-a/up/update/status", "fine", "mqttv311")
        .await;
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_publish_reaches_server_and_server_command_reaches_device() {
    let env = Env::start(&["dev-a", "svc:ops"]).await;
    let mut events = env.handle.subscribe_events();
    for v in VERSIONS {
        let (ok, out) = env
            .publish_as("dev-a", "dev/dev-a/telemetry", &format!("t-{v}"), v)
            .await;
        assert!(ok, "{out}");
        let ev = next_event(&mut events, |_| true, 5 * SEC)
            .await
            .expect("no device message");
        assert_eq!(
            (ev.device_id.as_str(), ev.topic.as_str(), ev.qos),
            ("dev-a", "dev/dev-a/telemetry", 1)
        );
        assert_eq!(ev.payload.as_ref(), format!("t-{v}").as_bytes());
        let mut sub = env.subscribe_as("dev-a", &["dev/dev-a/cmd/#"], v).await;
        env.handle
            .publish("dev/dev-a/cmd/reboot", format!("reboot-{v}"), 1)
            .await
            .unwrap();
        let line = sub
            .wait_line(|l| l.contains(&format!("reboot-{v}")), 5 * SEC)
            .await;
        assert_eq!(line.unwrap(), format!("dev/dev-a/cmd/reboot reboot-{v}"));
        // A service identity (operator tool) may send commands too.
        let (ok, out) = env
            .publish_as("svc:ops", "dev/dev-a/cmd/reboot", &format!("ops-{v}"), v)
            .await;
        assert!(ok, "{out}");
        assert!(
            sub.wait_line(|l| l.contains(&format!("ops-{v}")), 5 * SEC)
                .await
                .is_some()
        );
    }
    // The authorizer saw the certificate fields the server needs for revocation.
    let seen = env.authz.seen.lock().unwrap().clone();
    let a = seen.iter().find(|c| c.common_name == "dev-a").unwrap();
    assert_eq!(a.serial_hex, env.cert("dev-a").serial_hex);
    assert_eq!(a.client_id, "dev-a");
    assert!(a.subject.contains("dev-a"));
    assert!(a.remote_addr.unwrap().ip().is_loopback());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_publish_rejects_wildcards_and_system_topics() {
    let env = Env::start(&[]).await;
    for t in ["dev/+/cmd/x", "dev/#", "$SYS/x", "", "dev//x"] {
        assert!(
            env.handle.publish(t, "x", 0).await.is_err(),
            "{t:?} accepted"
        );
    }
    assert!(env.handle.publish("dev/x/cmd/y", "x", 3).await.is_err());
    assert!(env.handle.publish("dev/x/cmd/y", "x", 0).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_persisted_session_keeps_commands_after_quarantine_refused() {
    let env = Env::start(&["dev-a"]).await;
    let files = env.cert("dev-a");
    let persistent = |filter: &str| {
        let mut args = env.mosq_args(Some(&files), "dev-a", "mqttv311");
        args.extend([
            "-c".into(),
            "-q".into(),
            "1".into(),
            "-d".into(),
            "-v".into(),
        ]);
        args.extend(["-t".into(), filter.into()]);
        args
    };
    // Active: a persistent session (clean session = false) subscribed to its commands, then the
    // device drops off the network without DISCONNECT.
    let mut sub = Sub::spawn(&persistent("dev/dev-a/cmd/#"));
    assert!(
        sub.wait_line(|l| l.contains("SUBACK"), 10 * SEC)
            .await
            .is_some(),
        "{:?}",
        sub.lines
    );
    sub.child.kill().await.unwrap();
    drop(sub);
    // Quarantined while away; it comes back with the same persistent session.
    env.authz.set("dev-a", State::Quarantined);
    let mut back = Sub::spawn(&persistent("dev/dev-a/down/update/#"));
    assert!(
        back.wait_line(|l| l.contains("SUBACK"), 10 * SEC)
            .await
            .is_some(),
        "{:?}",
        back.lines
    );
    assert!(
        back.lines.iter().any(|l| l.contains("CONNACK (0)")),
        "{:?}",
        back.lines
    );
    env.handle
        .publish("dev/dev-a/cmd/unlock", "old-subscription", 1)
        .await
        .unwrap();
    env.handle
        .publish("dev/dev-a/down/update/manifest", "update", 1)
        .await
        .unwrap();
    assert!(
        back.wait_line(|l| l.contains("update"), 5 * SEC)
            .await
            .is_some(),
        "{:?}",
        back.lines
    );
    back.drain(SEC / 2).await;
    assert!(
        !back.lines.iter().any(|l| l.contains("old-subscription")),
        "the persisted command subscription survived quarantine: {:?}",
        back.lines
    );
    let r = env
        .audit
        .wait_for(|r| r.target == "dev/dev-a/cmd/#" && !r.allowed)
        .await
        .unwrap();
    assert!(r.reason.contains("persisted subscription"), "{r:?}");
}
