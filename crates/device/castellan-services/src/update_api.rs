//! The update client's calls on [`SecureServices`] (`update_*`), available when the
//! configuration names the device's update identifiers ([`crate::ServicesConfig::with_update`])
//! and the firmware update service ([`crate::ServicesConfig::with_fwu`]). See [`crate::update`].

use castellan_hal::{Flash, MonotonicCounter, RandomSource};

use crate::fwu::InstallStatus;
use crate::update::{
    Ctx, TRUST_ANCHOR_LEN, UpdatePlan, UpdateStatus, provision_anchor, read_anchor,
};
use crate::{SecureServices, ServiceError};

const NO_UPDATE: ServiceError =
    ServiceError::NotSupported("no update client configured (update identifiers and FWU slots)");

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SecureServices<F, C, R> {
    /// Stores the release trust anchor (the release key's P-256 public key, SEC1 uncompressed,
    /// 65 bytes) once, write-once, where no `psa_its_*` caller can reach it. Provisioning the
    /// same key again succeeds; another key is [`ServiceError::NotPermitted`]. Without an
    /// anchor every update is refused. Needs only trusted storage (a factory station may
    /// provision it before the device knows its class).
    pub fn update_provision_trust_anchor(&mut self, sec1_p256: &[u8]) -> Result<(), ServiceError> {
        self.usable()?;
        let its = self.its.as_mut().map_err(|e| *e)?;
        provision_anchor(its, &mut self.platform, sec1_p256)
    }

    /// The provisioned release trust anchor, if any.
    pub fn update_trust_anchor(&mut self) -> Result<Option<[u8; TRUST_ANCHOR_LEN]>, ServiceError> {
        self.usable()?;
        let its = self.its.as_mut().map_err(|e| *e)?;
        read_anchor(its, &mut self.platform)
    }

    /// Checks an offered SUIT envelope and starts (or resumes) its download, before a byte of
    /// the payload is transferred: authenticated with the release trust anchor; sequence
    /// number above the installed one (equal only to resume the same envelope) and not below a
    /// pending one; vendor, class and component checked by the manifest's shared sequence;
    /// image size and SHA-256 digest given; not expired at `now_unix` (when the caller knows
    /// the time). The envelope is kept in trusted storage. A new update erases the secondary
    /// slot; the same envelope again continues the download where it stands
    /// ([`UpdatePlan::resume_offset`]), after a reboot from the stored progress.
    ///
    /// Refusals are [`ServiceError::UpdateRefused`]; an update installed and not yet accepted
    /// or reverted is [`crate::UpdateRefusal::InstallInProgress`].
    pub fn update_begin(
        &mut self,
        envelope: &[u8],
        now_unix: Option<u64>,
    ) -> Result<UpdatePlan, ServiceError> {
        self.update_ctx()?.begin(envelope, now_unix)
    }

    /// Writes the next block of the image at `offset` (where the download stands); returns the
    /// bytes received so far. A block reaching past the manifest's image size is refused
    /// ([`crate::UpdateRefusal::EndlessData`]) and nothing of it is written. Progress is kept in
    /// trusted storage at sector boundaries, so a reboot resumes close to where it stopped.
    pub fn update_write(&mut self, offset: u64, bytes: &[u8]) -> Result<u32, ServiceError> {
        self.update_ctx()?.write(offset, bytes)
    }

    /// Once the whole image is received: runs the manifest's update procedure over the staged
    /// bytes (size and digest, image-match), then the firmware update service verifies the
    /// MCUboot image (signature, downgrade policy) and installs it for a trial run at the next
    /// reboot ([`InstallStatus::RebootRequired`]). A refused payload drops the download.
    pub fn update_finish(&mut self) -> Result<InstallStatus, ServiceError> {
        self.update_ctx()?.finish()
    }

    /// Where the update stands, and the installed sequence number. Also stores the sequence
    /// number of an update whose image runs confirmed (after a cut at the wrong moment).
    pub fn update_status(&mut self) -> Result<UpdateStatus, ServiceError> {
        self.update_ctx()?.status()
    }

    /// Abandons a download, withdraws an installation that waits for its reboot, or forgets a
    /// failed or reverted update; the secondary slot is erased. A trial image must be accepted
    /// (`fwu_accept`) or rejected (`fwu_reject`) instead.
    pub fn update_cancel(&mut self) -> Result<(), ServiceError> {
        self.update_ctx()?.cancel()
    }

    /// The sequence number of the installed release (0 before the first update).
    pub fn update_installed_sequence(&mut self) -> Result<u64, ServiceError> {
        self.update_ctx()?.installed()
    }

    /// After `fwu_accept`: stores the accepted update's sequence number (no-op without an
    /// update client, without mounted trusted storage, or without a pending update; the next
    /// update call rolls it forward then).
    pub(crate) fn update_after_accept(&mut self) -> Result<(), ServiceError> {
        if self.config.update.is_none() || self.its.is_err() {
            return Ok(());
        }
        self.update_ctx()?.reconcile()
    }

    fn update_ctx(&mut self) -> Result<Ctx<'_, F, C, R>, ServiceError> {
        self.usable()?;
        let ids = self.config.update.ok_or(NO_UPDATE)?;
        let fwu = self.fwu.as_mut().ok_or(NO_UPDATE)?;
        let its = self.its.as_mut().map_err(|e| *e)?;
        Ok(Ctx {
            ids,
            its,
            p: &mut self.platform,
            fwu,
            client: &mut self.update,
        })
    }
}
