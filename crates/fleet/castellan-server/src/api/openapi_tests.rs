//! The OpenAPI description against the route tables, the committed `docs/openapi.json` and
//! JSON Schema. Regenerate the committed file with
//! `CASTELLAN_WRITE_OPENAPI=1 cargo test -p castellan-server --lib openapi`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{document, document_json};
use crate::api::{PUBLIC_ROUTES, ROUTES, guarded_handler, public_handler};

/// Every (method, path) the document describes.
fn described() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Every (method, path) the router serves.
fn routed() -> BTreeSet<(String, String)> {
    let guarded = ROUTES.iter().map(|r| (r.method, r.path));
    guarded
        .chain(PUBLIC_ROUTES.iter().copied())
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[test]
fn openapi_describes_every_route_of_the_tables() {
    let described = described();
    let missing: Vec<_> = routed().difference(&described).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
}

#[test]
fn openapi_describes_no_route_the_router_lacks() {
    let routed = routed();
    let extra: Vec<_> = described().difference(&routed).cloned().collect();
    assert!(extra.is_empty(), "described but not routed: {extra:?}");
    // And every table entry has its handler (the router skips an entry without one).
    for r in ROUTES {
        assert!(
            guarded_handler(r.method, r.path).is_some(),
            "{} {}",
            r.method,
            r.path
        );
    }
    for (m, p) in PUBLIC_ROUTES {
        assert!(public_handler(m, p).is_some(), "{m} {p}");
    }
}

#[test]
fn openapi_operations_carry_the_guards_roles_and_security() {
    let doc: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert_eq!(op["operationId"], r.action, "{} {}", r.method, r.path);
        assert_eq!(op["security"], serde_json::json!([{ "bearer": [] }]));
        let description = op["description"].as_str().unwrap_or_default();
        for role in r.roles {
            assert!(
                description.contains(role.as_str()),
                "{}: {description}",
                r.path
            );
        }
        assert!(op["responses"]["401"].is_object() && op["responses"]["403"].is_object());
    }
    let mut ids = BTreeSet::new();
    for (m, p) in described() {
        let id = doc["paths"][&p][m.to_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{m} {p} has no operationId"))
            .to_string();
        assert!(ids.insert(id.clone()), "operationId {id} twice");
    }
    assert_eq!(
        doc["paths"]["/api/v1/openapi.json"]["get"]["security"],
        serde_json::json!([{}]),
        "the description needs no token"
    );
}

#[test]
fn openapi_schemas_compile_as_json_schema() {
    let doc = serde_json::to_value(document()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "DeviceJson",
        "AuditEntryJson",
        "CampaignJson",
        "ErrorJson",
        "AlertJson",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    for name in schemas.keys() {
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": doc["components"],
        });
        if let Err(e) = jsonschema::validator_for(&schema) {
            panic!("{name}: {e}");
        }
    }
}

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../docs/openapi.json")
}

#[test]
fn openapi_committed_file_is_the_generated_one() {
    let generated = document_json();
    let path = committed_path();
    if std::env::var_os("CASTELLAN_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the API's description: regenerate it with \
         CASTELLAN_WRITE_OPENAPI=1 cargo test -p castellan-server --lib openapi"
    );
}
