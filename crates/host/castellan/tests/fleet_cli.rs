//! The fleet service's commands as a user runs them: `castellan serve` (help, startup output,
//! clean stop on SIGTERM), `castellan audit verify` (intact, modified, removed; SQLite and
//! PostgreSQL) and `castellan bench connect` (a small run against Mosquitto).

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use castellan_server::{Server, ServerConfig};
use castellan_store::testing::{TestStore, each_backend};

fn castellan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
}

/// `castellan serve` on free loopback ports with its state in `state`.
fn serve(state: &std::path::Path) -> Command {
    let mut cmd = castellan();
    cmd.args([
        "serve",
        "--mqtt",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--state-dir",
    ])
    .arg(state);
    cmd
}

#[test]
fn serve_help_names_the_defaults() {
    let out = castellan().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        ".castellan/server",
        "127.0.0.1:8883",
        "127.0.0.1:8443",
        "postgres://",
        "--pkcs11-module",
    ] {
        assert!(
            help.contains(needle),
            "help does not mention {needle}:\n{help}"
        );
    }
}

/// `castellan pki init` in an offline directory beside `state`, then `castellan pki handover`
/// into `state` (the manufacturer key included: the test's service runs the factory).
fn pki_handed_over(state: &std::path::Path) {
    let offline = state.with_file_name("offline-pki");
    for args in [
        vec!["pki", "init", "--offline"],
        vec!["pki", "handover", "--manufacturer-key", "--offline"],
    ] {
        let mut cmd = castellan();
        cmd.args(&args).arg(&offline);
        if args[1] == "handover" {
            cmd.arg("--state-dir").arg(state);
        }
        let (ok, out) = run(cmd);
        assert!(ok, "castellan {args:?}: {out}");
    }
}

#[test]
fn serve_prints_where_everything_is_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    pki_handed_over(&state);
    let mut child = serve(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        out.push_str(&line);
        out.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    for needle in [
        "operator API https://127.0.0.1:",
        "mqtts://127.0.0.1:",
        "admin.token",
        "ca-bundle.pem",
        "castellan factory provision",
        "castellan agent",
    ] {
        assert!(
            out.contains(needle),
            "startup output lacks {needle}:\n{out}"
        );
    }
    let token = std::fs::read_to_string(state.join("admin.token")).unwrap();
    assert!(token.starts_with("cst_"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "castellan serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    // The stop itself is audited, and the log verifies.
    let verify = castellan()
        .args(["audit", "verify", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(text.contains("3 entries, chain intact"), "{text}");
}

/// Start `castellan serve` with `extra` arguments and environment, read its startup output,
/// stop it with SIGTERM; returns the output.
fn serve_once(state: &std::path::Path, extra: &[&str], env: &[(&str, &std::path::Path)]) -> String {
    let mut cmd = serve(state);
    cmd.args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    while let Some(Ok(line)) = lines.next() {
        out.push_str(&line);
        out.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert!(status.success(), "castellan serve failed: {out}{err}");
    out
}

/// A SoftHSM2 token "castellan-ca" (user PIN 87654321) under `dir`; returns its config file.
fn softhsm_token(dir: &std::path::Path) -> std::path::PathBuf {
    castellan_testkit::peers::softhsm::require();
    let conf = dir.join("softhsm2.conf");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::write(&conf, castellan_testkit::peers::softhsm::config(&tokens)).unwrap();
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "castellan-ca",
            "--so-pin",
            "12345678",
            "--pin",
            "87654321",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    conf
}

/// The options naming the token of [`softhsm_token`].
const TOKEN_ARGS: [&str; 6] = [
    "--pkcs11-module",
    "/usr/lib/softhsm/libsofthsm2.so",
    "--pkcs11-token",
    "castellan-ca",
    "--pkcs11-pin",
    "87654321",
];

#[test]
fn serve_with_ca_keys_in_a_softhsm2_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let state = dir.path().join("state");
    let mut args = TOKEN_ARGS.to_vec();
    args.push("--embedded-demo-pki");
    let first = serve_once(&state, &args, &[("SOFTHSM2_CONF", &conf)]);
    for ca in ["root", "manufacturer", "operational"] {
        assert!(
            first.contains(&format!(
                "PKCS#11 key \"castellan-{ca}-ca\" in token \"castellan-ca\""
            )),
            "{ca} CA key not in the token:\n{first}"
        );
    }
    let key_files: Vec<_> = std::fs::read_dir(state.join("pki"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".key"))
        .collect();
    assert!(key_files.is_empty(), "CA key files written: {key_files:?}");
    // A restart finds the same CAs in the token.
    let root = std::fs::read(state.join("pki/root-ca.pem")).unwrap();
    serve_once(&state, &args, &[("SOFTHSM2_CONF", &conf)]);
    assert_eq!(std::fs::read(state.join("pki/root-ca.pem")).unwrap(), root);
    // Without the demo flag, the root's key in the token is in reach: the service refuses.
    let mut refused = serve(&state);
    refused.args(TOKEN_ARGS).env("SOFTHSM2_CONF", &conf);
    let (ok, out) = run(refused);
    assert!(
        !ok,
        "the service started with the root key in its token: {out}"
    );
    assert!(
        out.contains("castellan-root-ca") && out.contains("castellan pki"),
        "the refusal does not say where the key is and what to do: {out}"
    );
}

#[test]
fn serve_with_the_operational_ca_key_made_in_a_softhsm2_token_and_signed_offline() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_token(dir.path());
    let (state, offline) = (dir.path().join("state"), dir.path().join("offline"));
    let csr = state.join("pki/operational-ca.csr.pem");
    let steps: [(&[&str], &[&std::path::Path]); 4] = [
        (&["pki", "init", "--offline"], &[&offline]),
        (&["pki", "request", "--state-dir"], &[&state]),
        (&["pki", "sign-ca", "--csr"], &[&csr, &offline]),
        (&["pki", "handover", "--state-dir"], &[&state, &offline]),
    ];
    for (args, paths) in steps {
        let mut cmd = castellan();
        cmd.args(args).arg(paths[0]).env("SOFTHSM2_CONF", &conf);
        if let Some(offline) = paths.get(1) {
            cmd.arg("--offline").arg(offline);
        }
        if args[1] == "request" {
            cmd.args(TOKEN_ARGS);
        }
        let (ok, out) = run(cmd);
        assert!(ok, "castellan {args:?}: {out}");
    }
    let mut status = castellan();
    status
        .args(["pki", "status", "--json", "--state-dir"])
        .arg(&state);
    let (ok, out) = run(status);
    assert!(ok && out.contains("\"operational\""), "{out}");
    let out = serve_once(&state, &TOKEN_ARGS, &[("SOFTHSM2_CONF", &conf)]);
    assert!(
        out.contains("PKCS#11 key \"castellan-operational-ca\" in token \"castellan-ca\""),
        "the operational CA's key is not the token's: {out}"
    );
    let key_files: Vec<_> = std::fs::read_dir(state.join("pki"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".key"))
        .collect();
    assert!(
        key_files.is_empty(),
        "CA key files handed over: {key_files:?}"
    );
}

fn run(mut cmd: Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn attack_service_started_with_the_root_key_in_reach_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A demo run leaves the whole hierarchy, the root's key included, in the state directory.
    serve_once(&state, &["--embedded-demo-pki"], &[]);
    assert!(state.join("pki/root-ca.key.pem").exists());
    let (ok, out) = run(serve(&state));
    assert!(
        !ok,
        "the service started with the root CA's key in reach: {out}"
    );
    for needle in [
        "root CA's private key is in reach",
        "root-ca.key.pem",
        "castellan pki init --offline",
        "castellan pki handover --offline",
        "--embedded-demo-pki",
    ] {
        assert!(out.contains(needle), "the refusal lacks {needle:?}: {out}");
    }
    // The refusal is in the audit trail, and the chain still verifies.
    let verify = castellan()
        .args(["audit", "verify", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(verify.status.success());
    let entries = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let db = state.join("castellan.db");
            let store = castellan_store::Store::open(&db.to_string_lossy())
                .await
                .unwrap();
            store.audit_entries(0, 100).await.unwrap()
        });
    assert!(
        entries.iter().any(|e| e.action == "server.start"
            && e.decision == castellan_store::Decision::Refused
            && e.code.as_deref() == Some(castellan_server::CODE_ROOT_KEY_ONLINE)
            && e.reason.contains("root CA's private key")),
        "the refusal is not in the audit log: {entries:?}"
    );

    // A fresh state directory without a PKI: refused too, saying how to hand one over.
    let (ok, out) = run(serve(&dir.path().join("fresh")));
    assert!(!ok, "the service started without a PKI: {out}");
    assert!(out.contains("castellan pki handover"), "{out}");
}

fn verify_cli(state: &std::path::Path, t: &TestStore) -> (bool, String) {
    let mut cmd = castellan();
    cmd.args(["audit", "verify", "--state-dir"])
        .arg(state)
        .args(["--database", &t.location]);
    run(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_a_modified_or_removed_entry() {
    each_backend(async |t: &TestStore| {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        castellan_testkit::fleet::hand_over_pki(&state);
        let config = ServerConfig::new(&state)
            .with_ephemeral_ports()
            .with_database(t.location.clone());
        let server = Server::start(config).await.unwrap();
        server.shutdown().await;
        let server = Server::start(
            ServerConfig::new(&state)
                .with_ephemeral_ports()
                .with_database(t.location.clone()),
        )
        .await
        .unwrap();
        server.shutdown().await;
        let entries = t.store.audit_entries(0, 100).await.unwrap();
        assert_eq!(entries.len(), 5, "start, admin, stop, start, stop");

        let (ok, out) = verify_cli(&state, t);
        assert!(ok, "{out}");
        assert!(out.contains("5 entries, chain intact"), "{out}");

        let original = entries[2].reason.replace('\'', "''");
        t.raw_execute("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3")
            .await;
        let (ok, out) = verify_cli(&state, t);
        assert!(!ok);
        assert!(out.contains("entry 3 was modified"), "{out}");

        t.raw_execute(&format!(
            "UPDATE audit_log SET reason = '{original}' WHERE seq = 3"
        ))
        .await;
        assert!(verify_cli(&state, t).0, "restored entry verifies again");
        t.raw_execute("DELETE FROM audit_log WHERE seq = 2").await;
        let (ok, out) = verify_cli(&state, t);
        assert!(!ok);
        assert!(out.contains("entry 2 is missing"), "{out}");
    })
    .await;
}

#[test]
fn bench_connect_compares_with_mosquitto() {
    let out = castellan()
        .args([
            "bench",
            "connect",
            "--clients",
            "5",
            "--messages",
            "2",
            "--timeout",
            "60",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for needle in [
        "castellan (rmqtt",
        "mosquitto",
        "handshakes/s",
        "messages/s",
        "KiB per connection",
        "ratio",
    ] {
        assert!(
            text.contains(needle),
            "bench output lacks {needle}:\n{text}"
        );
    }
}
