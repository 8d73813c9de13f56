//! The candidate's way into the secondary slot: sequential writes with a partial write unit
//! kept in RAM, a download resumed at a sector boundary after a reboot, and the candidate's
//! verification (signature and anti-rollback) before it may be installed.

use castellan_hal::Flash;
use castellan_image::{ImageError, Version, verify};
use castellan_slots::{DowngradePolicy, SlotReader};

use crate::ServiceError;

use super::Fwu;
use super::model::FwuState;

impl Fwu {
    /// READY → WRITING without erasing what the secondary slot holds before `offset`: the
    /// update client resumes a download interrupted by a reboot. `offset` must be a multiple
    /// of the sector size (the client records progress only at sector boundaries, so every
    /// byte before it was written completely); `offset..end` rounded up to whole sectors is
    /// erased again, since a cut may have left a torn write anywhere after it.
    pub(crate) fn resume<F: Flash>(
        &mut self,
        flash: &mut F,
        offset: u32,
        end: u32,
    ) -> Result<(), ServiceError> {
        self.expect(&[FwuState::Ready])?;
        let sector = flash.erase_size() as u32;
        if sector == 0 || offset % sector != 0 || offset > end || end > self.max_size {
            return Err(ServiceError::InvalidArgument(
                "a download resumes at a sector boundary inside the image",
            ));
        }
        let slot = self.config.layout.secondary;
        let stop = end.div_ceil(sector).saturating_mul(sector).min(slot.size);
        if stop > offset {
            slot.erase(flash, offset, stop)?;
        }
        self.state = FwuState::Writing;
        self.error = 0;
        self.written = offset;
        self.flushed = offset;
        self.candidate = None;
        Ok(())
    }

    /// Writes the pending partial write unit of the image (padded with the erased value), so
    /// that the whole image can be read back from the slot before `finish`.
    pub(crate) fn flush_pending<F: Flash>(&mut self, flash: &mut F) -> Result<(), ServiceError> {
        self.expect(&[FwuState::Writing])?;
        let r = self.flush(flash);
        self.fail_on_error(r)
    }

    /// Writes whole units of `block` (after the pending tail) and keeps the rest in the tail.
    pub(super) fn store<F: Flash>(
        &mut self,
        flash: &mut F,
        mut block: &[u8],
    ) -> Result<(), ServiceError> {
        let ws = flash.write_size();
        let slot = self.config.layout.secondary;
        let pending = self.written.saturating_sub(self.flushed) as usize;
        if pending > 0 {
            let take = (ws - pending).min(block.len());
            let (head, rest) = block.split_at(take);
            self.tail
                .get_mut(pending..pending + take)
                .ok_or(ServiceError::Crypto("tail"))?
                .copy_from_slice(head);
            block = rest;
            if pending + take < ws {
                return Ok(());
            }
            let unit = self.tail.get(..ws).ok_or(ServiceError::Crypto("tail"))?;
            slot.write(flash, self.flushed, unit)?;
            self.flushed += ws as u32;
        }
        let whole = block.len() / ws * ws;
        let (aligned, rest) = block.split_at(whole);
        if !aligned.is_empty() {
            slot.write(flash, self.flushed, aligned)?;
            self.flushed += whole as u32;
        }
        self.tail
            .get_mut(..rest.len())
            .ok_or(ServiceError::Crypto("tail"))?
            .copy_from_slice(rest);
        Ok(())
    }

    /// Writes the pending partial unit, padded with the erased value.
    pub(super) fn flush<F: Flash>(&mut self, flash: &mut F) -> Result<(), ServiceError> {
        let ws = flash.write_size();
        let pending = self.written.saturating_sub(self.flushed) as usize;
        if pending == 0 {
            return Ok(());
        }
        let erased = flash.erased_value();
        let unit = self
            .tail
            .get_mut(..ws)
            .ok_or(ServiceError::Crypto("tail"))?;
        unit.get_mut(pending..).unwrap_or_default().fill(erased);
        self.config
            .layout
            .secondary
            .write(flash, self.flushed, unit)?;
        self.flushed += ws as u32;
        Ok(())
    }

    /// Verifies the image in the secondary slot; returns its version.
    pub(super) fn verify_candidate<F: Flash>(
        &self,
        flash: &mut F,
    ) -> Result<Version, ServiceError> {
        let mut src = SlotReader::with_len(flash, self.config.layout.secondary, self.max_size);
        let r = verify(&mut src, self.config.key);
        let image = match (r, src.hal_error()) {
            (Ok(image), _) => image,
            (Err(ImageError::Read), Some(hal)) => return Err(ServiceError::Hardware(hal)),
            (Err(e), _) => return Err(ServiceError::CandidateRejected(e)),
        };
        let version = image.version();
        match self.running_counter {
            // The security counter decides: a lower version with a counter not below the
            // running image's is a rollback the release authority allowed.
            Some(floor) if self.config.downgrade == DowngradePolicy::SecurityCounter => {
                if image.security_counter.unwrap_or(0) < floor {
                    return Err(ServiceError::NotPermitted(
                        "the candidate's security counter is below the running image's                          (anti-rollback)",
                    ));
                }
            }
            _ => {
                if version < self.running {
                    return Err(ServiceError::NotPermitted(
                        "the candidate is older than the running image (downgrade)",
                    ));
                }
            }
        }
        Ok(version)
    }
}
