//! The `mqtt` QEMU scenario: the device speaks MQTT 5 over its own TLS 1.3 to a real fleet
//! service, with an IDevID whose key stays in its secure partition.
//!
//! The fleet side runs in a separate process, `castellan-bridge`'s `qemu_mqtt` example (as
//! `qemu-campaign` runs `qemu_campaign`), so that xtask stays a quick, std-only build: a fleet
//! service in that process (SQLite in a temporary directory, the embedded demo PKI, the server
//! certificate also named `fleet.castellan`), the factory registration with a CSR the device
//! builds and signs in its secure partition, the CA and the IDevID provisioned in the device's
//! trusted storage, then the device on QEMU's user network (`restrict=on`, one `guestfwd` to
//! the broker on 127.0.0.1): TLS, CONNECT, SUBSCRIBE to its onboarding topics, the onboarding
//! request, the server's challenge answered with evidence from the secure partition
//! (`castellan-fleet-client`), the LDevID stored in trusted storage, and a telemetry
//! publication the broker must refuse under an IDevID; then a second session with the LDevID
//! (its key in the secure partition, the certificate from trusted storage): the operational
//! subscriptions, status and telemetry, which the example finds stored by the service. The
//! example's last line is
//! `qemu-mqtt: device <id> onboarded over its own TLS and MQTT, telemetry accepted under its LDevID`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::qemu::Ctx;
use crate::steps::{Result, root};

/// The device's serial (its id in the fleet).
const SERIAL: &str = "an505-mqtt-0001";

pub(crate) fn mqtt(c: &Ctx) -> Result {
    let dir = c.device("mqtt", &c.bootloader, &c.v1)?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root())
        .args([
            "run",
            "--quiet",
            "-p",
            "castellan-bridge",
            "--example",
            "qemu_mqtt",
            "--",
        ])
        .arg("--rom")
        .arg(&c.built.rom)
        .arg("--device")
        .arg(&dir)
        .args(["--serial", SERIAL])
        .stdout(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let mut last = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
            eprintln!("        {line}");
            if !line.trim().is_empty() {
                last = line;
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let expected = format!(
        "qemu-mqtt: device {SERIAL} onboarded over its own TLS and MQTT, telemetry accepted under its LDevID"
    );
    if status.success() && last == expected {
        Ok(())
    } else {
        Err(format!("{status}; last line: {last}"))
    }
}
