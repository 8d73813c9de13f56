//! Running a peer's command line from an async test: output collected, a time limit, the child
//! killed when the test gives up on it.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Runs `cmd args` (stdin closed) within `limit`; returns (exit success, stdout + stderr).
/// Panics when it cannot start or does not finish in time.
pub async fn run(cmd: &str, args: &[String], limit: Duration) -> (bool, String) {
    // `output()` pipes stdout and stderr; the child dies with the future on a timeout.
    let child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("{cmd} {args:?} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
