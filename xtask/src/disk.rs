//! Disk space during `cargo xtask ci`: a full run from a fresh clone writes its builds under
//! `target/` (workspace: lint metadata, test executables, release tools), `firmware/target/`
//! and `fuzz/target/`. The test executables are the largest part (every integration test
//! links the crates it tests) and no step after `cargo test` runs them, so a machine short of
//! space gets them removed once the tests have passed; one with room keeps them, so that the
//! next run on the same checkout only relinks what changed.

use std::path::Path;
use std::process::Command;

use crate::steps::root;

/// Below this much free space after the tests, the test executables are removed.
const LOW_GIB: f64 = 24.0;

/// Free space, in GiB, on the filesystem holding `path` (`df -Pk`; `None` when unknown).
fn free_gib(path: &Path) -> Option<f64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let available_kib: f64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(available_kib / (1024.0 * 1024.0))
}

/// Print the free space at a point of the run, with a warning when it is short.
pub(crate) fn report(when: &str) {
    let root = root();
    match free_gib(&root) {
        Some(free) => {
            eprintln!("xtask: disk at {when}: {free:.1} GiB free for the builds");
            if free < LOW_GIB {
                eprintln!(
                    "xtask: less than {LOW_GIB:.0} GiB free: a run from a fresh clone needs \
                     about that much (see docs/testing.md, \"Disk\"); test executables will be \
                     removed once the tests pass. If a step fails with \"No space left on \
                     device\", free space or set CARGO_TARGET_DIR to a larger disk."
                );
            }
        }
        None => eprintln!("xtask: disk at {when}: free space unknown (`df` failed)"),
    }
}

/// After `cargo test`: when space is short, remove the test executables (and incremental
/// caches) of the workspace's debug build. Libraries stay, so later steps reuse them.
pub(crate) fn prune_test_executables_if_low() {
    let root = root();
    let Some(free) = free_gib(&root) else {
        return;
    };
    if free >= LOW_GIB {
        return;
    }
    let debug = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("debug");
    let mut removed = 0u64;
    if let Ok(entries) = std::fs::read_dir(debug.join("deps")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none() && is_executable(&entry) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&path).is_ok() {
                    removed += len;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(debug.join("incremental"));
    eprintln!(
        "xtask: {free:.1} GiB free after the tests: removed {:.1} GiB of test executables",
        removed as f64 / (1024.0 * 1024.0 * 1024.0)
    );
    report("after pruning");
}

#[cfg(unix)]
fn is_executable(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    entry
        .metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::DirEntry) -> bool {
    false
}
