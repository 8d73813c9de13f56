//! The device under the update client: what the client asks of the device's secure side, and
//! nothing it decides itself. The simulated device answers through its call gate
//! ([`SecureWorld`]); the QEMU device's host bridge answers by running the firmware
//! (`castellan-bridge`), so one update client serves both.
//!
//! ```text
//!  Updater ── begin(manifest) ─▶ plan (sequence, size, resume offset) | refused (reason)
//!          ── write(offset, bytes) ─▶ bytes received | refused
//!          ── finish() ─▶ reboot into the trial image | confirmed | reverted | refused
//!          ── after a reboot: status(), self_test(), accept()
//!          ── attest(nonce) ─▶ token                    ── cancel()
//! ```

pub use castellan_services::{UpdateState, UpdateStatus};

use castellan_gate_api::SecureGate as _;

use crate::error::AgentError;
use crate::secure::{Refused, SecureWorld};

/// What the device accepted of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The image size the manifest names.
    pub image_size: u32,
    /// Where the download continues (bytes the device holds already).
    pub resume_offset: u32,
}

/// How an install ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Installed for a trial run: the device must be power cycled into it; the client finishes
    /// the update after the reboot (self-test, accept).
    Reboot,
    /// The device installed, rebooted, tested and accepted the image already: `version` runs.
    Confirmed {
        /// The running version.
        version: String,
    },
    /// The trial image was not accepted and the previous one runs again.
    Reverted(String),
}

/// The device's side of an update.
pub trait UpdateDevice {
    /// The update state the device keeps (across power cycles).
    fn update_status(&self) -> Result<UpdateStatus, AgentError>;
    /// Starts (or resumes) an update from `manifest` at time `now` (Unix seconds).
    fn begin(&self, manifest: &[u8], now: u32) -> Result<Result<Plan, Refused>, AgentError>;
    /// Writes `bytes` at `offset` of the payload; the bytes received so far.
    fn write(&self, offset: u64, bytes: &[u8]) -> Result<Result<u32, Refused>, AgentError>;
    /// The whole payload is written: verify and install it.
    fn finish(&self) -> Result<Result<Installed, Refused>, AgentError>;
    /// Abandons the pending update.
    fn cancel(&self) -> Result<Result<(), Refused>, AgentError>;
    /// The trial image's self-test.
    fn self_test(&self) -> Result<(), String>;
    /// Accepts the trial image for good.
    fn accept(&self) -> Result<(), AgentError>;
    /// The running firmware's version (for the log).
    fn firmware_version(&self) -> String;
    /// An attestation token over `nonce`.
    fn attest(&self, nonce: &[u8]) -> Result<Vec<u8>, AgentError>;
}

impl UpdateDevice for SecureWorld {
    fn update_status(&self) -> Result<UpdateStatus, AgentError> {
        SecureWorld::update_status(self)
    }

    fn begin(&self, manifest: &[u8], now: u32) -> Result<Result<Plan, Refused>, AgentError> {
        self.refusing(|g| {
            let resume_offset = g.update_begin(manifest, now)?;
            let status = g.update_status()?;
            Ok(Plan {
                sequence: status.sequence,
                image_size: status.image_size,
                resume_offset,
            })
        })
    }

    fn write(&self, offset: u64, bytes: &[u8]) -> Result<Result<u32, Refused>, AgentError> {
        self.update_write(offset, bytes)
    }

    fn finish(&self) -> Result<Result<Installed, Refused>, AgentError> {
        Ok(self
            .refusing(|g| g.update_finish())?
            .map(|_| Installed::Reboot))
    }

    fn cancel(&self) -> Result<Result<(), Refused>, AgentError> {
        self.refusing(|g| g.update_cancel())
    }

    fn self_test(&self) -> Result<(), String> {
        let image = self
            .running_image()
            .map_err(|e| e.to_string())?
            .ok_or("the primary slot cannot be read")?;
        if image
            .windows(super::SELFTEST_FAIL_MARKER.len())
            .any(|w| w == super::SELFTEST_FAIL_MARKER)
        {
            return Err("the application reports a failed self-test".into());
        }
        Ok(())
    }

    fn accept(&self) -> Result<(), AgentError> {
        self.with_gate(|g| g.fwu_accept())
    }

    fn firmware_version(&self) -> String {
        self.boot_info().firmware_version()
    }

    fn attest(&self, nonce: &[u8]) -> Result<Vec<u8>, AgentError> {
        self.attest_token(nonce)
    }
}
