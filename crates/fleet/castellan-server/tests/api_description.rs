//! The API's tools-facing surfaces against a running service: `GET /api/v1/openapi.json`
//! (served without a token, equal to the generated document, and real answers valid against
//! its schemas) and `GET /metrics` after some activity, read back with a Prometheus text
//! parser.

mod common;

use castellan_store::testing::TestStore;
use castellan_store::{Alert, AlertState};
use common::console::fake_device;
use common::device::TestDevice;
use common::*;
use serde_json::{Value, json};

/// The schema of the `status` answer of `method path` in the document, as a standalone JSON
/// Schema (the document's components alongside, for its references).
fn answer_schema(doc: &Value, method: &str, path: &str, status: u16) -> jsonschema::Validator {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema in the document"
    );
    let mut standalone = schema.clone();
    standalone["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    standalone["components"] = doc["components"].clone();
    jsonschema::validator_for(&standalone).unwrap()
}

fn assert_valid(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let v = answer_schema(doc, method, path, status);
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_the_served_openapi_document() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    for n in 0..3 {
        let d = fake_device(n, &format!("SN-{n:04}"));
        t.store.register_device(&d, 1_700_000_000).await.unwrap();
    }

    // Served without a token, and the same document the code generates (and docs/ holds).
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let generated: Value =
        serde_json::from_str(&castellan_server::openapi_document_json()).unwrap();
    assert_eq!(doc, generated);

    let (status, body) = api.call("GET", "/api/v1/health", None, None).await;
    assert_eq!(status, 200);
    assert_valid(&doc, "get", "/api/v1/health", 200, &body);

    let (status, body) = api.call("GET", "/api/v1/devices", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 3);
    assert_valid(&doc, "get", "/api/v1/devices", 200, &body);

    let (status, body) = api
        .call("GET", "/api/v1/devices/SIM-0001", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_valid(&doc, "get", "/api/v1/devices/{id}", 200, &body);
    // The schema is not vacuous: a device whose flag is a string is refused by it.
    let mut broken = body.clone();
    broken["quarantined"] = json!("yes");
    assert!(!answer_schema(&doc, "get", "/api/v1/devices/{id}", 200).is_valid(&broken));
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("serial");
    assert!(!answer_schema(&doc, "get", "/api/v1/devices/{id}", 200).is_valid(&missing));

    let (status, body) = api
        .call(
            "POST",
            "/api/v1/devices/SIM-0002/quarantine",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_valid(&doc, "post", "/api/v1/devices/{id}/quarantine", 200, &body);

    let (status, body) = api
        .call("GET", "/api/v1/devices/NO-SUCH", Some(&admin), None)
        .await;
    assert_eq!(status, 404);
    assert_valid(&doc, "get", "/api/v1/devices/{id}", 404, &body);

    let (status, body) = api.call("GET", "/api/v1/devices", None, None).await;
    assert_eq!(status, 401);
    assert_valid(&doc, "get", "/api/v1/devices", 401, &body);

    let (status, body) = api.call("GET", "/api/v1/audit", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert!(!body.as_array().unwrap().is_empty());
    assert_valid(&doc, "get", "/api/v1/audit", 200, &body);

    let (status, body) = api
        .call("GET", "/api/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    assert_valid(&doc, "get", "/api/v1/audit/verify", 200, &body);

    let (status, body) = api
        .call("GET", "/api/v1/policies/sensor-v1", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    assert_valid(&doc, "get", "/api/v1/policies/{class}", 200, &body);

    for path in ["/api/v1/campaigns", "/api/v1/releases", "/api/v1/alerts"] {
        let (status, body) = api.call("GET", path, Some(&admin), None).await;
        assert_eq!(status, 200, "{path}");
        assert_valid(&doc, "get", path, 200, &body);
    }
    server.shutdown().await;
}

/// One sample's value from a scrape, by metric name and labels.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            // The +Inf bucket: every observation.
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_activity_parse_as_prometheus_text() {
    let t = TestStore::sqlite().await;
    let tmp = tempdir();
    let server = start_server(&t, &state_dir(&tmp)).await;
    let api = Api::new(&server);
    let admin = server.admin_token().unwrap().to_string();
    // One device onboarded through MQTT (messages, an accepted onboarding, a passed
    // attestation), two registered only, one of them quarantined.
    let mut dev = TestDevice::new("CSTL-0001", 1, tmp.path());
    register(&api, &admin, &mut dev).await;
    let result = onboard(&server, &mut dev, EvidenceKind::Honest).await;
    assert!(result.accepted, "{:?}", result.reason);
    for n in 0..2 {
        let d = fake_device(n, &format!("SN-{n:04}"));
        t.store.register_device(&d, 1_700_000_000).await.unwrap();
    }
    t.store.set_quarantined("SIM-0001", true).await.unwrap();
    t.store
        .raise_alert(&Alert {
            id: "alr-test".into(),
            device_id: Some("SIM-0000".into()),
            device_class: "sensor-v1".into(),
            release: "r1".into(),
            kind: "device".into(),
            severity: "high".into(),
            state: AlertState::Open,
            summary: "test".into(),
            evidence: "{}".into(),
            raised_at: 1_700_000_000,
            updated_at: 1_700_000_000,
            updated_by: None,
            probation_until: None,
        })
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, _) = api
            .call("GET", "/api/v1/devices/NO-SUCH", Some(&admin), None)
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = api.call("GET", "/metrics", None, None).await;
    assert_eq!(status, 401, "no token, no metrics");

    let bearer = format!("Bearer {admin}");
    let (status, _, body) = api.get_raw("/metrics", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&scrape, name, labels).unwrap_or_else(|| panic!("{name} {labels:?}:\n{text}"))
    };
    assert_eq!(value("castellan_devices", &[("state", "onboarded")]), 1.0);
    assert_eq!(value("castellan_devices", &[("state", "quarantined")]), 1.0);
    assert_eq!(value("castellan_alerts", &[("state", "open")]), 1.0);
    assert_eq!(value("castellan_alerts", &[("state", "resolved")]), 0.0);
    assert_eq!(
        value("castellan_onboarding_total", &[("outcome", "accepted")]),
        1.0
    );
    assert_eq!(
        value(
            "castellan_attestation_total",
            &[("kind", "onboarding"), ("result", "passed")]
        ),
        1.0
    );
    assert!(value("castellan_mqtt_messages_received_total", &[]) >= 2.0);
    assert_eq!(
        value(
            "castellan_http_request_duration_seconds",
            &[
                ("route", "/api/v1/devices/:id"),
                ("status", "404"),
                ("method", "GET")
            ]
        ),
        3.0,
        "three 404s of the device route, counted by pattern"
    );
    assert_eq!(
        value(
            "castellan_http_request_duration_seconds",
            &[("route", "/metrics"), ("status", "401")]
        ),
        1.0
    );
    assert!(
        !text.contains("NO-SUCH"),
        "routes are labelled by pattern, not by the path asked for"
    );
    server.shutdown().await;
}
