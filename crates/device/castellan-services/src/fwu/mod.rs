//! Firmware update service after PSA Firmware Update 1.0, over the bootloader's slots
//! (`castellan-boot`): the update client writes a signed MCUboot image into the secondary
//! slot, the service verifies it and requests its installation, the bootloader swaps it in for
//! a trial run at the next reboot, and the running image is accepted (confirmed) or, if it is
//! not, reverted by the bootloader at the next reset.
//!
//! ```text
//!  READY ─start─▶ WRITING ─write…─▶ WRITING ─finish (verify)─▶ CANDIDATE ─install (verify)─▶ STAGED
//!    ▲              │cancel                                      │cancel                      │reject
//!    │clean         ▼                                            ▼                            ▼
//!  FAILED ◀──────────────────────────────────────────────────── FAILED ◀─────────────────── FAILED
//!    ▲  ▲                                                                                    │reboot
//!    │  └── reboot: bootloader refused the candidate ◀───────────────────────────────────────┤
//!    │                                                                                       ▼
//!    └── reboot: rollback ◀── REJECTED ◀─reject── TRIAL ◀── reboot: test swap ────────────────┘
//!                                                   │accept (confirm image_ok)
//!                                                   ▼
//!                                                UPDATED ─clean─▶ READY
//! ```
//!
//! One component, [`COMPONENT_APPLICATION`] (the primary slot). States that depend on a reboot
//! are derived at start-up from the bootloader's report ([`LastBoot`]) and the slot trailers;
//! WRITING and CANDIDATE do not survive a reboot (PSA allows a reboot to act as cancel + clean:
//! the next `start` erases the slot anyway). Writes are sequential; a block may have any
//! length, a partial write unit is kept in RAM until the next block or `finish`.
//!
//! The candidate is verified (signature with the configured key, and no downgrade: below the
//! running version, or under [`DowngradePolicy::SecurityCounter`] below the running image's
//! security counter) at `finish` and again at `install`, right before the request is written:
//! the secondary slot may be writable by the non-secure world in between. The bootloader
//! verifies it a third time before it swaps anything, and checks the anti-rollback counter.
//!
//! `model` holds the states, the configuration and the boot outcome the service starts from;
//! `staging` the sequential write path into the secondary slot and the candidate's checks.

use castellan_hal::Flash;
use castellan_image::{ImageLayout, Version, verify};
use castellan_slots::{
    BootError, DowngradePolicy, Geometry, SlotReader, UpgradeRefusal, confirm_image,
    read_slot_trailer, request_upgrade,
};

use crate::{ServiceError, psa};

mod model;
mod staging;

use model::MAX_UNIT;
pub use model::*;

/// The update service of one component.
#[derive(Debug)]
pub struct Fwu {
    config: FwuConfig,
    state: FwuState,
    error: i32,
    running: Version,
    /// The running image's security counter (no counter: 0); `None` when the policy is
    /// [`DowngradePolicy::Version`] or the running image does not verify.
    running_counter: Option<u32>,
    candidate: Option<Version>,
    max_size: u32,
    /// Bytes of the image received so far.
    written: u32,
    /// Bytes written to flash (a multiple of the write size); `written - flushed` are in `tail`.
    flushed: u32,
    tail: [u8; MAX_UNIT],
    reboot_requested: bool,
}

impl Fwu {
    /// Starts the service after a boot: derives the state from `last_boot` and the primary
    /// slot's trailer (an unconfirmed test image means TRIAL whatever the report says).
    pub fn new<F: Flash>(
        config: FwuConfig,
        last_boot: LastBoot,
        flash: &mut F,
    ) -> Result<Self, ServiceError> {
        let g = config
            .layout
            .validate(flash, config.trial)
            .map_err(boot_error)?;
        if g.write as usize > MAX_UNIT {
            return Err(ServiceError::NotSupported(
                "flash write sizes above 64 bytes",
            ));
        }
        let max_size = config
            .layout
            .secondary
            .size
            .saturating_sub(g.trailer_reserved());
        let trial = read_slot_trailer(flash, &g, config.layout.primary)
            .map_err(boot_error)?
            .is_unconfirmed_test();
        let (state, error) = match last_boot {
            _ if trial => (FwuState::Trial, 0),
            LastBoot::Trial | LastBoot::Nothing => (FwuState::Ready, 0),
            LastBoot::Installed => (FwuState::Updated, 0),
            LastBoot::RolledBack => (FwuState::Failed, ROLLED_BACK),
            LastBoot::Refused(status) => (FwuState::Failed, status),
        };
        let mut src = SlotReader::new(flash, config.layout.primary);
        let running = ImageLayout::read(&mut src)
            .map(|l| l.header.version)
            .unwrap_or_default();
        // The running image was verified by the bootloader; its counter is at least the OTP
        // counter (or nothing would boot), and what the OTP counter becomes once it is
        // confirmed.
        let running_counter = match config.downgrade {
            DowngradePolicy::Version => None,
            DowngradePolicy::SecurityCounter => {
                let len = config
                    .layout
                    .primary
                    .size
                    .saturating_sub(g.trailer_reserved());
                let mut src = SlotReader::with_len(flash, config.layout.primary, len);
                let verified = verify(&mut src, config.key);
                if let Some(hal) = src.hal_error() {
                    return Err(ServiceError::Hardware(hal));
                }
                verified.ok().map(|v| v.security_counter.unwrap_or(0))
            }
        };
        Ok(Fwu {
            config,
            state,
            error,
            running,
            running_counter,
            candidate: None,
            max_size,
            written: 0,
            flushed: 0,
            tail: [0; MAX_UNIT],
            reboot_requested: false,
        })
    }

    /// The component's state.
    pub fn state(&self) -> FwuState {
        self.state
    }

    /// Bytes of the image received so far in WRITING (the next block's offset).
    pub fn written(&self) -> u32 {
        self.written
    }

    /// Largest image the secondary slot takes.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    /// The bootloader's layout and key this service works with.
    pub fn config(&self) -> &FwuConfig {
        &self.config
    }

    /// `psa_fwu_query`.
    pub fn query(&self, component: ComponentId) -> Result<ComponentInfo, ServiceError> {
        check_component(component)?;
        Ok(ComponentInfo {
            state: self.state,
            error: self.error,
            version: self.running,
            max_size: self.max_size,
            flags: 0,
            candidate_version: self.candidate,
        })
    }

    /// `psa_fwu_start`: READY → WRITING, erasing the secondary slot. Castellan images carry
    /// their own manifest (MCUboot header and TLVs), so `manifest` must be empty.
    pub fn start<F: Flash>(
        &mut self,
        flash: &mut F,
        component: ComponentId,
        manifest: &[u8],
    ) -> Result<(), ServiceError> {
        check_component(component)?;
        self.expect(&[FwuState::Ready])?;
        if !manifest.is_empty() {
            return Err(ServiceError::NotSupported(
                "detached manifests (an MCUboot image carries its own)",
            ));
        }
        let r = self.config.layout.secondary.erase_all(flash);
        self.fail_on_error(r.map_err(ServiceError::from))?;
        self.state = FwuState::Writing;
        self.error = 0;
        self.written = 0;
        self.flushed = 0;
        self.candidate = None;
        Ok(())
    }

    /// `psa_fwu_write`: the next `block` of the image, at `offset` (the bytes written so far:
    /// blocks come in order). The image must fit in `max_size`.
    pub fn write<F: Flash>(
        &mut self,
        flash: &mut F,
        component: ComponentId,
        offset: usize,
        block: &[u8],
    ) -> Result<(), ServiceError> {
        check_component(component)?;
        self.expect(&[FwuState::Writing])?;
        if block.is_empty() {
            return Err(ServiceError::InvalidArgument("the block is empty"));
        }
        if self.flushed > self.written {
            return Err(ServiceError::BadState(
                "the image's last write unit was flushed: no more blocks are accepted",
            ));
        }
        if offset != self.written as usize {
            return Err(ServiceError::InvalidArgument(
                "blocks must be written in order: offset must equal the bytes written so far",
            ));
        }
        let end = offset
            .checked_add(block.len())
            .filter(|e| *e <= self.max_size as usize)
            .ok_or(ServiceError::InvalidArgument(
                "the image does not fit in the slot",
            ))?;
        let r = self.store(flash, block);
        self.fail_on_error(r)?;
        self.written = end as u32;
        Ok(())
    }

    /// `psa_fwu_finish`: WRITING → CANDIDATE once the image verifies (else FAILED).
    pub fn finish<F: Flash>(
        &mut self,
        flash: &mut F,
        component: ComponentId,
    ) -> Result<(), ServiceError> {
        check_component(component)?;
        self.expect(&[FwuState::Writing])?;
        let r = self.flush(flash);
        self.fail_on_error(r)?;
        let version = self.verify_candidate(flash);
        let version = self.fail_on_error(version)?;
        self.candidate = Some(version);
        self.state = FwuState::Candidate;
        Ok(())
    }

    /// `psa_fwu_cancel`: WRITING or CANDIDATE → FAILED.
    pub fn cancel(&mut self, component: ComponentId) -> Result<(), ServiceError> {
        check_component(component)?;
        self.expect(&[FwuState::Writing, FwuState::Candidate])?;
        self.state = FwuState::Failed;
        self.error = 0;
        Ok(())
    }

    /// `psa_fwu_clean`: FAILED or UPDATED → READY, erasing the secondary slot (the failed
    /// candidate, or the previous image kept for a rollback).
    pub fn clean<F: Flash>(
        &mut self,
        flash: &mut F,
        component: ComponentId,
    ) -> Result<(), ServiceError> {
        check_component(component)?;
        self.expect(&[FwuState::Failed, FwuState::Updated])?;
        self.config.layout.secondary.erase_all(flash)?;
        self.state = FwuState::Ready;
        self.error = 0;
        self.candidate = None;
        Ok(())
    }

    /// `psa_fwu_install`: verifies the candidate again, then asks the bootloader to install
    /// it at the next reboot (test swap when `trial`): CANDIDATE → STAGED, and
    /// [`InstallStatus::RebootRequired`]. A candidate that does not verify goes to FAILED.
    pub fn install<F: Flash>(&mut self, flash: &mut F) -> Result<InstallStatus, ServiceError> {
        if matches!(
            self.state,
            FwuState::Staged | FwuState::Trial | FwuState::Rejected
        ) {
            return Err(ServiceError::BadState(
                "an installation is already in progress",
            ));
        }
        self.expect(&[FwuState::Candidate])?;
        let version = self.verify_candidate(flash);
        self.fail_on_error(version)?;
        let r = request_upgrade(flash, &self.config.layout, !self.config.trial).map_err(boot_error);
        self.fail_on_error(r)?;
        self.state = FwuState::Staged;
        Ok(InstallStatus::RebootRequired)
    }

    /// `psa_fwu_request_reboot`: records the request; the platform (the call gate's owner)
    /// reboots when [`Fwu::reboot_requested`] says so.
    pub fn request_reboot(&mut self) -> Result<(), ServiceError> {
        self.reboot_requested = true;
        Ok(())
    }

    /// True once `request_reboot` was called.
    pub fn reboot_requested(&self) -> bool {
        self.reboot_requested
    }

    /// `psa_fwu_reject`: STAGED → FAILED (the request is withdrawn: the secondary slot's
    /// trailer sector is erased), or TRIAL → REJECTED ([`InstallStatus::RebootRequired`]: the
    /// bootloader reverts the unconfirmed image at the next reboot). `error` is recorded.
    pub fn reject<F: Flash>(
        &mut self,
        flash: &mut F,
        error: i32,
    ) -> Result<InstallStatus, ServiceError> {
        match self.state {
            FwuState::Staged => {
                let g = Geometry::of(flash).map_err(boot_error)?;
                let slot = self.config.layout.secondary;
                let last = slot.size.saturating_sub(g.sector);
                slot.erase(flash, last, slot.size)?;
                self.state = FwuState::Failed;
                self.error = error;
                Ok(InstallStatus::Done)
            }
            FwuState::Trial => {
                self.state = FwuState::Rejected;
                self.error = error;
                Ok(InstallStatus::RebootRequired)
            }
            _ => Err(ServiceError::BadState(
                "nothing to reject: no installation is staged or on trial",
            )),
        }
    }

    /// `psa_fwu_accept`: TRIAL → UPDATED, confirming the running image (image_ok) so the
    /// bootloader keeps it and raises the anti-rollback counter at the next boot.
    pub fn accept<F: Flash>(&mut self, flash: &mut F) -> Result<(), ServiceError> {
        self.expect(&[FwuState::Trial])?;
        confirm_image(flash, &self.config.layout).map_err(boot_error)?;
        self.state = FwuState::Updated;
        Ok(())
    }

    fn expect(&self, states: &[FwuState]) -> Result<(), ServiceError> {
        if states.contains(&self.state) {
            Ok(())
        } else {
            Err(ServiceError::BadState(
                "the update component is not in a state that allows this call",
            ))
        }
    }

    /// On error, the component goes to FAILED with the error's status (power loss excepted:
    /// the device is off and the state is derived again at the next boot).
    fn fail_on_error<T>(&mut self, r: Result<T, ServiceError>) -> Result<T, ServiceError> {
        if let Err(e) = &r {
            if !e.is_power_loss() {
                self.state = FwuState::Failed;
                self.error = e.psa_status();
            }
        }
        r
    }
}

/// The `error` recorded when a trial image was rolled back.
pub(crate) const ROLLED_BACK: i32 = psa::ERROR_GENERIC_ERROR;

fn check_component(component: ComponentId) -> Result<(), ServiceError> {
    if component == COMPONENT_APPLICATION {
        Ok(())
    } else {
        Err(ServiceError::DoesNotExist)
    }
}

/// The PSA status that best names why the bootloader refused a candidate.
fn refusal_status(r: &UpgradeRefusal) -> i32 {
    match r {
        UpgradeRefusal::Invalid(e) => ServiceError::CandidateRejected(*e).psa_status(),
        UpgradeRefusal::TooLarge { .. } => psa::ERROR_INSUFFICIENT_STORAGE,
        _ => psa::ERROR_NOT_PERMITTED,
    }
}

/// A boot-crate error as a service error.
fn boot_error(e: BootError) -> ServiceError {
    match e {
        BootError::PowerLoss => ServiceError::Hardware(castellan_hal::HalError::PowerLoss),
        BootError::Hal(h) => ServiceError::Hardware(h),
        BootError::Layout(why) => ServiceError::BadState(why),
        _ => ServiceError::BadState("the bootloader's slots are not usable"),
    }
}
