//! The `castellan-bridge` command: its help, and the clear refusal when the device's files are
//! not there (instead of a failed QEMU run).

use std::process::Command;

fn bridge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_castellan-bridge"))
}

#[test]
fn help_names_every_command() {
    let out = bridge().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["register", "onboard", "run"] {
        assert!(text.contains(cmd), "{cmd} missing from:\n{text}");
    }
}

#[test]
fn registering_a_device_without_its_files_says_how_to_make_them() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&token, "cst_x").unwrap();
    std::fs::write(&ca, "").unwrap();
    let out = bridge()
        .arg("--device")
        .arg(dir.path())
        .arg("--rom")
        .arg(dir.path().join("castellan-rom"))
        .args([
            "register",
            "--api",
            "https://127.0.0.1:1",
            "--serial",
            "an505-0001",
        ])
        .arg("--token-file")
        .arg(&token)
        .arg("--ca")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("castellan-rom does not exist") && err.contains("cargo xtask qemu-test"),
        "{err}"
    );
    // Nothing was written for a device that is not there.
    assert!(!dir.path().join("bridge").exists());
}
