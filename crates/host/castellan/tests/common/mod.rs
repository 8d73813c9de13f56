//! What the command-line tests that drive a running fleet service share: the real binary as a
//! command, its output without blocking the runtime, and `castellan factory provision`.
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
