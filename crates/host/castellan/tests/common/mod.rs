//! What the command-line tests share: the real binary as a command (run to completion, or
//! without blocking the runtime of a fleet service under test), `castellan factory provision`,
//! and the trial-then-revert boots of a simulated device.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `castellan` binary with `args`, run in `dir`.
pub fn castellan(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_castellan"));
    c.current_dir(dir).args(args);
    c
}

/// Runs `c` to completion on a blocking thread (the fleet service keeps the runtime's).
pub async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// stdout and stderr of `o`.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `castellan factory provision --server api --token-file token --device-dir device_dir extra…`
/// in `dir`.
pub fn factory_provision(
    dir: &Path,
    api: &str,
    token: &str,
    device_dir: &str,
    extra: &[&str],
) -> Command {
    let mut c = castellan(
        dir,
        &[
            "factory",
            "provision",
            "--server",
            api,
            "--token-file",
            token,
            "--device-dir",
            device_dir,
        ],
    );
    c.args(extra);
    c
}

/// Runs `castellan args` in `dir`; returns (exit success, stdout + stderr).
pub fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = castellan(dir, args).output().unwrap();
    (o.status.success(), text(&o))
}

/// Runs `castellan args` in `dir`, which must succeed; returns stdout + stderr.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, out) = run(dir, args);
    assert!(success, "castellan {args:?} failed:\n{out}");
    out
}

/// The simulated device in `dir/dev` boots the unconfirmed trial image (1.1.0) once, then
/// reverts to 1.0.0 at the next boot.
pub fn assert_trial_boots_once_then_reverts(dir: &Path) {
    assert!(ok(dir, &["sim", "boot", "dev"]).contains("verified APP 1.1.0+0"));
    let out = ok(dir, &["sim", "boot", "dev"]);
    assert!(
        out.contains("revert swap done") && out.contains("verified APP 1.0.0+0"),
        "{out}"
    );
}

/// A fleet service on free loopback ports with its state in `<dir>/state` (the PKI handed
/// over first); its admin token is `<dir>/state/admin.token`.
pub async fn fleet_service(dir: &Path) -> castellan_server::ServerHandle {
    let state = dir.join("state");
    castellan_testkit::fleet::hand_over_pki(&state);
    castellan_server::Server::start(
        castellan_server::ServerConfig::new(&state).with_ephemeral_ports(),
    )
    .await
    .unwrap_or_else(|e| panic!("the fleet service does not start: {e}"))
}
