//! The same guarantees checked with a second, independent client stack: paho-mqtt (Python) over
//! Python's ssl module, MQTT 5 and 3.1.1. The scenario runner is `tests/peers/paho_client.py`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/paho_client.py");

use castellan_testkit::peers::paho::require as require_paho;

/// Starts one paho session as a child process; `.await` the handle for its JSON result.
fn paho(
    env: &Env,
    cn: Option<&str>,
    client_id: &str,
    version: &str,
    extra: Value,
) -> tokio::task::JoinHandle<Value> {
    require_paho();
    let mut sc = json!({
        "host": "127.0.0.1",
        "port": env.port(),
        "ca": path(&env.ca()),
        "client_id": client_id,
        "version": version,
    });
    if let Some(cn) = cn {
        let f = env.cert(cn);
        sc["cert"] = json!(path(&f.cert));
        sc["key"] = json!(path(&f.key));
    }
    for (k, v) in extra.as_object().unwrap() {
        sc[k] = v.clone();
    }
    let args = vec![SCRIPT.to_owned(), sc.to_string()];
    tokio::spawn(async move {
        let (ok, out) = run("python3", &args, Duration::from_secs(30)).await;
        assert!(ok, "paho script failed: {out}");
        serde_json::from_str(out.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {out}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_paho_v5_subscribe_to_other_device_gets_not_authorized() {
    let env = Env::start(&["dev-a", "dev-b"]).await;
    let filters = json!(["dev/dev-a/cmd/#", "dev/dev-b/cmd/#", "dev/+/cmd/#", "#"]);
    let task = paho(
        &env,
        Some("dev-a"),
        "dev-a",
        "5",
        json!({"subscribe": filters, "wait": 2}),
    );
    // Once the broker has ruled on the SUBSCRIBE, send a command to A and one to B.
    env.audit
        .wait_for(|r| r.action == "mqtt.subscribe" && r.target == "#")
        .await
        .expect("no subscribe decision");
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.handle
        .publish("dev/dev-b/cmd/unlock", "for-b", 1)
        .await
        .unwrap();
    env.handle
        .publish("dev/dev-a/cmd/reboot", "for-a", 1)
        .await
        .unwrap();
    let r = task.await.unwrap();
    assert_eq!(r["connect"], 0, "{r}");
    // Per-filter reason codes: granted QoS 1 for its own commands, 0x87 NotAuthorized otherwise.
    assert_eq!(r["suback"], json!([1, 135, 135, 135]), "{r}");
    assert_eq!(
        r["received"],
        json!([["dev/dev-a/cmd/reboot", "for-a"]]),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_paho_v311_subscribe_to_other_device_gets_failure() {
    let env = Env::start(&["dev-a"]).await;
    let task = paho(
        &env,
        Some("dev-a"),
        "dev-a",
        "311",
        json!({"subscribe": ["dev/dev-a/down/#", "dev/dev-b/down/#"]}),
    );
    let r = task.await.unwrap();
    assert_eq!(r["connect"], 0, "{r}");
    assert_eq!(r["suback"], json!([1, 128]), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_paho_client_id_differs_from_cn_refused() {
    let env = Env::start(&["dev-a", "dev-b"]).await;
    let r5 = paho(&env, Some("dev-a"), "dev-b", "5", json!({}))
        .await
        .unwrap();
    assert_eq!(
        r5["connect"], 135,
        "MQTT 5 CONNACK must be NotAuthorized: {r5}"
    );
    let r3 = paho(&env, Some("dev-a"), "dev-b", "311", json!({}))
        .await
        .unwrap();
    // paho 2 reports the 3.1.1 return code 5 ("not authorized") as reason code 135.
    assert_eq!(
        r3["connect"], 135,
        "MQTT 3.1.1 CONNACK must be 'not authorized': {r3}"
    );
    let ok = paho(&env, Some("dev-a"), "dev-a", "5", json!({}))
        .await
        .unwrap();
    assert_eq!(ok["connect"], 0, "control: {ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_paho_without_client_certificate_refused() {
    let env = Env::start(&["dev-a"]).await;
    let r = paho(
        &env,
        None,
        "dev-a",
        "5",
        json!({"publish": [["dev/dev-a/telemetry", "x"]]}),
    )
    .await
    .unwrap();
    assert!(
        r["error"].is_string() || r["connect"] != 0,
        "connected without a certificate: {r}"
    );
    assert_ne!(r["published"], json!([true]), "{r}");
    assert!(env.authz.seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_paho_v5_publish_to_other_device_refused_and_own_publish_delivered() {
    let env = Env::start(&["dev-a"]).await;
    let mut events = env.handle.subscribe_events();
    let own = paho(
        &env,
        Some("dev-a"),
        "dev-a",
        "5",
        json!({"publish": [["dev/dev-a/events", "boot"]]}),
    )
    .await
    .unwrap();
    assert_eq!(own["published"], json!([true]), "{own}");
    let ev = next_event(&mut events, |_| true, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (
            ev.device_id.as_str(),
            ev.topic.as_str(),
            ev.payload.as_ref()
        ),
        ("dev-a", "dev/dev-a/events", &b"boot"[..])
    );
    let bad = paho(
        &env,
        Some("dev-a"),
        "dev-a",
        "5",
        json!({"publish": [["dev/dev-b/cmd/unlock", "x"]]}),
    )
    .await
    .unwrap();
    assert_eq!(bad["published"], json!([false]), "{bad}");
    assert!(
        env.audit
            .wait_for(|r| r.target == "dev/dev-b/cmd/unlock" && !r.allowed)
            .await
            .is_some()
    );
    assert!(
        next_event(&mut events, |_| true, Duration::from_millis(500))
            .await
            .is_none()
    );
}
