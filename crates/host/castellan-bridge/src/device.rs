//! What the bridge asks of the QEMU device, one short run per request, and how it reads the
//! answers off the console. The device decides; the bridge only carries bytes and reports.
//!
//! | request | operator command | the device prints |
//! |---|---|---|
//! | [`QemuDevice::identity`] / [`QemuDevice::attest`] | `attest <nonce>` | the IAK public key and a token over the nonce |
//! | [`QemuDevice::store_trust_anchor`] | `anchor <key>` | `[app] anchor: release trust anchor stored` |
//! | [`QemuDevice::update_check`] | `ota check <now>` + envelope | `[app] ota: manifest accepted: …` or the secure partition's refusal |
//! | [`QemuDevice::update_install`] | `ota install <now>` + envelope + image | progress, the trial boot, `[app] ota: update confirmed: …` |
//! | [`QemuDevice::boot`] | `boot` | telemetry (running version, confirmed or on trial) |
//!
//! The download buffer (`castellan-demo-app`'s `ota` module) is built by [`update_download`].

use castellan_attest::{Claims, VerificationKey, verify_token};

use crate::error::BridgeError;
use crate::qemu::{Qemu, RunOutput};

/// Magic word at the start of an update download ("CSLU").
pub const DOWNLOAD_MAGIC: &[u8; 4] = b"CSLU";
/// Size of the download header (magic, envelope length, payload length, reserved).
pub const DOWNLOAD_HEADER: usize = 16;

/// The download buffer for an update: header, envelope (zero-padded to 16 bytes), payload.
pub fn update_download(envelope: &[u8], payload: &[u8]) -> Vec<u8> {
    let padded = envelope.len().div_ceil(16) * 16;
    let mut b = Vec::with_capacity(DOWNLOAD_HEADER + padded + payload.len());
    b.extend_from_slice(DOWNLOAD_MAGIC);
    b.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(envelope);
    b.resize(DOWNLOAD_HEADER + padded, 0);
    b.extend_from_slice(payload);
    b
}

/// What the device is, as the factory records it: read from one run that prints the IAK
/// public key and a token over a fresh nonce (checked with that key).
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    /// The attestation public key (SEC1 uncompressed).
    pub iak_public_key: [u8; 65],
    /// The token's claims: the boot record (measurements), lifecycle, implementation id.
    pub claims: Claims,
}

/// What the device said about a manifest it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestAccepted {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The payload size it names.
    pub size: u64,
}

/// Progress of an installation run, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallEvent {
    /// The secure partition accepted the manifest; the payload is being written.
    Writing,
    /// The payload verified; the image is installed for a trial run and the device reboots.
    Rebooting,
    /// The new image runs on trial (its self-test is running).
    Trial {
        /// The version on trial.
        version: String,
    },
}

/// How an installation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The trial image passed its self-test and was accepted.
    Confirmed {
        /// The running version.
        version: String,
    },
    /// The secure partition or the bootloader refused the update; the previous image runs.
    Refused(String),
    /// The trial image did not pass its self-test; the bootloader reverted to the previous
    /// image.
    Reverted(String),
}

/// What a plain boot shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSummary {
    /// The running version (`major.minor.revision+build`).
    pub version: String,
    /// Whether it is confirmed (not on trial).
    pub confirmed: bool,
}

/// The QEMU device, driven one command per run.
#[derive(Debug, Clone)]
pub struct QemuDevice {
    qemu: Qemu,
}

impl QemuDevice {
    /// The device that `qemu` runs.
    pub fn new(qemu: Qemu) -> QemuDevice {
        QemuDevice { qemu }
    }

    /// The runner.
    pub fn qemu(&self) -> &Qemu {
        &self.qemu
    }

    /// Boots with `boot` and reads the telemetry.
    pub fn boot(&self) -> Result<BootSummary, BridgeError> {
        let cmd = "boot";
        let out = self.qemu.run_quiet(cmd, None)?;
        expect_status(&out, cmd, 0)?;
        telemetry(&out).ok_or_else(|| missing(&out, cmd, "no telemetry line"))
    }

    /// An attestation token over `nonce` (32, 48 or 64 bytes), made by the secure partition.
    pub fn attest(&self, nonce: &[u8]) -> Result<Vec<u8>, BridgeError> {
        Ok(self.attest_run(nonce)?.1)
    }

    /// The IAK public key and the claims of a token over a fresh random nonce (the token is
    /// verified with the key and must answer the nonce).
    pub fn identity(&self) -> Result<DeviceIdentity, BridgeError> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce)
            .map_err(|e| BridgeError::InvalidInput(format!("no random nonce: {e}")))?;
        let (key, token) = self.attest_run(&nonce)?;
        let vk = VerificationKey::p256_from_sec1(&key).map_err(|e| {
            BridgeError::Protocol(format!("the device's attestation key is malformed: {e}"))
        })?;
        let claims = verify_token(&token, &vk).map_err(|e| {
            BridgeError::Protocol(format!(
                "the device's token does not verify with its own key: {e}"
            ))
        })?;
        if claims.nonce != nonce {
            return Err(BridgeError::Protocol(
                "the device's token answers another nonce".into(),
            ));
        }
        Ok(DeviceIdentity {
            iak_public_key: key,
            claims,
        })
    }

    fn attest_run(&self, nonce: &[u8]) -> Result<([u8; 65], Vec<u8>), BridgeError> {
        let cmd = format!("attest {}", hex::encode(nonce));
        let out = self.qemu.run_quiet(&cmd, None)?;
        if let Some(why) = out.after("[app] attestation refused: ") {
            return Err(BridgeError::Refused(format!("attestation: {why}")));
        }
        expect_status(&out, &cmd, 0)?;
        let key = hex_line(&out, "[app] attestation public key: ")
            .ok_or_else(|| missing(&out, &cmd, "no attestation public key"))?;
        let key: [u8; 65] = key
            .try_into()
            .map_err(|_| missing(&out, &cmd, "the attestation key is not 65 bytes"))?;
        let token = hex_line(&out, "[app] attestation token: ")
            .ok_or_else(|| missing(&out, &cmd, "no attestation token"))?;
        Ok((key, token))
    }

    /// Stores the release trust anchor in the device's trusted storage (write-once). A device
    /// that already holds this very anchor is fine; one that holds another refuses.
    pub fn store_trust_anchor(&self, key: &[u8; 65]) -> Result<(), BridgeError> {
        let cmd = format!("anchor {}", hex::encode(key));
        let out = self.qemu.run_quiet(&cmd, None)?;
        if out.contains("[app] anchor: release trust anchor stored") {
            return Ok(());
        }
        Err(BridgeError::Refused(format!(
            "storing the release trust anchor: {}",
            refusal(&out).unwrap_or_else(|| out.tail(6))
        )))
    }

    /// Hands `envelope` to the secure partition: it authenticates the manifest with the
    /// release trust anchor and checks vendor, class and sequence number. `Ok(Err(reason))` is
    /// the device's refusal.
    pub fn update_check(
        &self,
        envelope: &[u8],
    ) -> Result<Result<ManifestAccepted, String>, BridgeError> {
        let cmd = format!("ota check {}", unix_now());
        let cmd = cmd.as_str();
        let out = self
            .qemu
            .run_quiet(cmd, Some(&update_download(envelope, &[])))?;
        if let Some(acc) = accepted(&out) {
            return Ok(Ok(acc));
        }
        match refusal(&out) {
            Some(why) => Ok(Err(why)),
            None => Err(missing(&out, cmd, "neither accepted nor refused")),
        }
    }

    /// Installs: the secure partition takes the envelope again (the same manifest resumes),
    /// the payload, checks it against the manifest, verifies the image and installs it for a
    /// trial; the device reboots (within the run), runs its self-test and accepts the image.
    /// `on_event` hears the progress.
    pub fn update_install(
        &self,
        envelope: &[u8],
        image: &[u8],
        on_event: &mut dyn FnMut(InstallEvent),
    ) -> Result<InstallOutcome, BridgeError> {
        let cmd = format!("ota install {}", unix_now());
        let cmd = cmd.as_str();
        let mut on_line = |line: &str| {
            if line.starts_with("[app] ota: writing ") {
                on_event(InstallEvent::Writing);
            } else if line.starts_with("[app] ota: installed for a trial run") {
                on_event(InstallEvent::Rebooting);
            } else if let Some(rest) = line.strip_prefix("[app] ota: running ") {
                let version = rest.split(' ').next().unwrap_or("").to_string();
                on_event(InstallEvent::Trial { version });
            }
        };
        let out = self
            .qemu
            .run(cmd, Some(&update_download(envelope, image)), &mut on_line)?;
        if let Some(rest) = out.after("[app] ota: update confirmed: running ") {
            let version = rest.split(' ').next().unwrap_or("").to_string();
            expect_status(&out, cmd, 0)?;
            return Ok(InstallOutcome::Confirmed { version });
        }
        if let Some(rest) = out.after("[app] ota: update REVERTED: ") {
            let why = out
                .after("[app] ota: self-test FAILED (")
                .and_then(|r| r.split(')').next())
                .map(|r| format!("self-test failed: {r}; "))
                .unwrap_or_default();
            return Ok(InstallOutcome::Reverted(format!("{why}{rest}")));
        }
        match refusal(&out) {
            Some(why) => Ok(InstallOutcome::Refused(why)),
            None => Err(missing(
                &out,
                cmd,
                "the update neither completed nor failed",
            )),
        }
    }
}

/// The host's time in unix seconds, handed to the device with update commands (the board has
/// no clock): with it the secure partition refuses expired releases. The bridge is trusted
/// with the time no more than with the link: a bridge that lies about it can keep a device on
/// an old release, as it could by withholding updates; a compromised server cannot.
fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The rest of the first line after `prefix`, decoded from hex.
fn hex_line(out: &RunOutput, prefix: &str) -> Option<Vec<u8>> {
    out.lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .find(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| hex::decode(h).ok())
}

fn accepted(out: &RunOutput) -> Option<ManifestAccepted> {
    let rest = out.after("[app] ota: manifest accepted: sequence ")?;
    let (seq, rest) = rest.split_once(", payload ")?;
    let size = rest.strip_suffix(" bytes")?;
    Some(ManifestAccepted {
        sequence: seq.parse().ok()?,
        size: size.parse().ok()?,
    })
}

/// The device's reason for a refusal: the secure partition's own text when it printed one
/// (`[secure] update: … refused: <reason>`), else the bootloader's, else the gate status.
pub(crate) fn refusal(out: &RunOutput) -> Option<String> {
    for l in &out.lines {
        if let Some(rest) = l.strip_prefix("[secure] update: ")
            && let Some((_, why)) = rest.split_once("refused: ")
        {
            return Some(why.to_string());
        }
    }
    if let Some(why) = out.after("[app] ota: update REFUSED by the bootloader: ") {
        return Some(format!("the bootloader refused the image: {why}"));
    }
    for prefix in [
        "[app] ota: manifest refused: ",
        "[app] ota: payload refused at byte ",
        "[app] ota: update refused: ",
        "[app] ota: accept failed: ",
        "[app] anchor: refused: ",
        "[app] ota: no update in the download buffer",
    ] {
        if let Some(rest) = out.after(prefix) {
            return Some(format!("{}{rest}", prefix.trim_start_matches("[app] ")));
        }
    }
    None
}

fn telemetry(out: &RunOutput) -> Option<BootSummary> {
    let rest = out.after("[app] telemetry: image ")?;
    let (version, rest) = rest.split_once(' ')?;
    Some(BootSummary {
        version: version.to_string(),
        confirmed: rest.starts_with("(confirmed)"),
    })
}

fn expect_status(out: &RunOutput, cmd: &str, status: i32) -> Result<(), BridgeError> {
    if out.status == Some(status) {
        Ok(())
    } else {
        Err(BridgeError::Device {
            command: cmd.to_string(),
            what: format!("exit status {:?}, expected {status}", out.status),
            tail: out.tail(12),
        })
    }
}

fn missing(out: &RunOutput, cmd: &str, what: &str) -> BridgeError {
    BridgeError::Device {
        command: cmd.to_string(),
        what: what.to_string(),
        tail: out.tail(12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(lines: &[&str], status: i32) -> RunOutput {
        RunOutput {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            status: Some(status),
        }
    }

    #[test]
    fn download_layout_matches_the_demo_application() {
        let b = update_download(&[1, 2, 3], &[9; 5]);
        assert_eq!(&b[..4], b"CSLU");
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 5);
        assert_eq!(&b[12..16], &[0; 4]);
        assert_eq!(&b[16..19], &[1, 2, 3]);
        // The envelope is padded to 16 bytes; the payload follows.
        assert_eq!(&b[19..32], &[0; 13]);
        assert_eq!(&b[32..], &[9; 5]);
        assert_eq!(update_download(&[0; 16], &[]).len(), 32);
    }

    #[test]
    fn secure_partition_reason_wins_over_the_gate_status() {
        let o = out(
            &[
                "[secure] update: begin refused: manifest sequence 3 is not newer than the installed 4",
                "[app] ota: manifest refused: not permitted",
            ],
            1,
        );
        assert_eq!(
            refusal(&o).as_deref(),
            Some("manifest sequence 3 is not newer than the installed 4")
        );
        let o = out(&["[app] ota: manifest refused: invalid signature"], 1);
        assert_eq!(
            refusal(&o).as_deref(),
            Some("ota: manifest refused: invalid signature")
        );
        let o = out(
            &["[app] ota: update REFUSED by the bootloader: downgrade refused: 0.9.0"],
            1,
        );
        assert_eq!(
            refusal(&o).as_deref(),
            Some("the bootloader refused the image: downgrade refused: 0.9.0")
        );
        assert_eq!(refusal(&out(&["[app] telemetry: x"], 0)), None);
    }

    #[test]
    fn accepted_manifest_line_parses() {
        let o = out(
            &["[app] ota: manifest accepted: sequence 7, payload 281600 bytes"],
            0,
        );
        assert_eq!(
            accepted(&o),
            Some(ManifestAccepted {
                sequence: 7,
                size: 281_600
            })
        );
        assert_eq!(
            accepted(&out(&["[app] ota: manifest accepted: sequence x"], 0)),
            None
        );
    }

    #[test]
    fn telemetry_line_parses() {
        let o = out(
            &["[app] telemetry: image 2.0.0+0 (on trial), security counter 2, OTP counter 1"],
            0,
        );
        assert_eq!(
            telemetry(&o),
            Some(BootSummary {
                version: "2.0.0+0".into(),
                confirmed: false
            })
        );
    }

    #[test]
    fn hex_lines_skip_non_hex_text() {
        let o = out(
            &[
                "[app] attestation token: 468 bytes",
                "[app] attestation token: d28443a1",
            ],
            0,
        );
        assert_eq!(
            hex_line(&o, "[app] attestation token: "),
            Some(vec![0xd2, 0x84, 0x43, 0xa1])
        );
    }
}
