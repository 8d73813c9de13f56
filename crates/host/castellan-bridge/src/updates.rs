//! The QEMU device under the fleet client's one update client
//! ([`castellan_agent::update::Updater`]): each request the client makes of the device's
//! secure side becomes a QEMU run of the firmware, and the payload is staged on the host until
//! the install run takes it whole.
//!
//! ```text
//!  begin(envelope)  ─▶ `ota check`: the secure partition authenticates the manifest
//!                      accepted (sequence, size) · resume at the staged length
//!  write(bytes)     ─▶ <state>/update/seq-<N>.part (beside it the envelope, .suit)
//!  finish()         ─▶ `ota install` (envelope + image): SUIT digest and size, MCUboot
//!                      verification, trial install, reset, swap, trial boot, self-test,
//!                      FWU accept ─▶ confirmed <version> | reverted | refused
//!  attest(nonce)    ─▶ `attest <nonce>`: a token from the secure partition (IAK)
//! ```
//!
//! The bridge decides nothing: a refusal is the device's own words. Staged bytes survive a
//! restart of the bridge and are used again only for the same envelope.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use castellan_agent::AgentError;
use castellan_agent::secure::Refused;
use castellan_agent::update::device::{Installed, Plan, UpdateDevice, UpdateState, UpdateStatus};
use castellan_gate_api::psa::ERROR_NOT_PERMITTED;

use crate::Logger;
use crate::device::{InstallEvent, InstallOutcome, QemuDevice};
use crate::error::{BridgeError, write};

/// The QEMU device as the update client sees it.
pub struct QemuUpdates {
    device: QemuDevice,
    state_dir: PathBuf,
    log: Logger,
    pending: Mutex<Option<Staged>>,
}

impl QemuUpdates {
    /// The device, its bridge state directory (staged downloads go to `update/` in it).
    pub fn new(device: QemuDevice, state_dir: &Path, log: Logger) -> QemuUpdates {
        QemuUpdates {
            device,
            state_dir: state_dir.to_path_buf(),
            log,
            pending: Mutex::new(None),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Staged>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A QEMU run from the async update client: the run blocks this worker thread, not the others.
fn qemu_run<T>(run: impl FnOnce() -> Result<T, BridgeError>) -> Result<T, AgentError> {
    tokio::task::block_in_place(run).map_err(|e| AgentError::DeviceLink(Box::new(e)))
}

/// The device's refusal, in its own words (`not_newer` read back from the words, so that the
/// release the device already runs is reported as such).
fn refused(why: String) -> Refused {
    Refused {
        status: ERROR_NOT_PERMITTED,
        text: why.clone(),
        not_newer: not_newer(&why),
        reason: why,
    }
}

/// `manifest sequence N is not newer than the installed M` → (N, M).
fn not_newer(reason: &str) -> Option<(u64, u64)> {
    let rest = reason.strip_prefix("manifest sequence ")?;
    let (offered, installed) = rest.split_once(" is not newer than the installed ")?;
    let installed = installed.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((offered.parse().ok()?, installed.parse().ok()?))
}

impl UpdateDevice for QemuUpdates {
    fn update_status(&self) -> Result<UpdateStatus, AgentError> {
        // Each QEMU run installs, reboots and accepts in one go: between runs the device has
        // no update in flight.
        Ok(UpdateStatus {
            state: UpdateState::Idle,
            sequence: None,
            installed_sequence: 0,
        })
    }

    fn begin(&self, manifest: &[u8], _now: u32) -> Result<Result<Plan, Refused>, AgentError> {
        let accepted = match qemu_run(|| self.device.update_check(manifest))? {
            Ok(a) => a,
            Err(why) => return Ok(Err(refused(why))),
        };
        let staged = Staged::open(&self.state_dir, accepted.sequence, manifest)
            .map_err(|e| AgentError::DeviceLink(Box::new(e)))?;
        let plan = Plan {
            sequence: accepted.sequence,
            image_size: u32::try_from(accepted.size).unwrap_or(u32::MAX),
            resume_offset: u32::try_from(staged.len()).unwrap_or(u32::MAX),
        };
        *self.pending() = Some(staged);
        Ok(Ok(plan))
    }

    fn write(&self, offset: u64, bytes: &[u8]) -> Result<Result<u32, Refused>, AgentError> {
        let mut pending = self.pending();
        let Some(staged) = pending.as_mut() else {
            return Ok(Err(refused("no update in progress".into())));
        };
        if offset != staged.len() {
            return Ok(Err(refused(format!(
                "a block at byte {offset}, expected byte {}",
                staged.len()
            ))));
        }
        staged
            .append(bytes)
            .map_err(|e| AgentError::DeviceLink(Box::new(e)))?;
        Ok(Ok(u32::try_from(staged.len()).unwrap_or(u32::MAX)))
    }

    fn finish(&self) -> Result<Result<Installed, Refused>, AgentError> {
        let Some(staged) = self.pending().take() else {
            return Ok(Err(refused("no update in progress".into())));
        };
        let log = self.log.clone();
        let outcome = qemu_run(|| {
            self.device
                .update_install(&staged.envelope, &staged.bytes, &mut |e| {
                    if let InstallEvent::Trial { version } = e {
                        log(&format!(
                            "update: the device runs {version} on trial (self-test)"
                        ));
                    }
                })
        })?;
        staged.remove();
        Ok(match outcome {
            InstallOutcome::Confirmed { version } => Ok(Installed::Confirmed { version }),
            InstallOutcome::Reverted(why) => Ok(Installed::Reverted(why)),
            InstallOutcome::Refused(why) => Err(refused(why)),
        })
    }

    fn cancel(&self) -> Result<Result<(), Refused>, AgentError> {
        if let Some(staged) = self.pending().take() {
            staged.remove();
        }
        Ok(Ok(()))
    }

    fn self_test(&self) -> Result<(), String> {
        // The firmware runs its self-test inside the install run (see `finish`).
        Ok(())
    }

    fn accept(&self) -> Result<(), AgentError> {
        Ok(())
    }

    fn firmware_version(&self) -> String {
        "the QEMU device's".into()
    }

    fn attest(&self, nonce: &[u8]) -> Result<Vec<u8>, AgentError> {
        qemu_run(|| self.device.attest(nonce))
    }
}

/// The bytes of one manifest staged on the host while they download: `<state>/update/seq-<N>
/// .part`, with the envelope they belong to beside it (`.suit`): another envelope with the same
/// sequence number starts over.
struct Staged {
    part: PathBuf,
    suit: PathBuf,
    envelope: Vec<u8>,
    bytes: Vec<u8>,
}

impl Staged {
    fn open(state_dir: &Path, sequence: u64, envelope: &[u8]) -> Result<Staged, BridgeError> {
        let dir = state_dir.join("update");
        let (part, suit) = (
            dir.join(format!("seq-{sequence}.part")),
            dir.join(format!("seq-{sequence}.suit")),
        );
        let same = std::fs::read(&suit).is_ok_and(|e| e == envelope);
        let bytes = if same {
            std::fs::read(&part).unwrap_or_default()
        } else {
            write(&suit, envelope)?;
            write(&part, &[])?;
            Vec::new()
        };
        Ok(Staged {
            part,
            suit,
            envelope: envelope.to_vec(),
            bytes,
        })
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn append(&mut self, data: &[u8]) -> Result<(), BridgeError> {
        use std::io::Write as _;
        let io = |source| BridgeError::Io {
            path: self.part.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.part)
            .map_err(io)?;
        f.write_all(data).map_err(io)?;
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn remove(self) {
        let _ = std::fs::remove_file(self.part);
        let _ = std::fs::remove_file(self.suit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_download_resumes_only_for_the_same_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Staged::open(dir.path(), 2, b"env-a").unwrap();
        assert_eq!(s.len(), 0);
        s.append(b"hello").unwrap();
        // The bridge restarts: the same manifest resumes at the stored offset.
        let s = Staged::open(dir.path(), 2, b"env-a").unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.bytes, b"hello");
        // Another envelope with the same sequence number starts over.
        let s = Staged::open(dir.path(), 2, b"env-b").unwrap();
        assert_eq!(s.len(), 0);
        s.remove();
        assert!(!dir.path().join("update/seq-2.part").exists());
    }

    #[test]
    fn only_the_installed_release_counts_as_already_installed() {
        assert_eq!(
            not_newer("manifest sequence 4 is not newer than the installed 4"),
            Some((4, 4))
        );
        assert_eq!(
            not_newer("manifest sequence 3 is not newer than the installed 4 (replay)"),
            Some((3, 4))
        );
        assert_eq!(not_newer("the manifest is for another device class"), None);
    }
}
