//! `cargo xtask qemu-campaign`: the QEMU device in a real update campaign. Builds and signs the
//! firmware (1.0.0 on the device, 2.0.0 as the release, both with the image key qemu-test
//! uses), provisions a fresh device directory, then runs `castellan-bridge`'s `qemu_campaign`
//! example: a fleet service in that process (SQLite in a temporary directory), the bridge
//! registering and onboarding the device, a release and a campaign made through the HTTPS API,
//! and the wait until the campaign reports the device `updated` (which the server does only
//! after the attested new measurement). A second campaign then offers the older version
//! (signed again with the new security counter): the device must refuse it in its secure
//! partition, and the campaign must record the device's reason.
//!
//! The fleet side runs in a separate process (`cargo run --example`) rather than in xtask
//! itself, so that xtask stays a quick, std-only build that can install tools before anything
//! heavy compiles. The last line is `qemu-campaign: device <id> updated to <version>
//! (attested)`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::firmware;
use crate::qemu::{Ctx, write};
use crate::steps::{Result, root};

/// The device's serial.
const SERIAL: &str = "an505-0001";
/// The version the campaign rolls out.
const VERSION: &str = "2.0.0";

/// `cargo xtask qemu-campaign`.
pub(crate) fn qemu_campaign(_args: &[String]) -> Result {
    let built = firmware::build()?;
    let key = firmware::root_key()?;
    let ctx = Ctx {
        bootloader: firmware::sign_bootloader(&built, &key, "1.0.0")?,
        v1: firmware::sign_app(&built, &key, "1.0.0", 1)?,
        root: firmware::target_dir().join("qemu-campaign"),
        built,
        key,
    };
    let dir = ctx.device(SERIAL, &ctx.bootloader, &ctx.v1)?;
    let v2 = ctx.app(VERSION, 2)?;
    let image = ctx.root.join(format!("release-{VERSION}.bin"));
    write(&image, &v2)?;
    // The older version signed again with the new security counter: the server accepts the
    // release, the device refuses the downgrade.
    let older = ctx.root.join("release-1.0.0-counter-2.bin");
    write(&older, &ctx.app("1.0.0", 2)?)?;
    eprintln!(
        "xtask: device {SERIAL} provisioned in {} (1.0.0, secured); release image {VERSION} ({} bytes)",
        dir.display(),
        v2.len()
    );
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root())
        .args([
            "run",
            "--quiet",
            "-p",
            "castellan-bridge",
            "--example",
            "qemu_campaign",
            "--",
        ])
        .arg("--rom")
        .arg(&ctx.built.rom)
        .arg("--device")
        .arg(&dir)
        .arg("--image")
        .arg(&image)
        .arg("--downgrade-image")
        .arg(&older)
        .args(["--version", VERSION, "--serial", SERIAL])
        .stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot start {c:?}: {e}"))?;
    let mut last = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
            println!("{line}");
            if !line.trim().is_empty() {
                last = line;
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let expected = format!("qemu-campaign: device {SERIAL} updated to {VERSION} (attested)");
    if status.success() && last == expected {
        Ok(())
    } else {
        Err(format!(
            "the campaign did not update the QEMU device ({status}); last line: {last}"
        ))
    }
}
