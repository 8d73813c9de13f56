//! Installing what the tests need on a fresh machine: Python interop peers (pinned), cargo-fuzz,
//! the TUF conformance suite's Python environment, and Debian packages (only when running as
//! root; otherwise the exact command is printed).

use std::process::Command;

use crate::steps::{Result, run, succeeds};

/// Python packages the interop tests run, pinned so that CI is reproducible.
pub(crate) const PIP_PACKAGES: &[&str] = &[
    "imgtool==2.5.0",
    "pycose==1.1.0",
    "cbor2==6.2.1",
    "paho-mqtt==2.1.0",
];
/// Debian packages the tests use: openssl (certificate interop), PostgreSQL (the store's
/// second backend), SoftHSM2 (PKCS#11 CA keys), Mosquitto (broker interop and benchmark),
/// tshark (the capture that shows nothing in clear on the wire), HAProxy (the cluster's
/// balancer), Chromium and chromedriver (the
/// console's browser tests), QEMU, the Arm linker and the Arm
/// C compiler with the C library headers (firmware: the P256-Cortex-M4 verifier is C and
/// assembly).
pub(crate) const APT_PACKAGES: &[&str] = &[
    "openssl",
    "python3-pip",
    "postgresql",
    "softhsm2",
    "mosquitto",
    "mosquitto-clients",
    "tshark",
    "qemu-system-arm",
    "binutils-arm-none-eabi",
    "gcc-arm-none-eabi",
    "libnewlib-dev",
    // The TUF conformance suite: its own virtual environment, and the client's clock moved
    // with faketime (`cargo xtask tuf-conformance`).
    "python3-venv",
    "faketime",
    // The operator console's browser tests: headless Chromium through WebDriver.
    "chromium",
    "chromium-driver",
    // The balancer in front of several instances' APIs (`cargo xtask cluster`, the cluster
    // tests behind HAProxy).
    "haproxy",
];
/// cargo-fuzz version.
const CARGO_FUZZ: &str = "0.13.2";

/// Install everything; idempotent and quick when all is present.
pub(crate) fn install_all() -> Result {
    apt()?;
    pip()?;
    cargo_fuzz()?;
    crate::tuf_conformance::install_env()?;
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

fn apt() -> Result {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !succeeds(Command::new("dpkg").args(["-s", p])))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing Debian packages; install them with: sudo apt-get install -y {}",
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    // Another package manager run (an unattended upgrade, say) may hold dpkg's lock: wait for
    // it rather than fail.
    let wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"];
    run(Command::new("apt-get")
        .args(wait_for_lock)
        .arg("update")
        .arg("-q"))?;
    run(Command::new("apt-get")
        .args(wait_for_lock)
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

pub(crate) fn python() -> &'static str {
    if succeeds(Command::new("python3").arg("--version")) {
        "python3"
    } else {
        "python"
    }
}

fn pip() -> Result {
    let py = python();
    let probe = format!(
        "import importlib.metadata as m, sys\n\
         want = {:?}\n\
         sys.exit(0 if all(m.version(p.split('==')[0]) == p.split('==')[1] for p in want) else 1)",
        PIP_PACKAGES
    );
    if succeeds(Command::new(py).args(["-c", &probe])) {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Python packages: {}",
        PIP_PACKAGES.join(" ")
    );
    let mut c = Command::new(py);
    c.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(PIP_PACKAGES);
    if run(&mut c).is_ok() {
        return Ok(());
    }
    // Debian's system Python refuses pip without this flag (PEP 668).
    let mut c = Command::new(py);
    c.args(["-m", "pip", "install", "-q", "--break-system-packages"])
        .args(PIP_PACKAGES);
    run(&mut c)
}

/// Install cargo-fuzz (the one tool `cargo xtask fuzz` needs) unless this version is present.
pub(crate) fn cargo_fuzz() -> Result {
    let ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ))
        .unwrap_or(false);
    if ok {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ} (about a minute)");
    run(Command::new("cargo").args([
        "install",
        "--locked",
        "--quiet",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ,
    ]))
}
