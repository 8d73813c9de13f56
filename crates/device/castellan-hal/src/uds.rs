//! The hardware unique secret (UDS, the DICE root secret): readable by the first boot stage,
//! then locked away until the next reset.

use crate::HalError;

/// Length of the hardware unique secret in bytes.
pub const UDS_LEN: usize = 32;

/// The device's hardware unique secret.
///
/// The ROM stage reads it once to derive its CDI, then calls [`HardwareUniqueSecret::lock`]:
/// from then on [`HardwareUniqueSecret::read`] fails with [`HalError::UdsLocked`] until the
/// device is reset (power cycled). Nothing but a reset unlocks it.
pub trait HardwareUniqueSecret {
    /// Copies the secret into `out`, or fails with [`HalError::UdsLocked`] once locked.
    fn read(&self, out: &mut [u8; UDS_LEN]) -> Result<(), HalError>;

    /// Locks the secret until the next reset.
    fn lock(&mut self);

    /// True once locked (until the next reset).
    fn is_locked(&self) -> bool;
}

impl<U: HardwareUniqueSecret + ?Sized> HardwareUniqueSecret for &mut U {
    fn read(&self, out: &mut [u8; UDS_LEN]) -> Result<(), HalError> {
        U::read(self, out)
    }
    fn lock(&mut self) {
        U::lock(self)
    }
    fn is_locked(&self) -> bool {
        U::is_locked(self)
    }
}
