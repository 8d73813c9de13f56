//! The operator API's role table, enforced on each endpoint (every endpoint × every role, no
//! token, an unknown token), every refusal audited with who, what and why; on SQLite and
//! PostgreSQL.

mod common;

use castellan_server::ROUTES;
use castellan_store::Decision;
use castellan_store::testing::{TestStore, each_backend};
use common::*;
use serde_json::{Value, json};

const ADMIN: &str = "admin";
const OPERATOR: &str = "operator";
const AUDITOR: &str = "auditor";
const RELEASE: &str = "release-manager";
const DECOM: &str = "decommissioner";

/// The table of docs/fleet-protocol.md, written independently of the server's own table.
fn expected() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("POST", "/api/v1/factory/devices", vec![ADMIN, OPERATOR]),
        (
            "GET",
            "/api/v1/devices",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        (
            "GET",
            "/api/v1/devices/ROLE-DEV",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        (
            "GET",
            "/api/v1/devices/ROLE-DEV/telemetry",
            vec![ADMIN, OPERATOR, AUDITOR],
        ),
        (
            "GET",
            "/api/v1/devices/ROLE-DEV/detections",
            vec![ADMIN, OPERATOR, AUDITOR],
        ),
        ("POST", "/api/v1/devices/ROLE-DEV/revoke", vec![ADMIN]),
        (
            "POST",
            "/api/v1/devices/ROLE-DEV/quarantine",
            vec![ADMIN, OPERATOR],
        ),
        (
            "DELETE",
            "/api/v1/devices/ROLE-DEV/quarantine",
            vec![ADMIN, OPERATOR],
        ),
        (
            "POST",
            "/api/v1/devices/ROLE-DEV/heal",
            vec![ADMIN, OPERATOR],
        ),
        ("POST", "/api/v1/devices/ROLE-DEV/decommission", vec![DECOM]),
        ("GET", "/api/v1/alerts", vec![ADMIN, OPERATOR, AUDITOR]),
        (
            "POST",
            "/api/v1/alerts/ROLE-DEV/acknowledge",
            vec![ADMIN, OPERATOR],
        ),
        (
            "POST",
            "/api/v1/alerts/ROLE-DEV/resolve",
            vec![ADMIN, OPERATOR],
        ),
        (
            "GET",
            "/api/v1/policies/sensor-v1",
            vec![ADMIN, OPERATOR, AUDITOR],
        ),
        ("PUT", "/api/v1/policies/sensor-v1", vec![ADMIN]),
        ("POST", "/api/v1/operators", vec![ADMIN]),
        ("GET", "/metrics", vec![ADMIN, OPERATOR, AUDITOR]),
        ("GET", "/api/v1/audit", vec![ADMIN, AUDITOR]),
        ("GET", "/api/v1/audit/verify", vec![ADMIN, AUDITOR]),
        ("PUT", "/api/v1/release-key", vec![ADMIN]),
        // Releases and campaigns: changed by the release manager only (not even an admin).
        ("POST", "/api/v1/releases", vec![RELEASE]),
        (
            "GET",
            "/api/v1/releases",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        (
            "GET",
            "/api/v1/releases/ROLE-DEV",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        (
            "GET",
            "/api/v1/releases/ROLE-DEV/image",
            vec![ADMIN, RELEASE],
        ),
        ("POST", "/api/v1/campaigns", vec![RELEASE]),
        (
            "GET",
            "/api/v1/campaigns",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        (
            "GET",
            "/api/v1/campaigns/ROLE-DEV",
            vec![ADMIN, OPERATOR, AUDITOR, RELEASE, DECOM],
        ),
        ("POST", "/api/v1/campaigns/ROLE-DEV/pause", vec![RELEASE]),
        ("POST", "/api/v1/campaigns/ROLE-DEV/resume", vec![RELEASE]),
        ("POST", "/api/v1/campaigns/ROLE-DEV/abort", vec![RELEASE]),
        ("POST", "/api/v1/campaigns/ROLE-DEV/rollback", vec![RELEASE]),
    ]
}

/// Update routes need releases and campaigns in the right state to succeed; here an admitted
/// role must get past the guard (any answer but 401 and 403), which is what this test is about.
/// Their success paths are tested in tests/releases.rs and tests/campaigns.rs.
fn needs_update_state(method: &str, path: &str) -> bool {
    // (An alert to acknowledge or resolve needs the analysis to have raised one: not here.)
    path.starts_with("/api/v1/alerts/")
        || path.ends_with("/heal")
        // A decommission's second request needs an onboarded device (tests/decommission.rs).
        || path.ends_with("/decommission")
        || path.starts_with("/api/v1/releases")
        || path.starts_with("/api/v1/campaigns")
        || (method == "PUT" && path == "/api/v1/release-key")
}

/// A valid body for `path` (fresh each time: serials and names must be unique).
fn body_for(method: &str, path: &str, n: usize, dir: &std::path::Path) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/factory/devices") => {
            let mut d = TestDevice::new(&format!("ROLE-{n}"), 1000 + n as u64, dir);
            Some(serde_json::to_value(d.factory_request("sensor-v1")).unwrap())
        }
        ("POST", "/api/v1/operators") => {
            Some(json!({"name": format!("new-op-{n}"), "role": "auditor"}))
        }
        ("PUT", "/api/v1/policies/sensor-v1") => Some(json!({
            "auto_quarantine": n.is_multiple_of(2),
            "max_quarantines_per_hour": 2,
        })),
        ("PUT", "/api/v1/release-key") => {
            let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
            let point = key.verifying_key().to_sec1_point(false);
            Some(json!({"public_key": hex::encode(point.as_bytes())}))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_roles_enforced_on_each_endpoint_and_refusals_audited() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        // The server's table covers exactly the documented endpoints.
        let table = expected();
        assert_eq!(ROUTES.len(), table.len());
        for r in ROUTES {
            let path = r
                .path
                .replace("{id}", "ROLE-DEV")
                .replace("{class}", "sensor-v1");
            let row = table.iter().find(|(m, p, _)| *m == r.method && *p == path);
            let (_, _, roles) = row.unwrap_or_else(|| {
                panic!("{} {} is not in the documented table", r.method, r.path)
            });
            let mut mine: Vec<&str> = r.roles.iter().map(|x| x.as_str()).collect();
            let mut doc = roles.clone();
            mine.sort();
            doc.sort();
            assert_eq!(mine, doc, "{} {}", r.method, r.path);
        }
        // One operator per role.
        let mut tokens = vec![(ADMIN, "admin".to_string(), admin.clone())];
        for role in [OPERATOR, AUDITOR, RELEASE, DECOM] {
            let name = format!("op-{role}");
            let (status, body) = api
                .call(
                    "POST",
                    "/api/v1/operators",
                    Some(&admin),
                    Some(&json!({"name": name, "role": role})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["role"], role);
            tokens.push((role, name, body["token"].as_str().unwrap().to_string()));
        }
        let mut dev = TestDevice::new("ROLE-DEV", 7, tmp.path());
        register(&api, &admin, &mut dev).await;

        let mut n = 0;
        let mut handler_refusals = 0;
        let mut refusals: Vec<(String, String, String)> = Vec::new(); // (actor prefix, path, status)
        for (method, path, allowed) in &table {
            for (role, name, token) in &tokens {
                n += 1;
                let body = body_for(method, path, n, tmp.path());
                let (status, resp) = api.call(method, path, Some(token), body.as_ref()).await;
                if allowed.contains(role) {
                    if needs_update_state(method, path) && !(200..300).contains(&status) {
                        assert!(
                            status != 401 && status != 403,
                            "{role} {method} {path}: {status} {resp}"
                        );
                        handler_refusals += 1;
                    } else {
                        assert!(
                            (200..300).contains(&status),
                            "{role} {method} {path}: {status} {resp}"
                        );
                    }
                } else {
                    assert_eq!(status, 403, "{role} {method} {path}: {resp}");
                    assert_eq!(resp["error"], "forbidden");
                    assert!(resp["reason"].as_str().unwrap().contains(role), "{resp}");
                    refusals.push((name.clone(), path.to_string(), "403".into()));
                }
            }
            for token in [
                None,
                Some("cst_00000000000000000000000000000000000000000000000000000000deadbeef"),
            ] {
                let (status, resp) = api.call(method, path, token, None).await;
                assert_eq!(status, 401, "{token:?} {method} {path}: {resp}");
                assert_eq!(resp["error"], "unauthenticated");
                refusals.push(("anonymous@".into(), path.to_string(), "401".into()));
            }
        }
        // Open endpoints.
        let (status, health) = api.call("GET", "/api/v1/health", None, None).await;
        assert_eq!((status, health["status"].clone()), (200, json!("ok")));
        let (status, ca) = api.call("GET", "/api/v1/pki/ca", None, None).await;
        assert_eq!(status, 200);
        assert_eq!(
            ca.as_str().unwrap().matches("BEGIN CERTIFICATE").count(),
            4,
            "root, manufacturer, operational and service CAs"
        );

        // Every refusal is in the audit log: who, what (the endpoint), why.
        let log = audit(&server).await;
        let refused: Vec<_> = log
            .iter()
            .filter(|e| e.decision == Decision::Refused && e.action.starts_with("api."))
            .collect();
        assert_eq!(
            refused.len(),
            refusals.len() + handler_refusals,
            "one audit entry per refusal"
        );
        for (actor, path, status) in &refusals {
            let found = refused.iter().any(|e| {
                e.actor.starts_with(actor.as_str())
                    && e.target == *path
                    && if status == "403" {
                        e.reason.contains("may not")
                    } else {
                        e.reason.contains("token")
                    }
            });
            assert!(found, "no audit entry for {status} of {actor} on {path}");
        }
        // Allowed changes are audited too, never with the secret token.
        let created: Vec<_> = log
            .iter()
            .filter(|e| e.action == "api.operator.create" && e.decision == Decision::Allowed)
            .collect();
        assert_eq!(created.len(), 5, "4 setup operators + 1 from the table");
        for (_, _, token) in &tokens {
            assert!(
                log.iter().all(|e| !e.reason.contains(token.as_str())),
                "a token leaked into the audit log"
            );
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_are_refused_with_a_reason_and_audited() {
    each_backend(async |t: &TestStore| {
        let tmp = tempdir();
        let server = start_server(t, &state_dir(&tmp)).await;
        let api = Api::new(&server);
        let admin = server.admin_token().unwrap().to_string();
        let mut dev = TestDevice::new("BAD-1", 8, tmp.path());
        let good = serde_json::to_value(dev.factory_request("sensor-v1")).unwrap();
        let cases: Vec<(Value, u16, &str)> = vec![
            (json!({"serial": "x"}), 400, "invalid JSON body"),
            (
                {
                    let mut v = good.clone();
                    v["serial"] = json!("dev/+/#");
                    v
                },
                400,
                "serial",
            ),
            (
                {
                    let mut v = good.clone();
                    v["csr"] = json!("3000");
                    v
                },
                400,
                "CSR refused",
            ),
            (
                {
                    let mut v = good.clone();
                    v["iak_public_key"] = json!("04");
                    v
                },
                400,
                "iak_public_key",
            ),
            (
                {
                    let mut v = good.clone();
                    v["reference_measurements"] = json!([]);
                    v
                },
                400,
                "reference_measurements",
            ),
        ];
        for (body, status, needle) in cases {
            let (s, resp) = api
                .call("POST", "/api/v1/factory/devices", Some(&admin), Some(&body))
                .await;
            assert_eq!(s, status, "{resp}");
            assert!(resp["reason"].as_str().unwrap().contains(needle), "{resp}");
            assert!(audit_has_refusal(&server, "api.factory.register", needle).await);
        }
        let (s, _) = api
            .call("POST", "/api/v1/factory/devices", Some(&admin), Some(&good))
            .await;
        assert_eq!(s, 201);
        let (s, resp) = api
            .call("POST", "/api/v1/factory/devices", Some(&admin), Some(&good))
            .await;
        assert_eq!(s, 409, "{resp}");
        let (s, _) = api
            .call("POST", "/api/v1/devices/NOPE/revoke", Some(&admin), None)
            .await;
        assert_eq!(s, 404);
        assert!(audit_has_refusal(&server, "api.device.revoke", "NOPE").await);
        let (s, resp) = api
            .call(
                "POST",
                "/api/v1/operators",
                Some(&admin),
                Some(&json!({"name": "x", "role": "root"})),
            )
            .await;
        assert_eq!(s, 400, "{resp}");
        server.shutdown().await;
    })
    .await;
}
