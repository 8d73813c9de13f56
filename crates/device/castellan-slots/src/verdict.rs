//! The bootloader's verdict on upgrades, as the running image and the update service read it:
//! what was installed and how ([`UpgradeAction`], [`InstallKind`]), why a candidate was refused
//! ([`UpgradeRefusal`]), and which candidates count as downgrades ([`DowngradePolicy`]).

use core::fmt;

use castellan_image::{ImageError, Version};

/// Which candidates count as forbidden downgrades (MCUboot's `MCUBOOT_DOWNGRADE_PREVENTION`).
/// Whatever the policy, a candidate whose security counter is below the OTP counter is always
/// refused ([`UpgradeRefusal::Rollback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DowngradePolicy {
    /// A candidate with a lower version than the running image is refused
    /// ([`UpgradeRefusal::Downgrade`]).
    #[default]
    Version,
    /// Only the security counter decides (MCUboot with `MCUBOOT_HW_ROLLBACK_PROT`, what TF-M
    /// ships): a lower version is accepted when its security counter is not below the OTP
    /// counter. A release manager rolls back to the previous release (signed again with a
    /// newer manifest) and blocks vulnerable releases by raising the counter of the fixed one.
    SecurityCounter,
}

/// How an installed image was installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallKind {
    /// Swapped in for a test run: reverted at the next boot unless confirmed.
    Test,
    /// Swapped in and confirmed at once.
    Permanent,
    /// An unconfirmed test image swapped back out; the previous image runs again.
    Revert,
    /// Copied over the primary slot (overwrite-only mode).
    Overwrite,
}

impl fmt::Display for InstallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstallKind::Test => "test swap",
            InstallKind::Permanent => "permanent swap",
            InstallKind::Revert => "revert swap",
            InstallKind::Overwrite => "overwrite",
        })
    }
}

/// What the bootloader did about upgrades on this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeAction {
    /// Nothing to do.
    None,
    /// An image was installed.
    Installed {
        /// How.
        kind: InstallKind,
        /// True when this finished work a power cut had interrupted.
        resumed: bool,
    },
    /// The candidate in the secondary slot was refused and marked so it is not tried again.
    Refused(UpgradeRefusal),
    /// The running test image is unconfirmed, but the image a revert would restore is not
    /// acceptable: the test image keeps running (unconfirmed).
    RevertRefused(UpgradeRefusal),
}

impl fmt::Display for UpgradeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeAction::None => f.write_str("none"),
            UpgradeAction::Installed {
                kind,
                resumed: false,
            } => write!(f, "{kind} done"),
            UpgradeAction::Installed {
                kind,
                resumed: true,
            } => {
                write!(f, "{kind} resumed after a power cut and done")
            }
            UpgradeAction::Refused(r) => write!(f, "upgrade refused: {r}"),
            UpgradeAction::RevertRefused(r) => write!(f, "revert impossible: {r}"),
        }
    }
}

/// Why the image in the secondary slot (or the image a revert would restore) was not installed.
///
/// A refused upgrade is not a boot failure: the device keeps booting the primary slot, and
/// the secondary slot is marked so that the same image is not tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeRefusal {
    /// The image does not verify (bad signature, another key, tampered, truncated, ...).
    Invalid(ImageError),
    /// The image and the slot trailer do not fit in the slot.
    TooLarge {
        /// Bytes the image needs, trailer area included.
        needed: u64,
        /// Bytes the slot holds.
        slot_size: u32,
    },
    /// The image's security counter is below the confirmed one (an old image replayed).
    Rollback {
        /// The candidate's security counter (0 when it has none).
        candidate: u32,
        /// The confirmed counter in OTP.
        stored: u32,
    },
    /// The image's version is below the running image's (downgrade prevention).
    Downgrade {
        /// The candidate's version.
        candidate: Version,
        /// The running image's version.
        current: Version,
    },
    /// The image's security counter is larger than the OTP counter can ever hold.
    CounterTooLarge {
        /// The candidate's security counter.
        candidate: u32,
        /// The largest value the OTP counter holds.
        max: u32,
    },
}

impl fmt::Display for UpgradeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeRefusal::Invalid(e) => write!(f, "image is not valid: {e}"),
            UpgradeRefusal::TooLarge { needed, slot_size } => write!(
                f,
                "image is larger than the slot: it needs {needed:#x} bytes with the trailer, the slot holds {slot_size:#x}"
            ),
            UpgradeRefusal::Rollback { candidate, stored } => write!(
                f,
                "rollback refused: security counter {candidate} is below the confirmed counter {stored}"
            ),
            UpgradeRefusal::Downgrade { candidate, current } => write!(
                f,
                "downgrade refused: version {candidate} is older than the running {current}"
            ),
            UpgradeRefusal::CounterTooLarge { candidate, max } => write!(
                f,
                "security counter {candidate} exceeds what the OTP counter can hold ({max})"
            ),
        }
    }
}
