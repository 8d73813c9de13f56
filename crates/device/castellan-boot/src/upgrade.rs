//! Upgrade decisions: resume an interrupted swap, install (swap or overwrite) a verified
//! candidate from the secondary slot, refuse and mark a bad one, or revert an unconfirmed test
//! image. Follows MCUboot's swap types; the decision table is in the crate doc.

use castellan_hal::{Flash, OtpFuses};
use castellan_image::trailer::SwapType;
use castellan_image::{ImageError, TrustedKey, VerifiedImage};

use crate::flashio::{copy, used_end, verify_slot};
use crate::journal::{self, JournalState};
use crate::otp_map::{CounterId, read_security_counter, security_counter_max};
use crate::swap::{self, entries_for};
use castellan_slots::BootError;
use castellan_slots::{DowngradePolicy, InstallKind, UpgradeAction, UpgradeRefusal};
use castellan_slots::{FlashLayout, Geometry, align_up};
use castellan_slots::{data_end, erase_sector};
use castellan_slots::{mark_request, read_slot_trailer, write_trailer};

/// How upgrades are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpgradeMode {
    /// Swap the slots (needs a scratch and a status partition): test, confirm, revert.
    #[default]
    Swap,
    /// Copy the secondary slot over the primary: permanent, no revert.
    OverwriteOnly,
}

/// How a swap of type `kind` installs its image.
fn install_kind(kind: SwapType) -> InstallKind {
    match kind {
        SwapType::Perm => InstallKind::Permanent,
        SwapType::Revert => InstallKind::Revert,
        _ => InstallKind::Test,
    }
}

/// Everything the upgrade code needs.
pub(crate) struct Ctx<'a, F, O> {
    pub flash: &'a mut F,
    pub otp: &'a mut O,
    pub layout: &'a FlashLayout,
    pub g: Geometry,
    pub key: TrustedKey<'a>,
    pub downgrade: DowngradePolicy,
}

impl<F: Flash, O: OtpFuses> Ctx<'_, F, O> {
    /// Checks the image in the secondary slot as an upgrade (`upgrade`: with downgrade
    /// prevention against the running image under [`DowngradePolicy::Version`]) or as a revert
    /// target. The security counter is checked against the OTP counter in every case.
    fn check_secondary(
        &mut self,
        upgrade: bool,
    ) -> Result<Result<VerifiedImage, UpgradeRefusal>, BootError> {
        let cand = match verify_slot(self.flash, self.layout.secondary, &self.g, self.key)? {
            Ok(v) => v,
            Err(ImageError::TooLargeForSlot { needed, slot_size }) => {
                return Ok(Err(UpgradeRefusal::TooLarge { needed, slot_size }));
            }
            Err(e) => return Ok(Err(UpgradeRefusal::Invalid(e))),
        };
        let counter = cand.security_counter.unwrap_or(0);
        let stored = read_security_counter(self.otp, CounterId::Application)?;
        let max = security_counter_max(self.otp)?;
        if counter > max {
            return Ok(Err(UpgradeRefusal::CounterTooLarge {
                candidate: counter,
                max,
            }));
        }
        if counter < stored {
            return Ok(Err(UpgradeRefusal::Rollback {
                candidate: counter,
                stored,
            }));
        }
        if upgrade && self.downgrade == DowngradePolicy::Version {
            // A primary slot that does not verify (e.g. an overwrite cut half-way) has no
            // version to protect; the security counter still applies.
            if let Ok(cur) = verify_slot(self.flash, self.layout.primary, &self.g, self.key)? {
                if cand.version() < cur.version() {
                    return Ok(Err(UpgradeRefusal::Downgrade {
                        candidate: cand.version(),
                        current: cur.version(),
                    }));
                }
            }
        }
        Ok(Ok(cand))
    }

    /// Swap mode: resume, install, refuse or revert.
    pub(crate) fn swap_mode(&mut self) -> Result<UpgradeAction, BootError> {
        let status = self
            .layout
            .status
            .ok_or(BootError::Layout("no status partition"))?;
        let sectors = self.layout.slot_sectors(&self.g);
        if let JournalState::InProgress {
            kind,
            entries,
            next,
        } = journal::read(self.flash, &self.g, status, sectors)?
        {
            swap::run(self.flash, self.layout, &self.g, kind, entries, next)?;
            return Ok(UpgradeAction::Installed {
                kind: install_kind(kind),
                resumed: true,
            });
        }
        let (pri, sec) = (self.layout.primary, self.layout.secondary);
        let st = read_slot_trailer(self.flash, &self.g, sec)?;
        if st.is_upgrade_request() {
            let kind = if st.image_ok == castellan_image::trailer::FlagState::Set {
                SwapType::Perm
            } else {
                SwapType::Test
            };
            return match self.check_secondary(true)? {
                Ok(cand) => {
                    let end = cand.layout.end().max(used_end(self.flash, pri, &self.g)?);
                    let entries = entries_for(end, &self.g, sectors);
                    swap::start(self.flash, self.layout, &self.g, kind, entries)?;
                    Ok(UpgradeAction::Installed {
                        kind: install_kind(kind),
                        resumed: false,
                    })
                }
                Err(refusal) => {
                    mark_request(self.flash, &self.g, sec, SwapType::Fail)?;
                    Ok(UpgradeAction::Refused(refusal))
                }
            };
        }
        let pt = read_slot_trailer(self.flash, &self.g, pri)?;
        if pt.is_unconfirmed_test() {
            return match self.check_secondary(false)? {
                Ok(prev) => {
                    let end = prev.layout.end().max(used_end(self.flash, pri, &self.g)?);
                    let entries = entries_for(end, &self.g, sectors);
                    swap::start(self.flash, self.layout, &self.g, SwapType::Revert, entries)?;
                    Ok(UpgradeAction::Installed {
                        kind: InstallKind::Revert,
                        resumed: false,
                    })
                }
                Err(refusal) => Ok(UpgradeAction::RevertRefused(refusal)),
            };
        }
        Ok(UpgradeAction::None)
    }

    /// Overwrite-only mode: verify the candidate, copy it over the primary slot, verify the
    /// copy, confirm it, then consume the request and erase the secondary image.
    ///
    /// Every step can be redone after a power cut: the request stays in the secondary slot
    /// until the primary holds a verified, confirmed copy (recognised by digest, so the copy
    /// is not redone).
    pub(crate) fn overwrite_mode(&mut self) -> Result<UpgradeAction, BootError> {
        let (pri, sec) = (self.layout.primary, self.layout.secondary);
        let g = self.g;
        let st = read_slot_trailer(self.flash, &g, sec)?;
        if !st.is_upgrade_request() {
            return Ok(UpgradeAction::None);
        }
        let cand = match self.check_secondary(true)? {
            Ok(c) => c,
            Err(refusal) => {
                mark_request(self.flash, &g, sec, SwapType::Fail)?;
                return Ok(UpgradeAction::Refused(refusal));
            }
        };
        let pt = read_slot_trailer(self.flash, &g, pri)?;
        let installed = pt.magic == castellan_image::trailer::MagicState::Good
            && pt.image_ok == castellan_image::trailer::FlagState::Set
            && pt.copy_done == castellan_image::trailer::FlagState::Set
            && matches!(verify_slot(self.flash, pri, &g, self.key)?,
                        Ok(p) if p.digest == cand.digest);
        let sectors = self.layout.slot_sectors(&g);
        let end = cand.layout.end();
        let used = end.div_ceil(g.sector).min(sectors);
        if !installed {
            for i in 0..used {
                erase_sector(self.flash, &g, pri, i)?;
            }
            if used < sectors {
                erase_sector(self.flash, &g, pri, sectors - 1)?;
            }
            let len = align_up(end, g.write).min(data_end(pri, &g));
            copy(self.flash, &g, (sec, 0), (pri, 0), len)?;
            match verify_slot(self.flash, pri, &g, self.key)? {
                Ok(p) if p.digest == cand.digest => {}
                Ok(_) => return Err(BootError::CopyVerifyFailed(ImageError::HashMismatch)),
                Err(e) => return Err(BootError::CopyVerifyFailed(e)),
            }
            write_trailer(self.flash, &g, pri, SwapType::Perm, used * g.sector, true)?;
        }
        // Consume the request first (it survives a cut in the erases below), then erase the
        // old candidate, keeping the trailer sector that holds the mark.
        mark_request(self.flash, &g, sec, SwapType::None)?;
        for i in 0..used.min(sectors - 1) {
            erase_sector(self.flash, &g, sec, i)?;
        }
        Ok(UpgradeAction::Installed {
            kind: InstallKind::Overwrite,
            resumed: installed,
        })
    }
}
