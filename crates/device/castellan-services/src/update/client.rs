//! The update client's logic over the services' parts ([`Ctx`]): the steps of an update, the
//! stored pending state, and what the state is after a reboot ([`Ctx::reconcile`]).

use castellan_hal::{Flash, MonotonicCounter, RandomSource};
use castellan_slots::{Geometry, read_slot_trailer};
use castellan_suit::{AuthenticatedManifest, DigestAlgorithm, Procedure, Processor, TrustAnchor};
use sha2::{Digest as _, Sha256};

use super::slot::StagedSlot;
use super::{
    ITS_UID_ENVELOPE, ITS_UID_INSTALLED_SEQUENCE, ITS_UID_PENDING, ITS_UID_TRUST_ANCHOR,
    MAX_ENVELOPE_LEN, MAX_ENVELOPE_PARTS, Pending, Phase, RECORD_LEN, TRUST_ANCHOR_LEN,
    UpdateConfig, UpdatePlan, UpdateState, UpdateStatus, progress_step,
};
use crate::error::UpdateRefusal;
use crate::fwu::{COMPONENT_APPLICATION, Fwu, FwuState, InstallStatus, ROLLED_BACK};
use crate::its::{Its, ItsFlags, Namespace};
use crate::{Platform, ServiceError, psa};

/// The update client's RAM state: the pending record as last read or written.
#[derive(Debug, Default)]
pub(crate) struct UpdateClient {
    /// `None`: not read yet; `Some(None)`: no update pending.
    cache: Option<Option<Pending>>,
}

/// The services' parts an update step works on.
pub(crate) struct Ctx<'s, F, C, R> {
    pub(crate) ids: UpdateConfig,
    pub(crate) its: &'s mut Its,
    pub(crate) p: &'s mut Platform<F, C, R>,
    pub(crate) fwu: &'s mut Fwu,
    pub(crate) client: &'s mut UpdateClient,
}

/// The manifest facts checked before a download.
struct Checked {
    image_size: u32,
    digest: [u8; 32],
    expires: Option<u64>,
}

fn refused(r: UpdateRefusal) -> ServiceError {
    ServiceError::UpdateRefused(r)
}

fn manifest_err(e: castellan_suit::SuitError) -> ServiceError {
    refused(UpdateRefusal::Manifest(e))
}

/// `update_provision_trust_anchor`: stores the release key once (the same key again is
/// accepted, another one refused). Needs only trusted storage.
pub(crate) fn provision_anchor<F: Flash, C: MonotonicCounter, R: RandomSource>(
    its: &mut Its,
    p: &mut Platform<F, C, R>,
    sec1: &[u8],
) -> Result<(), ServiceError> {
    if sec1.len() != TRUST_ANCHOR_LEN || !crate::crypto::ecc::public_key_ok(sec1) {
        return Err(ServiceError::InvalidArgument(
            "the release trust anchor must be a P-256 public key, SEC1 uncompressed (65 bytes)",
        ));
    }
    if let Some(existing) = read_anchor(its, p)? {
        return if existing.as_slice() == sec1 {
            Ok(())
        } else {
            Err(ServiceError::NotPermitted(
                "another release trust anchor is provisioned (write-once)",
            ))
        };
    }
    its.set_in(
        p,
        Namespace::Update,
        ITS_UID_TRUST_ANCHOR,
        sec1,
        ItsFlags::WRITE_ONCE,
    )
}

/// The provisioned release key, if any.
pub(crate) fn read_anchor<F: Flash, C: MonotonicCounter, R: RandomSource>(
    its: &mut Its,
    p: &mut Platform<F, C, R>,
) -> Result<Option<[u8; TRUST_ANCHOR_LEN]>, ServiceError> {
    let mut key = [0u8; TRUST_ANCHOR_LEN];
    match its.get_in(p, Namespace::Update, ITS_UID_TRUST_ANCHOR, 0, &mut key) {
        Ok(TRUST_ANCHOR_LEN) => Ok(Some(key)),
        Ok(_) => Err(ServiceError::StorageCorrupt("the release trust anchor")),
        Err(ServiceError::DoesNotExist) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<F: Flash, C: MonotonicCounter, R: RandomSource> Ctx<'_, F, C, R> {
    // --- steps ---------------------------------------------------------------------------

    /// `update_begin`.
    pub(crate) fn begin(
        &mut self,
        envelope: &[u8],
        now: Option<u64>,
    ) -> Result<UpdatePlan, ServiceError> {
        self.reconcile()?;
        let max = MAX_ENVELOPE_LEN.min(self.part_size() * MAX_ENVELOPE_PARTS);
        if envelope.len() > max {
            return Err(refused(UpdateRefusal::EnvelopeTooLarge {
                len: envelope.len(),
                max,
            }));
        }
        let anchor = self.anchor()?;
        let installed = self.installed()?;
        let manifest = castellan_suit::authenticate(envelope, &[anchor]).map_err(manifest_err)?;
        let sequence = manifest.sequence_number();
        let hash: [u8; 32] = Sha256::digest(envelope).into();
        let pending = self.pending()?;
        let resuming = pending.filter(|p| p.envelope_hash == hash && p.phase == Phase::Downloading);
        if sequence < installed || (sequence == installed && resuming.is_none()) {
            return Err(refused(UpdateRefusal::NotNewer {
                offered: sequence,
                installed,
            }));
        }
        if let Some(p) = pending {
            if resuming.is_none() && p.phase != Phase::Failed && sequence < p.sequence {
                return Err(refused(UpdateRefusal::OlderThanPending {
                    offered: sequence,
                    pending: p.sequence,
                }));
            }
        }
        if matches!(
            self.fwu.state(),
            FwuState::Staged | FwuState::Trial | FwuState::Rejected
        ) {
            return Err(refused(UpdateRefusal::InstallInProgress));
        }
        let checked = self.check(&manifest, installed, now)?;
        let plan = |resume_offset| UpdatePlan {
            sequence,
            image_size: checked.image_size,
            digest: checked.digest,
            resume_offset,
            expires: checked.expires,
        };
        if let Some(p) = resuming {
            match self.fwu.state() {
                FwuState::Writing => return Ok(plan(self.fwu.written())),
                FwuState::Candidate => return Ok(plan(p.image_size)),
                FwuState::Ready => {
                    self.fwu.resume(&mut self.p.flash, p.offset, p.image_size)?;
                    return Ok(plan(p.offset));
                }
                _ => {} // failed: start again from the first byte
            }
        }
        if pending.is_some() {
            self.clear_pending()?;
        }
        self.abandon_candidate()?;
        self.store_envelope(envelope)?;
        self.store_pending(&Pending {
            phase: Phase::Downloading,
            sequence,
            image_size: checked.image_size,
            offset: 0,
            envelope_len: envelope.len() as u32,
            error: 0,
            envelope_hash: hash,
            digest: checked.digest,
        })?;
        self.fwu
            .start(&mut self.p.flash, COMPONENT_APPLICATION, &[])?;
        Ok(plan(0))
    }

    /// `update_write`: the next block; returns the bytes received so far.
    pub(crate) fn write(&mut self, offset: u64, block: &[u8]) -> Result<u32, ServiceError> {
        let mut p = self
            .pending()?
            .filter(|p| p.phase == Phase::Downloading && self.fwu.state() == FwuState::Writing)
            .ok_or(refused(UpdateRefusal::NothingInProgress))?;
        let end = offset.saturating_add(block.len() as u64);
        if end > u64::from(p.image_size) {
            return Err(refused(UpdateRefusal::EndlessData {
                image_size: p.image_size,
                end,
            }));
        }
        let expected = self.fwu.written();
        if offset != u64::from(expected) {
            return Err(refused(UpdateRefusal::OutOfOrder { expected, offset }));
        }
        if block.is_empty() {
            return Ok(expected);
        }
        self.fwu.write(
            &mut self.p.flash,
            COMPONENT_APPLICATION,
            expected as usize,
            block,
        )?;
        let end = end as u32; // ≤ image_size
        let sector = self.p.flash.erase_size() as u32;
        let done = end / sector.max(1) * sector;
        if done >= p.offset.saturating_add(progress_step(p.image_size, sector)) {
            p.offset = done;
            self.store_pending(&p)?;
        }
        Ok(end)
    }

    /// `update_finish`: the SUIT update procedure over the staged bytes, then FWU finish
    /// (MCUboot verification) and install for trial.
    pub(crate) fn finish(&mut self) -> Result<InstallStatus, ServiceError> {
        self.reconcile()?;
        let mut p = match self.pending()? {
            Some(p) if p.phase == Phase::Downloading => p,
            Some(p) if p.phase == Phase::Installed => {
                return Err(refused(UpdateRefusal::InstallInProgress));
            }
            _ => return Err(refused(UpdateRefusal::NothingInProgress)),
        };
        match self.fwu.state() {
            FwuState::Writing if self.fwu.written() != p.image_size => {
                return Err(refused(UpdateRefusal::Incomplete {
                    received: self.fwu.written(),
                    image_size: p.image_size,
                }));
            }
            FwuState::Writing => self.fwu.flush_pending(&mut self.p.flash)?,
            FwuState::Candidate => {}
            FwuState::Staged | FwuState::Trial | FwuState::Rejected => {
                return Err(refused(UpdateRefusal::InstallInProgress));
            }
            _ => return Err(refused(UpdateRefusal::NothingInProgress)),
        }
        if let Err(e) = self.process_staged(&p) {
            return Err(self.fail_download(e));
        }
        if self.fwu.state() == FwuState::Writing {
            if let Err(e) = self.fwu.finish(&mut self.p.flash, COMPONENT_APPLICATION) {
                return Err(self.fail_download(e));
            }
        }
        // "Installed" is stored before the install request: once the request may exist, a
        // reboot may swap the slots, and a download must never be resumed into a secondary
        // slot that holds the previous image. A cut in between leaves "installed" without a
        // request: reported as failed, and the update starts again from the first byte.
        p.phase = Phase::Installed;
        self.store_pending(&p)?;
        match self.fwu.install(&mut self.p.flash) {
            Ok(s) => Ok(s),
            Err(e) => Err(self.fail_download(e)),
        }
    }

    /// `update_status`.
    pub(crate) fn status(&mut self) -> Result<UpdateStatus, ServiceError> {
        self.reconcile()?;
        let installed_sequence = self.installed()?;
        let pending = self.pending()?;
        let state = match (pending, self.fwu.state()) {
            (None, _) => UpdateState::Idle,
            (Some(_), FwuState::Staged) => UpdateState::Staged,
            (Some(_), FwuState::Trial) => UpdateState::Trial,
            (Some(_), FwuState::Rejected) => UpdateState::Rejected,
            (Some(p), FwuState::Writing) => UpdateState::Downloading {
                received: self.fwu.written(),
                image_size: p.image_size,
            },
            (Some(p), FwuState::Candidate) => UpdateState::Downloading {
                received: p.image_size,
                image_size: p.image_size,
            },
            (Some(p), _) => match p.phase {
                Phase::Downloading => UpdateState::Downloading {
                    received: p.offset,
                    image_size: p.image_size,
                },
                Phase::Failed if p.error == ROLLED_BACK => UpdateState::Reverted,
                Phase::Failed => UpdateState::Failed { error: p.error },
                Phase::Installed => UpdateState::Failed {
                    error: psa::ERROR_GENERIC_ERROR,
                },
            },
        };
        Ok(UpdateStatus {
            state,
            sequence: pending.map(|p| p.sequence),
            installed_sequence,
        })
    }

    /// `update_cancel`: abandons a download, withdraws an install request that waits for its
    /// reboot, forgets a failed update. A trial image must be accepted or rejected instead.
    pub(crate) fn cancel(&mut self) -> Result<(), ServiceError> {
        self.reconcile()?;
        match self.fwu.state() {
            FwuState::Trial | FwuState::Rejected => {
                return Err(refused(UpdateRefusal::InstallInProgress));
            }
            FwuState::Staged => {
                self.fwu.reject(&mut self.p.flash, 0)?;
            }
            _ => {}
        }
        self.clear_pending()?;
        self.abandon_candidate()
    }

    /// Stores the installed sequence number once the pending update's image runs confirmed;
    /// records a reverted or refused install as failed. Idempotent; called by every step and
    /// after `fwu_accept`.
    pub(crate) fn reconcile(&mut self) -> Result<(), ServiceError> {
        let Some(mut p) = self.pending()? else {
            return Ok(());
        };
        let state = self.fwu.state();
        if !matches!(
            state,
            FwuState::Ready | FwuState::Failed | FwuState::Updated
        ) {
            return Ok(());
        }
        let installed_phase = p.phase == Phase::Installed || state == FwuState::Updated;
        if p.phase != Phase::Failed && installed_phase && self.primary_runs(&p)? {
            if p.sequence > self.installed()? {
                self.its.set_in(
                    self.p,
                    Namespace::Update,
                    ITS_UID_INSTALLED_SEQUENCE,
                    &p.sequence.to_le_bytes(),
                    ItsFlags::NONE,
                )?;
            }
            return self.clear_pending();
        }
        let error = match (state, p.phase) {
            (FwuState::Failed, Phase::Downloading | Phase::Installed) => {
                self.fwu.query(COMPONENT_APPLICATION)?.error
            }
            (FwuState::Ready | FwuState::Updated, Phase::Installed) => psa::ERROR_GENERIC_ERROR,
            _ => return Ok(()),
        };
        p.phase = Phase::Failed;
        p.error = if error == 0 {
            psa::ERROR_GENERIC_ERROR
        } else {
            error
        };
        self.store_pending(&p)
    }

    // --- checks ----------------------------------------------------------------------------

    /// Vendor, class and component (the shared sequence), image size and digest, expiry.
    fn check(
        &mut self,
        manifest: &AuthenticatedManifest<'_>,
        installed: u64,
        now: Option<u64>,
    ) -> Result<Checked, ServiceError> {
        let slot = self.fwu.config().layout.secondary;
        let max = self.fwu.max_size();
        let mut platform = StagedSlot::new(&mut self.p.flash, slot, 0, max, self.ids);
        let shared = Processor::new(&mut platform, installed)
            .run_shared(manifest, 0)
            .map_err(manifest_err)?;
        let size = shared
            .image_size
            .ok_or(refused(UpdateRefusal::NoImageSize))?;
        let image_size = u32::try_from(size)
            .ok()
            .filter(|s| *s <= max)
            .ok_or(refused(UpdateRefusal::ImageTooLarge { size, max }))?;
        let digest: [u8; 32] = shared
            .image_digest
            .filter(|d| d.algorithm == DigestAlgorithm::Sha256)
            .and_then(|d| d.bytes.try_into().ok())
            .ok_or(refused(UpdateRefusal::NoImageDigest))?;
        let expires = manifest.expires().map_err(manifest_err)?;
        if let (Some(expires), Some(now)) = (expires, now) {
            if now >= expires {
                return Err(refused(UpdateRefusal::Expired { expires, now }));
            }
        }
        Ok(Checked {
            image_size,
            digest,
            expires,
        })
    }

    /// Authenticates the stored envelope again and runs its update procedure over the slot.
    fn process_staged(&mut self, p: &Pending) -> Result<(), ServiceError> {
        let mut buf = [0u8; MAX_ENVELOPE_LEN];
        let len = self.load_envelope(p, &mut buf)?;
        let envelope = buf.get(..len).unwrap_or_default();
        let anchor = self.anchor()?;
        let installed = self.installed()?;
        let manifest = castellan_suit::authenticate(envelope, &[anchor]).map_err(manifest_err)?;
        if manifest.sequence_number() <= installed {
            return Err(refused(UpdateRefusal::NotNewer {
                offered: manifest.sequence_number(),
                installed,
            }));
        }
        let slot = self.fwu.config().layout.secondary;
        let max = self.fwu.max_size();
        let mut platform = StagedSlot::new(&mut self.p.flash, slot, p.image_size, max, self.ids);
        let r = Processor::new(&mut platform, installed).process(&manifest, Procedure::Update);
        match (r, platform.hal_error()) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(hal)) => Err(ServiceError::Hardware(hal)),
            (Err(e), None) => Err(manifest_err(e)),
        }
    }

    /// True when the primary slot holds the pending update's image and it is confirmed.
    fn primary_runs(&mut self, p: &Pending) -> Result<bool, ServiceError> {
        let flash = &mut self.p.flash;
        let layout = self.fwu.config().layout;
        let g = Geometry::of(flash).map_err(|_| ServiceError::BadState("flash geometry"))?;
        let trailer = read_slot_trailer(flash, &g, layout.primary).map_err(|e| match e {
            castellan_slots::BootError::Hal(h) => ServiceError::Hardware(h),
            castellan_slots::BootError::PowerLoss => {
                ServiceError::Hardware(castellan_hal::HalError::PowerLoss)
            }
            _ => ServiceError::BadState("the primary slot's trailer"),
        })?;
        if trailer.is_unconfirmed_test() || p.image_size > layout.primary.size {
            return Ok(false);
        }
        let mut h = Sha256::new();
        let mut buf = [0u8; 256];
        let mut at = 0u32;
        while at < p.image_size {
            let n = (p.image_size - at).min(buf.len() as u32);
            let chunk = buf.get_mut(..n as usize).unwrap_or_default();
            layout.primary.read(flash, at, chunk)?;
            h.update(&*chunk);
            at += n;
        }
        Ok(<[u8; 32]>::from(h.finalize()) == p.digest)
    }

    // --- helpers ----------------------------------------------------------------------------

    /// On a failed finish: the download is dropped (the caller gets `e`). A power cut is
    /// passed through untouched: the device is off.
    fn fail_download(&mut self, e: ServiceError) -> ServiceError {
        if e.is_power_loss() {
            return e;
        }
        if matches!(self.fwu.state(), FwuState::Writing | FwuState::Candidate) {
            let _ = self.fwu.cancel(COMPONENT_APPLICATION);
        }
        match self.clear_pending() {
            Err(cut) if cut.is_power_loss() => cut,
            _ => e,
        }
    }

    /// Brings the FWU component back to READY: a download or candidate is cancelled, a failed
    /// or updated one cleaned (the secondary slot erased).
    fn abandon_candidate(&mut self) -> Result<(), ServiceError> {
        if matches!(self.fwu.state(), FwuState::Writing | FwuState::Candidate) {
            self.fwu.cancel(COMPONENT_APPLICATION)?;
        }
        if matches!(self.fwu.state(), FwuState::Failed | FwuState::Updated) {
            self.fwu.clean(&mut self.p.flash, COMPONENT_APPLICATION)?;
        }
        Ok(())
    }

    fn anchor(&mut self) -> Result<TrustAnchor, ServiceError> {
        let key = read_anchor(self.its, self.p)?.ok_or(refused(UpdateRefusal::NoTrustAnchor))?;
        TrustAnchor::p256_from_uncompressed(&key)
            .ok_or(ServiceError::StorageCorrupt("the release trust anchor"))
    }

    /// The installed release's sequence number (0 before the first update).
    pub(crate) fn installed(&mut self) -> Result<u64, ServiceError> {
        let mut b = [0u8; 8];
        match self.its.get_in(
            self.p,
            Namespace::Update,
            ITS_UID_INSTALLED_SEQUENCE,
            0,
            &mut b,
        ) {
            Ok(8) => Ok(u64::from_le_bytes(b)),
            Ok(_) => Err(ServiceError::StorageCorrupt(
                "the installed sequence number",
            )),
            Err(ServiceError::DoesNotExist) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn pending(&mut self) -> Result<Option<Pending>, ServiceError> {
        if let Some(cached) = self.client.cache {
            return Ok(cached);
        }
        let mut b = [0u8; RECORD_LEN];
        let p = match self
            .its
            .get_in(self.p, Namespace::Update, ITS_UID_PENDING, 0, &mut b)
        {
            Ok(n) => Pending::decode(b.get(..n).unwrap_or_default()),
            Err(ServiceError::DoesNotExist) => None,
            Err(e) => return Err(e),
        };
        self.client.cache = Some(p);
        Ok(p)
    }

    fn store_pending(&mut self, p: &Pending) -> Result<(), ServiceError> {
        self.client.cache = None;
        self.its.set_in(
            self.p,
            Namespace::Update,
            ITS_UID_PENDING,
            &p.encode(),
            ItsFlags::NO_REPLAY_PROTECTION,
        )?;
        self.client.cache = Some(Some(*p));
        Ok(())
    }

    /// Removes the pending record first (a cut then leaves no pending update), then the
    /// envelope's parts.
    fn clear_pending(&mut self) -> Result<(), ServiceError> {
        self.client.cache = None;
        for k in 0..=MAX_ENVELOPE_PARTS as u64 {
            let uid = if k == 0 {
                ITS_UID_PENDING
            } else {
                ITS_UID_ENVELOPE + k - 1
            };
            if self.its.contains(Namespace::Update, uid) {
                self.its.remove_in(self.p, Namespace::Update, uid)?;
            }
        }
        self.client.cache = Some(None);
        Ok(())
    }

    fn part_size(&self) -> usize {
        self.its
            .config()
            .max_asset_size
            .clamp(1, crate::its::ITS_MAX_ASSET_SIZE)
    }

    fn store_envelope(&mut self, envelope: &[u8]) -> Result<(), ServiceError> {
        let part = self.part_size();
        for (k, chunk) in envelope.chunks(part).enumerate() {
            self.its.set_in(
                self.p,
                Namespace::Update,
                ITS_UID_ENVELOPE + k as u64,
                chunk,
                ItsFlags::NO_REPLAY_PROTECTION,
            )?;
        }
        Ok(())
    }

    /// Reads the pending envelope back into `buf` and checks it against its stored hash.
    fn load_envelope(
        &mut self,
        p: &Pending,
        buf: &mut [u8; MAX_ENVELOPE_LEN],
    ) -> Result<usize, ServiceError> {
        const CORRUPT: ServiceError = ServiceError::StorageCorrupt("the pending update's envelope");
        let len = p.envelope_len as usize;
        let part = self.part_size();
        let dst = buf.get_mut(..len).ok_or(CORRUPT)?;
        for (k, chunk) in dst.chunks_mut(part).enumerate() {
            let n = self.its.get_in(
                self.p,
                Namespace::Update,
                ITS_UID_ENVELOPE + k as u64,
                0,
                chunk,
            )?;
            if n != chunk.len() {
                return Err(CORRUPT);
            }
        }
        let hash: [u8; 32] = Sha256::digest(buf.get(..len).unwrap_or_default()).into();
        if hash != p.envelope_hash {
            return Err(CORRUPT);
        }
        Ok(len)
    }
}
