//! Signed detection reports on the real broker: a test device whose secure services run the
//! edge detector (behind the simulated gate) signs reports; the server verifies them with the
//! device's registered attestation key, lists them, refuses a forged or replayed one, records a
//! suppressed stretch as a counter gap and audits a crossed alarm threshold.

mod common;

use std::time::Duration;

use castellan_protocol::topics;
use castellan_server::{Server, ServerConfig, ServerHandle};
use castellan_store::Decision;
use castellan_store::testing::TestStore;
use castellan_testkit::mqtt_client::{MqttClient, tls_config};
use common::{Api, TestDevice, audit, enrolled, state_dir, tempdir};
use serde_json::Value;

struct Fleet {
    server: ServerHandle,
    api: Api,
    admin: String,
    dev: TestDevice,
    mqtt: MqttClient,
    _tmp: tempfile::TempDir,
    _store: TestStore,
}

async fn fleet(serial: &str, seed: u64) -> Fleet {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    castellan_testkit::fleet::hand_over_pki(&state_dir(&tmp));
    let config = ServerConfig::new(state_dir(&tmp))
        .with_ephemeral_ports()
        .with_database(t.location.clone());
    let server = Server::start(config).await.unwrap();
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    let dev = enrolled(&server, &api, &admin, serial, seed, tmp.path()).await;
    let tls = tls_config(
        &server.paths().ca_bundle,
        &dev.cert("ldevid"),
        &dev.key("ldevid"),
    )
    .unwrap();
    let mqtt = MqttClient::connect(server.mqtt_addr(), tls, &dev.serial, 30)
        .await
        .unwrap();
    Fleet {
        server,
        api,
        admin,
        dev,
        mqtt,
        _tmp: tmp,
        _store: t,
    }
}

impl Fleet {
    async fn send(&mut self, report: &[u8]) {
        let topic = topics::detect_report(&self.dev.serial);
        self.mqtt.publish_qos1(&topic, report, 1).await.unwrap();
    }

    async fn listed(&self) -> Vec<Value> {
        let path = format!("/api/v1/devices/{}/detections", self.dev.serial);
        let (status, body) = self.api.call("GET", &path, Some(&self.admin), None).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// The detection audit entries (allowed, code), once `n` of them are there.
    async fn entries(&self, n: usize) -> Vec<(bool, String, String)> {
        for _ in 0..100 {
            let e: Vec<_> = audit(&self.server)
                .await
                .into_iter()
                .filter(|e| e.action == "detect.report" && e.target == self.dev.serial)
                .map(|e| {
                    (
                        e.decision == Decision::Allowed,
                        e.code.clone().unwrap_or_default(),
                        e.reason.clone(),
                    )
                })
                .collect();
            if e.len() >= n {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} detection audit entries");
    }

    async fn wait_listed(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let l = self.listed().await;
            if l.len() >= n {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} detection reports listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_verify_are_listed_and_a_crossed_threshold_is_audited() {
    let mut f = fleet("CSTL-D1", 1101).await;
    let quiet = f.dev.detection_report(0);
    f.send(&quiet).await;
    let l = f.wait_listed(1).await;
    assert_eq!(l[0]["counter"], 1);
    assert_eq!(l[0]["crossed"], false);
    assert_eq!(l[0]["gap"], 0);
    assert_eq!(l[0]["model_digest"].as_str().unwrap().len(), 64);
    let alarm = f.dev.detection_report(1);
    f.send(&alarm).await;
    let l = f.wait_listed(2).await;
    assert_eq!(l[0]["counter"], 2);
    assert_eq!(l[0]["crossed"], true);
    assert_eq!(l[0]["counters"][1], 1, "one refused pointer");
    let e = f.entries(1).await;
    assert!(
        e.iter().any(|(ok, code, _)| *ok && code == "detect.alarm"),
        "{e:?}"
    );
    // The same role rule as telemetry: no token, no reports.
    let path = format!("/api/v1/devices/{}/detections", f.dev.serial);
    let (status, _) = f.api.call("GET", &path, None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_forged_detection_report_refused() {
    let mut f = fleet("CSTL-D2", 1102).await;
    let mut forged = f.dev.detection_report(1);
    // Claim a quiet period: the payload's "crossed" (0xf5) becomes false, signature unchanged.
    let at = forged.iter().position(|b| *b == 0xf5).unwrap();
    forged[at] = 0xf4;
    f.send(&forged).await;
    // Another device's key signing this device's report does not verify either.
    let mut other = TestDevice::new("CSTL-OTHER", 77, f._tmp.path());
    f.send(&other.detection_report(0)).await;
    let e = f.entries(2).await;
    assert!(
        e.iter()
            .filter(|(ok, code, _)| !*ok && code == "detect.forged")
            .count()
            >= 2,
        "{e:?}"
    );
    assert!(f.listed().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_replayed_detection_report_refused() {
    let mut f = fleet("CSTL-D3", 1103).await;
    let first = f.dev.detection_report(0);
    let second = f.dev.detection_report(0);
    f.send(&first).await;
    f.send(&second).await;
    f.wait_listed(2).await;
    // A replay of an old report (a quiet one, to hide an alarm) is refused.
    f.send(&first).await;
    f.send(&second).await;
    let e = f.entries(2).await;
    assert_eq!(
        e.iter()
            .filter(|(ok, code, _)| !*ok && code == "detect.replay")
            .count(),
        2,
        "{e:?}"
    );
    assert_eq!(f.listed().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_suppressed_reports_show_as_a_counter_gap() {
    let mut f = fleet("CSTL-D4", 1104).await;
    let first = f.dev.detection_report(0);
    f.send(&first).await;
    f.wait_listed(1).await;
    // The compromised normal world has the secure side sign two reports (one with an alarm)
    // and drops them; the next one it must send shows the gap.
    let _dropped = f.dev.detection_report(3);
    let _dropped = f.dev.detection_report(0);
    let fourth = f.dev.detection_report(0);
    f.send(&fourth).await;
    let l = f.wait_listed(2).await;
    assert_eq!(l[0]["counter"], 4);
    assert_eq!(l[0]["gap"], 2);
    let e = f.entries(1).await;
    assert!(
        e.iter().any(|(ok, code, reason)| *ok
            && code == "detect.gap"
            && reason.contains("2 detection")),
        "{e:?}"
    );
}
