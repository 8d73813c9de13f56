//! The SUIT [`Platform`] the update client runs manifests on: the staged candidate in the
//! secondary slot, already received through `update_write`.
//!
//! ```text
//!  processor ── fetch(uri) ───────▶ reads the staged bytes back (never more than were received)
//!            ── write_component ──▶ compares with the slot instead of writing
//!            ── image-match ──────▶ reads the slot again
//! ```
//!
//! So the processor's transfer rules (hashed while streamed, refused past the image size,
//! committed only when size and digest match) are the one place where the payload is checked,
//! whatever transport delivered it.

use castellan_hal::{Flash, HalError, Partition};
use castellan_suit::{Component, ComponentId, Identifier, Platform, PlatformError};

use super::{COMPONENT, UpdateConfig};

/// The staged candidate as a SUIT component.
pub(crate) struct StagedSlot<'f, F> {
    flash: &'f mut F,
    slot: Partition,
    /// Bytes received.
    len: u32,
    /// Largest image the slot takes.
    capacity: u32,
    ids: UpdateConfig,
    /// The first flash error (a power cut must be reported as one, not as a bad payload).
    hal_error: Option<HalError>,
}

impl<'f, F: Flash> StagedSlot<'f, F> {
    pub(crate) fn new(
        flash: &'f mut F,
        slot: Partition,
        len: u32,
        capacity: u32,
        ids: UpdateConfig,
    ) -> Self {
        StagedSlot {
            flash,
            slot,
            len,
            capacity,
            ids,
            hal_error: None,
        }
    }

    /// The first flash error seen, if any.
    pub(crate) fn hal_error(&self) -> Option<HalError> {
        self.hal_error
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        let Ok(offset) = u32::try_from(offset) else {
            return Ok(0);
        };
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf.len().min((self.len - offset) as usize);
        let dst = buf.get_mut(..n).ok_or(PlatformError::ContractViolation)?;
        match self.slot.read(self.flash, offset, dst) {
            Ok(()) => Ok(n),
            Err(e) => {
                self.hal_error.get_or_insert(e);
                Err(PlatformError::Storage)
            }
        }
    }
}

impl<F: Flash> Platform for StagedSlot<'_, F> {
    fn has_component(&self, id: &ComponentId<'_>) -> bool {
        id.is(&COMPONENT)
    }

    fn identifier_matches(&self, _component: &Component<'_>, id: Identifier<'_>) -> bool {
        match id {
            Identifier::VendorUuid(v) => v == self.ids.vendor_id.as_slice(),
            Identifier::Class(c) => c == self.ids.class_id.as_slice(),
            _ => false,
        }
    }

    fn capacity(&self, _component: &Component<'_>) -> u64 {
        u64::from(self.capacity)
    }

    fn read_component(
        &mut self,
        _component: &Component<'_>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError> {
        self.read(offset, buf)
    }

    /// Nothing to prepare: the bytes are in the slot already.
    fn begin_write(&mut self, _component: &Component<'_>) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Compares instead of writing: the fetched bytes are the slot's, so they must be equal.
    fn write_component(
        &mut self,
        _component: &Component<'_>,
        offset: u64,
        data: &[u8],
    ) -> Result<(), PlatformError> {
        let mut buf = [0u8; 64];
        let mut done = 0usize;
        while done < data.len() {
            let want = (data.len() - done).min(buf.len());
            let at = offset.saturating_add(done as u64);
            let got = self.read(at, buf.get_mut(..want).unwrap_or_default())?;
            let same = match (buf.get(..got), data.get(done..done + got)) {
                (Some(a), Some(b)) => got == want && a == b,
                _ => false,
            };
            if !same {
                return Err(PlatformError::Storage);
            }
            done += got;
        }
        Ok(())
    }

    fn commit_write(&mut self, _component: &Component<'_>, _len: u64) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Any URI: the transport that delivered the bytes is untrusted and does not matter.
    fn fetch(&mut self, _uri: &str, offset: u64, buf: &mut [u8]) -> Result<usize, PlatformError> {
        self.read(offset, buf)
    }

    fn invoke(
        &mut self,
        _component: &Component<'_>,
        _args: Option<&[u8]>,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported)
    }
}
