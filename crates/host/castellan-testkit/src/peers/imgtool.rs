//! MCUboot's `imgtool` (PyPI `imgtool`): signs and verifies images against ours.

use std::process::Command;

/// How to install it (the version `cargo xtask deps` pins).
pub const INSTALL: &str = "pip install imgtool==2.5.0";

/// Fails the test unless `imgtool version` runs.
#[track_caller]
pub fn require() {
    match Command::new("imgtool").arg("version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => super::missing(
            "imgtool",
            String::from_utf8_lossy(&o.stderr).trim(),
            INSTALL,
        ),
        Err(e) => super::missing("imgtool", &format!("cannot run it: {e}"), INSTALL),
    }
}

/// An `imgtool` command (after [`require`]).
#[track_caller]
pub fn command() -> Command {
    require();
    Command::new("imgtool")
}
