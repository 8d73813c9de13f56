//! Running a peer's command line from an async test: output collected, a time limit, the child
//! killed when the test gives up on it.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Runs `cmd args` (stdin closed) within `limit`; returns (exit success, stdout + stderr).
/// Panics when it cannot start or does not finish in time.
pub async fn run(cmd: &str, args: &[String], limit: Duration) -> (bool, String) {
    let child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{cmd} {args:?} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
