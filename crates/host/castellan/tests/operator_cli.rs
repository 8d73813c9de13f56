//! `castellan operator add | password | totp` as an administrator runs them on the service's
//! machine: the account and its Argon2id password in the store (the password read from
//! standard input), refusals that say what to do, the second factor's otpauth URL, every change
//! in an audit log that still verifies.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use castellan_store::Store;

fn castellan_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_accounts_are_created_reset_and_given_a_second_factor() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let db = state.join("castellan.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let dir = state.to_str().unwrap();

    let add = [
        "operator",
        "add",
        "--state-dir",
        dir,
        "--name",
        "alice",
        "--role",
        "operator",
    ];
    let out = castellan_with_stdin(&add, "short\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 12 characters"), "{err}");
    assert!(
        store.operator("alice").await.unwrap().is_none(),
        "nothing was created"
    );

    let out = castellan_with_stdin(&add, "correct horse battery staple\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = store.operator_password("alice").await.unwrap().unwrap();
    assert_eq!(rec.operator.role, castellan_store::Role::Operator);
    assert!(rec.phc.starts_with("$argon2id$"));
    assert!(castellan_console::verify_password(
        &rec.phc,
        "correct horse battery staple"
    ));

    let out = castellan_with_stdin(&add, "correct horse battery staple\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("castellan operator password"),
        "{err}"
    );

    store.record_failed_login("alice", 0, 1, 600).await.unwrap();
    let reset = [
        "operator",
        "password",
        "--state-dir",
        dir,
        "--name",
        "alice",
        "--json",
    ];
    let out = castellan_with_stdin(&reset, "another long passphrase\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = store.operator_password("alice").await.unwrap().unwrap();
    assert_eq!(rec.locked_until, None, "a reset lifts the lockout");
    assert!(castellan_console::verify_password(
        &rec.phc,
        "another long passphrase"
    ));

    let totp = [
        "operator",
        "totp",
        "--state-dir",
        dir,
        "--name",
        "alice",
        "--json",
    ];
    let out = castellan_with_stdin(&totp, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = json["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Castellan:alice?"), "{url}");
    let rec = store.operator_password("alice").await.unwrap().unwrap();
    assert_eq!(rec.totp_secret.as_deref(), json["secret"].as_str());

    let actions: Vec<String> = store
        .audit_entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "cli.operator.add",
            "cli.operator.password",
            "cli.operator.totp"
        ]
    );
    let out = castellan_with_stdin(&["audit", "verify", "--state-dir", dir], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
