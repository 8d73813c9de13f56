//! `castellan pki` as an operator runs it: the offline hierarchy, the hand-over to a service's
//! state directory, status on both sides, a service identity, rotation and retirement, with
//! `--json` where a script reads the result.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn pki(args: &[&str], dirs: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castellan"));
    cmd.arg("pki").args(args);
    for (flag, dir) in dirs {
        cmd.arg(flag).arg(dir);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), common::text(&out))
}

fn json(args: &[&str], dirs: &[(&str, &Path)]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out) = pki(&all, dirs);
    assert!(ok, "castellan pki {args:?}: {out}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The key location of `ca` in a status answer (null when not held).
fn key_of<'a>(status: &'a Value, ca: &str) -> &'a Value {
    status["cas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ca"] == ca)
        .map(|c| &c["key"])
        .unwrap_or_else(|| panic!("no {ca} in {status}"))
}

#[test]
fn pki_commands_keep_the_root_offline_and_rotate_the_operational_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let offline = tmp.path().join("offline");
    let state = tmp.path().join("state");
    for sub in [
        "init",
        "handover",
        "status",
        "rotate",
        "retire",
        "issue-service",
        "crl",
    ] {
        let (ok, out) = pki(&[sub, "--help"], &[]);
        assert!(ok && out.contains("Usage"), "{sub} --help: {out}");
    }

    let created = json(&["init"], &[("--offline", &offline)]);
    assert_eq!(created["created"], true);
    assert!(key_of(&created, "root").is_string());
    let handed = json(
        &["handover"],
        &[("--offline", &offline), ("--state-dir", &state)],
    );
    assert!(!handed["written"].as_array().unwrap().is_empty());

    let online = json(&["status"], &[("--state-dir", &state)]);
    assert_eq!(online["root_key"], Value::Null);
    for ca in ["root", "manufacturer", "service"] {
        assert_eq!(
            key_of(&online, ca),
            &Value::Null,
            "{ca} key online: {online}"
        );
    }
    assert!(key_of(&online, "operational").is_string());

    let svc = json(
        &["issue-service", "--name", "ops"],
        &[("--offline", &offline), ("--out", &tmp.path().join("svc"))],
    );
    assert_eq!(svc["client_id"], "svc:ops");
    assert!(tmp.path().join("svc/ops.key").exists());

    let rotated = json(&["rotate"], &[("--offline", &offline)]);
    let old = rotated["previous"].as_str().unwrap().to_string();
    json(
        &["handover"],
        &[("--offline", &offline), ("--state-dir", &state)],
    );
    let online = json(&["status"], &[("--state-dir", &state)]);
    assert!(
        online.to_string().contains(&old),
        "the rotated-out CA is not trusted any more: {online}"
    );
    let retired = json(&["retire", "--serial", &old], &[("--offline", &offline)]);
    assert!(retired["root_crl"].is_string());
    json(
        &["handover"],
        &[("--offline", &offline), ("--state-dir", &state)],
    );
    let online = json(&["status"], &[("--state-dir", &state)]);
    assert!(!online.to_string().contains(&old), "{online}");

    // Retiring an unknown serial says what is wrong.
    let (ok, out) = pki(&["retire", "--serial", "00"], &[("--offline", &offline)]);
    assert!(!ok);
    assert!(out.contains("castellan pki status"), "{out}");
}
