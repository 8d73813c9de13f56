//! The firmware update service's calls on [`SecureServices`] (`psa_fwu_*`), available when the
//! configuration names the bootloader's slots ([`crate::ServicesConfig::with_fwu`]).

use castellan_hal::{Flash, MonotonicCounter, RandomSource};

use crate::fwu::{ComponentId, ComponentInfo, Fwu, InstallStatus};
use crate::{SecureServices, ServiceError};

const NO_FWU: ServiceError = ServiceError::NotSupported("no firmware update service configured");

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SecureServices<F, C, R> {
    /// `psa_fwu_query` (see [`Fwu::query`]).
    pub fn fwu_query(&self, component: ComponentId) -> Result<ComponentInfo, ServiceError> {
        self.fwu.as_ref().ok_or(NO_FWU)?.query(component)
    }

    /// `psa_fwu_start` (see [`Fwu::start`]).
    pub fn fwu_start(
        &mut self,
        component: ComponentId,
        manifest: &[u8],
    ) -> Result<(), ServiceError> {
        self.usable()?;
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.start(&mut self.platform.flash, component, manifest)
    }

    /// `psa_fwu_write` (see [`Fwu::write`]).
    pub fn fwu_write(
        &mut self,
        component: ComponentId,
        offset: usize,
        block: &[u8],
    ) -> Result<(), ServiceError> {
        self.usable()?;
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.write(&mut self.platform.flash, component, offset, block)
    }

    /// `psa_fwu_finish` (see [`Fwu::finish`]).
    pub fn fwu_finish(&mut self, component: ComponentId) -> Result<(), ServiceError> {
        self.usable()?;
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.finish(&mut self.platform.flash, component)
    }

    /// `psa_fwu_cancel` (see [`Fwu::cancel`]).
    pub fn fwu_cancel(&mut self, component: ComponentId) -> Result<(), ServiceError> {
        self.fwu.as_mut().ok_or(NO_FWU)?.cancel(component)
    }

    /// `psa_fwu_clean` (see [`Fwu::clean`]).
    pub fn fwu_clean(&mut self, component: ComponentId) -> Result<(), ServiceError> {
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.clean(&mut self.platform.flash, component)
    }

    /// `psa_fwu_install` (see [`Fwu::install`]); `Ok(RebootRequired)` is `PSA_SUCCESS_REBOOT`.
    pub fn fwu_install(&mut self) -> Result<InstallStatus, ServiceError> {
        self.usable()?;
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.install(&mut self.platform.flash)
    }

    /// `psa_fwu_request_reboot`: recorded; see [`SecureServices::fwu_reboot_requested`].
    pub fn fwu_request_reboot(&mut self) -> Result<(), ServiceError> {
        self.fwu.as_mut().ok_or(NO_FWU)?.request_reboot()
    }

    /// True once the update client asked for a reboot (the platform then resets the device).
    pub fn fwu_reboot_requested(&self) -> bool {
        self.fwu.as_ref().is_some_and(Fwu::reboot_requested)
    }

    /// `psa_fwu_reject` (see [`Fwu::reject`]).
    pub fn fwu_reject(&mut self, error: i32) -> Result<InstallStatus, ServiceError> {
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.reject(&mut self.platform.flash, error)
    }

    /// `psa_fwu_accept` (see [`Fwu::accept`]). With the update client configured, the
    /// accepted update's manifest sequence number is then stored as the installed one.
    pub fn fwu_accept(&mut self) -> Result<(), ServiceError> {
        self.usable()?;
        let fwu = self.fwu.as_mut().ok_or(NO_FWU)?;
        fwu.accept(&mut self.platform.flash)?;
        self.update_after_accept()
    }
}
