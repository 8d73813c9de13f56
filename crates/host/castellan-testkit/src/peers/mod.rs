//! The external peers the interop tests run, one driver each: the one place that says what a
//! test needs and, when it is missing, fails the test with the command that installs it (the
//! README's test command, `cargo xtask ci`, runs `cargo xtask deps`, which installs them all).
//! A test that needs a peer never silently passes without it.
//!
//! ```text
//!  openssl    certificate, CRL and TLS interop            apt-get install -y openssl
//!  mosquitto  the Mosquitto broker and its clients        apt-get install -y mosquitto mosquitto-clients
//!  paho       paho-mqtt 2.x (Python MQTT client)          pip install paho-mqtt==2.1.0
//!  imgtool    MCUboot's image tool                        pip install imgtool==2.5.0
//!  pycose     pycose + cbor2 (Python COSE)                pip install pycose==1.1.0 cbor2==6.2.1
//!  postgres   PostgreSQL server binaries                  apt-get install -y postgresql
//!  softhsm    SoftHSM2 (PKCS#11 token)                    apt-get install -y softhsm2
//!  tshark     Wireshark's capture and dissector (as root) apt-get install -y tshark
//!  chromium   Chromium headless and chromedriver          apt-get install -y chromium chromium-driver
//!             (skipped with a message outside CI, required in CI)
//!  haproxy    HAProxy, the balancer of the cluster tests  apt-get install -y haproxy
//! ```

use std::path::Path;
use std::process::Command;

pub mod chromium;
pub mod haproxy;
mod haproxy_config;
pub mod imgtool;
pub mod mosquitto;
pub mod openssl;
pub mod paho;
pub mod postgres;
mod process;
pub mod pycose;
mod recorded;
pub mod softhsm;
pub mod tshark;

pub use process::run;
pub use recorded::Recorded;

/// The README's test command, which installs every peer (through `cargo xtask deps`).
pub const TEST_COMMAND: &str = "cargo xtask ci";

/// Fails the test: `what` is missing (`why`), and `install` installs it.
#[track_caller]
pub fn missing(what: &str, why: &str, install: &str) -> ! {
    panic!(
        "{what} is required by this test and is missing ({why}); install it with: {install} \
         (or run the README's test command, `{TEST_COMMAND}`, which installs every peer)"
    )
}

/// True when an executable file called `tool` is on the `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Fails the test unless `tool` is on the `PATH`.
#[track_caller]
pub fn require_tool(tool: &str, install: &str) {
    if !on_path(tool) {
        missing(&format!("`{tool}`"), "not on the PATH", install);
    }
}

/// Fails the test unless one of `paths` exists.
#[track_caller]
pub fn require_file(what: &str, paths: &[&str], install: &str) {
    if !paths.iter().any(|p| Path::new(p).exists()) {
        missing(what, &format!("none of {paths:?}"), install);
    }
}

/// Fails the test unless `python3` imports `modules` (`import a, b`).
#[track_caller]
pub fn require_python_modules(what: &str, modules: &str, install: &str) {
    require_python_check(what, &format!("import {modules}"), install);
}

/// Fails the test unless `python3 -c script` succeeds.
#[track_caller]
pub fn require_python_check(what: &str, script: &str, install: &str) {
    match Command::new("python3").args(["-c", script]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => missing(what, String::from_utf8_lossy(&o.stderr).trim(), install),
        Err(e) => missing(what, &format!("python3 not runnable: {e}"), install),
    }
}

/// True when the tests run as root (peers from Debian packages may then be installed).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// As root, `apt-get install -y -q packages` (after `apt-get update` when the first try
/// fails); otherwise nothing. Whether it worked is for the caller to check.
pub fn apt_install_as_root(packages: &[&str]) {
    if !is_root() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        install();
    }
}
