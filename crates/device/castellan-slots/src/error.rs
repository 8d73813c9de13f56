//! Why a boot stopped, or a slot, trailer or layout operation failed ([`BootError`]): one error
//! type for the boot chain and the running image's side of it, so that castellan-boot's API
//! (which re-exports it) and castellan-slots' agree. Why an upgrade was not installed is
//! [`crate::UpgradeRefusal`].

use core::fmt;

use castellan_dice::DiceError;
use castellan_hal::HalError;
use castellan_image::ImageError;

use crate::Lifecycle;

/// Why the device did not boot.
///
/// [`BootError::PowerLoss`] is not a verdict: the device lost power and simply boots again
/// (the bootloader resumes whatever it was doing). Every other variant is a refusal: nothing
/// was handed control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootError {
    /// Power was lost during the boot; the device is off and must be power cycled.
    PowerLoss,
    /// A hardware operation failed for another reason than power loss.
    Hal(HalError),
    /// The flash layout or the OTP bank cannot hold what the boot code needs (the text says
    /// which rule is broken).
    Layout(&'static str),
    /// The lifecycle is decommissioned: nothing boots any more.
    Decommissioned,
    /// No root-key hash is programmed in OTP: there is nothing to verify the bootloader with.
    RootKeyNotProvisioned {
        /// The lifecycle state the device is in.
        lifecycle: Lifecycle,
    },
    /// The device is secured but its key fuses are not locked: someone could still program them.
    KeysNotLocked,
    /// The ROM stage refused the bootloader image.
    BootloaderRejected(ImageError),
    /// The bootloader image's security counter is below the one burnt in OTP.
    BootloaderRollback {
        /// The image's security counter (0 when it has none).
        image: u32,
        /// The counter in OTP.
        stored: u32,
    },
    /// The image in the primary slot is not valid: nothing authorised to boot.
    PrimaryRejected(ImageError),
    /// The image in the primary slot is validly signed but older than the confirmed security
    /// counter (an old image put back in place).
    PrimaryRollback {
        /// The image's security counter (0 when it has none).
        image: u32,
        /// The counter in OTP.
        stored: u32,
    },
    /// An image copied by an overwrite-only upgrade does not verify after the copy.
    CopyVerifyFailed(ImageError),
    /// The swap status journal is too small for the swap that must be recorded.
    StatusFull,
    /// The DICE derivation failed.
    Dice(DiceError),
}

impl BootError {
    /// True when the boot stopped because of a power cut (boot again to continue).
    pub const fn is_power_loss(&self) -> bool {
        matches!(self, BootError::PowerLoss)
    }

    /// Why the boot stopped, in a fixed phrase without figures, for a stage that reports
    /// refusals without any formatting code (the ROM stage); the image's own reason is
    /// [`BootError::image_error`]'s [`ImageError::reason`]. [`fmt::Display`] gives everything.
    pub const fn reason(&self) -> &'static str {
        match self {
            BootError::PowerLoss => "power lost during boot; boot again to resume",
            BootError::Hal(_) => "hardware error",
            BootError::Layout(rule) => rule,
            BootError::Decommissioned => {
                "device is decommissioned (lifecycle 0x6000): nothing boots"
            }
            BootError::RootKeyNotProvisioned { .. } => {
                "no root-key hash in OTP: the bootloader cannot be verified"
            }
            BootError::KeysNotLocked => {
                "device is secured but its key fuses are not locked: refusing to trust them"
            }
            BootError::BootloaderRejected(_) => "ROM refused the bootloader image",
            BootError::BootloaderRollback { .. } => {
                "ROM refused the bootloader: its security counter is below the burnt counter"
            }
            BootError::PrimaryRejected(_) => "bootloader refused the primary slot image",
            BootError::PrimaryRollback { .. } => {
                "bootloader refused the primary slot image: its security counter is below the confirmed counter (rollback)"
            }
            BootError::CopyVerifyFailed(_) => {
                "the image copied into the primary slot does not verify"
            }
            BootError::StatusFull => "the swap status journal has no room left for this swap",
            BootError::Dice(_) => "the DICE derivation failed",
        }
    }

    /// The image's refusal behind this one, if an image was refused.
    pub const fn image_error(&self) -> Option<&ImageError> {
        match self {
            BootError::BootloaderRejected(e)
            | BootError::PrimaryRejected(e)
            | BootError::CopyVerifyFailed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HalError> for BootError {
    fn from(e: HalError) -> Self {
        if e.is_power_loss() {
            BootError::PowerLoss
        } else {
            BootError::Hal(e)
        }
    }
}

impl From<DiceError> for BootError {
    fn from(e: DiceError) -> Self {
        BootError::Dice(e)
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Hal(e) => write!(f, "hardware error: {e}"),
            BootError::Layout(rule) => write!(f, "invalid flash or OTP layout: {rule}"),
            BootError::RootKeyNotProvisioned { lifecycle } => write!(
                f,
                "no root-key hash in OTP (lifecycle {lifecycle}): the bootloader cannot be verified"
            ),
            BootError::BootloaderRollback { image, stored } => write!(
                f,
                "ROM refused the bootloader: security counter {image} is below the burnt counter {stored}"
            ),
            BootError::PrimaryRollback { image, stored } => write!(
                f,
                "bootloader refused the primary slot image: security counter {image} is below the confirmed counter {stored} (rollback)"
            ),
            BootError::Dice(e) => write!(f, "{e}"),
            _ => match self.image_error() {
                Some(e) => write!(f, "{}: {e}", self.reason()),
                None => f.write_str(self.reason()),
            },
        }
    }
}

impl core::error::Error for BootError {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn a_refused_image_reads_the_same_from_reason_and_display() {
        let e = BootError::BootloaderRejected(ImageError::HashMismatch);
        let terse = [e.reason(), ": ", ImageError::HashMismatch.reason()].concat();
        assert_eq!(e.to_string(), terse);
        assert_eq!(e.image_error(), Some(&ImageError::HashMismatch));
        assert_eq!(BootError::KeysNotLocked.image_error(), None);
        assert_eq!(
            BootError::KeysNotLocked.to_string(),
            BootError::KeysNotLocked.reason()
        );
    }
}
