//! The firmware update service's vocabulary: component ids, states, what a query reports,
//! the configuration, and what the bootloader did at the last boot.

use castellan_image::{TrustedKey, Version};
use castellan_slots::{BootReport, DowngradePolicy, FlashLayout, InstallKind, UpgradeAction};

use crate::psa;

use super::refusal_status;

/// A firmware component identifier (`psa_fwu_component_t`).
pub type ComponentId = u8;
/// The one component: the application image in the primary slot.
pub const COMPONENT_APPLICATION: ComponentId = 0;

/// `PSA_SUCCESS_REBOOT`: the installation needs a reboot to complete.
pub const SUCCESS_REBOOT: i32 = psa::SUCCESS_REBOOT;

/// Largest write unit this service buffers (a flash write size above it is refused).
pub(super) const MAX_UNIT: usize = 64;

/// Component states (`PSA_FWU_READY` … `PSA_FWU_UPDATED`, same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FwuState {
    /// No update in progress.
    Ready = 0,
    /// An image is being written to the secondary slot.
    Writing = 1,
    /// A complete, verified image waits for `install`.
    Candidate = 2,
    /// Installation requested: the bootloader installs it at the next reboot.
    Staged = 3,
    /// The update failed or was abandoned; `clean` prepares the next one.
    Failed = 4,
    /// The new image runs on trial: `accept` keeps it, anything else reverts it.
    Trial = 5,
    /// The trial image was rejected; the previous image comes back at the next reboot.
    Rejected = 6,
    /// The new image is installed and accepted; `clean` drops the backup.
    Updated = 7,
}

/// What `psa_fwu_query` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentInfo {
    /// The component's state.
    pub state: FwuState,
    /// Why the last update failed (a PSA status, or the client's `reject` code); 0 if none.
    pub error: i32,
    /// Version of the active (running) image.
    pub version: Version,
    /// Largest image the secondary slot takes (the slot minus its trailer).
    pub max_size: u32,
    /// `PSA_FWU_FLAG_*` (none: staging is in non-volatile flash, images are not encrypted).
    pub flags: u32,
    /// Version of the candidate (WRITING excluded), if one is known.
    pub candidate_version: Option<Version>,
}

/// Success of `install` and `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStatus {
    /// Done (`PSA_SUCCESS`).
    Done,
    /// A reboot completes it (`PSA_SUCCESS_REBOOT`): call `request_reboot`.
    RebootRequired,
}

impl InstallStatus {
    /// The PSA status code.
    pub const fn psa_status(self) -> i32 {
        match self {
            InstallStatus::Done => psa::SUCCESS,
            InstallStatus::RebootRequired => SUCCESS_REBOOT,
        }
    }
}

/// Where the slots are and which key update images must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwuConfig {
    /// The bootloader's flash layout (primary, secondary, scratch, status).
    pub layout: FlashLayout,
    /// The key candidates are verified with (the bootloader's application key).
    pub key: TrustedKey<'static>,
    /// Install for a trial run (test swap, confirmed by `accept`) rather than permanently.
    pub trial: bool,
    /// Which older candidates are refused: the bootloader's policy
    /// (`castellan_boot::BootConfig::downgrade`), so that the service never stages what the
    /// bootloader would refuse.
    pub downgrade: DowngradePolicy,
}

impl FwuConfig {
    /// Slots of `layout`, candidates verified with `key`, installed for a trial run when
    /// `trial`, lower versions refused ([`DowngradePolicy::Version`]).
    pub const fn new(layout: FlashLayout, key: TrustedKey<'static>, trial: bool) -> Self {
        FwuConfig {
            layout,
            key,
            trial,
            downgrade: DowngradePolicy::Version,
        }
    }

    /// The same configuration with the downgrade policy `downgrade`.
    pub const fn with_downgrade(self, downgrade: DowngradePolicy) -> Self {
        FwuConfig { downgrade, ..self }
    }
}

/// What the bootloader did about updates at the last boot, as the service needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastBoot {
    /// No update was pending.
    Nothing,
    /// A new image was swapped in for a trial run and is not confirmed yet.
    Trial,
    /// A new image was installed for good (permanent swap or overwrite).
    Installed,
    /// An unconfirmed trial image was swapped back out: the previous image runs.
    RolledBack,
    /// The bootloader refused the staged candidate; holds the PSA status of the reason.
    Refused(i32),
}

impl LastBoot {
    /// Reads the bootloader's report.
    pub fn from_report(report: &BootReport) -> LastBoot {
        match report.upgrade {
            _ if !report.confirmed => LastBoot::Trial,
            UpgradeAction::Installed {
                kind: InstallKind::Revert,
                ..
            } => LastBoot::RolledBack,
            UpgradeAction::Installed { .. } => LastBoot::Installed,
            UpgradeAction::Refused(r) => LastBoot::Refused(refusal_status(&r)),
            UpgradeAction::RevertRefused(_) | UpgradeAction::None => LastBoot::Nothing,
        }
    }
}
