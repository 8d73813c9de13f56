//! `castellan repo` end to end: keys from `castellan keygen`, a repository created, its root
//! and targets exported, signed offline (a separate key directory) and imported, a device
//! class delegated and a release listed; a root signed by one key of two refused.

use std::path::Path;
use std::process::{Command, Output};

fn castellan(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run castellan")
}

fn ok(args: &[&str], cwd: &Path) -> Output {
    let out = castellan(args, cwd);
    assert!(
        out.status.success(),
        "castellan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Export the staged `role` to `<role>.json` and sign it there with `keys` (the offline
/// machine's part).
fn offline_sign(cwd: &Path, role: &str, keys: &[&str]) {
    let file = format!("{role}.json");
    ok(
        &[
            "repo", "export", "--dir", "repo", "--role", role, "-o", &file,
        ],
        cwd,
    );
    for key in keys {
        ok(&["repo", "sign", &file, "--key", key], cwd);
    }
}

#[test]
fn repo_init_sign_offline_import_delegate_and_release() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    for key in ["root-a", "root-b", "root-c", "rm", "team"] {
        ok(&["keygen", "-k", &format!("{key}.key")], cwd);
    }
    ok(
        &[
            "repo",
            "init",
            "--dir",
            "repo",
            "--root-key",
            "root-a.key",
            "--root-key",
            "root-b.key",
            "--root-key",
            "root-c.key",
            "--targets-key",
            "rm.key",
        ],
        cwd,
    );
    // The offline machine: export, sign there, import back.
    offline_sign(cwd, "root", &["root-a.key"]);
    let refused = castellan(&["repo", "import", "--dir", "repo", "root.json"], cwd);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("1 valid signature(s), 2 required"), "{why}");
    ok(&["repo", "sign", "root.json", "--key", "root-b.key"], cwd);
    ok(&["repo", "import", "--dir", "repo", "root.json"], cwd);
    offline_sign(cwd, "targets", &["rm.key"]);
    ok(&["repo", "import", "--dir", "repo", "targets.json"], cwd);
    ok(
        &[
            "repo",
            "delegate",
            "--dir",
            "repo",
            "--class",
            "sensor-v1",
            "--key",
            "team.key",
        ],
        cwd,
    );
    offline_sign(cwd, "targets", &["rm.key"]);
    ok(&["repo", "import", "--dir", "repo", "targets.json"], cwd);
    std::fs::write(cwd.join("fw-2.suit"), b"a SUIT envelope").expect("write");
    ok(
        &[
            "repo",
            "target",
            "add",
            "--dir",
            "repo",
            "--class",
            "sensor-v1",
            "--file",
            "fw-2.suit",
        ],
        cwd,
    );
    offline_sign(cwd, "sensor-v1", &["team.key"]);
    ok(&["repo", "import", "--dir", "repo", "sensor-v1.json"], cwd);
    let status = ok(&["repo", "status", "--dir", "repo", "--json"], cwd);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let version = |name: &str| {
        status["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name))
            .map(|r| r["version"].clone())
    };
    assert_eq!(version("root"), Some(serde_json::json!(1)));
    assert_eq!(version("targets"), Some(serde_json::json!(2)));
    assert_eq!(version("sensor-v1"), Some(serde_json::json!(1)));
    assert_eq!(version("timestamp"), Some(serde_json::json!(3)));
    let listed = std::fs::read_to_string(cwd.join("repo/metadata/1.sensor-v1.json")).expect("read");
    assert!(listed.contains("sensor-v1/fw-2.suit"));

    // Rotating the online timestamp key: a new one generated, the old one removed, the root
    // signed offline by two root keys; the old key file is gone.
    let keyids = |role: &str| -> Vec<String> {
        let out = ok(&["repo", "status", "--dir", "repo", "--json"], cwd);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        status["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == role))
            .and_then(|r| serde_json::from_value(r["keyids"].clone()).ok())
            .unwrap_or_default()
    };
    let old = keyids("timestamp");
    assert_eq!(old.len(), 1);
    ok(
        &[
            "repo",
            "key",
            "add",
            "--dir",
            "repo",
            "--role",
            "timestamp",
            "--generate-online",
        ],
        cwd,
    );
    ok(
        &[
            "repo",
            "key",
            "remove",
            "--dir",
            "repo",
            "--role",
            "timestamp",
            "--keyid",
            &old[0],
        ],
        cwd,
    );
    offline_sign(cwd, "root", &["root-b.key", "root-c.key"]);
    ok(&["repo", "import", "--dir", "repo", "root.json"], cwd);
    let new = keyids("timestamp");
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
    assert!(!cwd.join(format!("repo/online/{}.pem", old[0])).exists());
    assert!(cwd.join(format!("repo/online/{}.pem", new[0])).exists());
    ok(&["repo", "resign", "--dir", "repo", "--force"], cwd);

    // Every command that changed the repository is in its operations log, chained (the fleet
    // service records the entries in its audit trail); the refused import, export, sign and
    // status are not.
    let log = castellan_tuf::repo::oplog::read(&cwd.join("repo")).expect("an unbroken log");
    let commands: Vec<&str> = log.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "init",
            "import",
            "import",
            "delegate",
            "import",
            "target add",
            "import",
            "key add",
            "key remove",
            "import",
            "resign"
        ]
    );
    assert!(
        log[6]
            .detail
            .starts_with("published sensor-v1 v1 (signed by key "),
        "{}",
        log[6].detail
    );
    assert!(
        log[5]
            .detail
            .contains("listed sensor-v1/fw-2.suit (15 bytes, SHA-256 ")
    );
    assert!(log[10].detail.starts_with("re-signed by hand: snapshot v"));
    assert!(log.iter().all(|e| e.by.contains('@')));
    let shown = ok(&["repo", "log", "--dir", "repo", "--json"], cwd);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(shown.as_array().map(Vec::len), Some(11));
    assert_eq!(shown[10]["hash"], serde_json::json!(log[10].hash));

    // attack: the log edited by hand (an entry hidden) stops the next command that would
    // change the repository, and says why.
    let path = castellan_tuf::repo::oplog::log_path(&cwd.join("repo"));
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("re-signed by hand", "nothing", 1)).expect("write");
    let refused = castellan(&["repo", "resign", "--dir", "repo", "--force"], cwd);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("operations log") && why.contains("line 11"),
        "{why}"
    );
    let refused = castellan(&["repo", "log", "--dir", "repo"], cwd);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("does not verify") && why.contains("line 11"),
        "{why}"
    );
}

#[test]
fn repo_init_refuses_a_single_root_key_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    ok(&["keygen", "-k", "root.key"], cwd);
    let out = castellan(
        &[
            "repo",
            "init",
            "--dir",
            "repo",
            "--root-key",
            "root.key",
            "--root-threshold",
            "1",
            "--targets-key",
            "root.key",
        ],
        cwd,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("one stolen key"));
    assert!(!cwd.join("repo").exists());
}
