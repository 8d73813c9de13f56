//! What a successful boot hands to the running image and its secure partition: the
//! [`BootReport`] (lifecycle, measurements, boot record, the upgrade verdict, the anti-rollback
//! counter, the application's DICE CDIs) and the [`Lifecycle`] it booted in.

use core::fmt;

use castellan_dice::{Cdis, Mode};

use crate::measure::{BootRecord, Measurement};
use crate::verdict::UpgradeAction;

/// PSA security lifecycle states (the values are the PSA attestation token's lifecycle claim).
///
/// Policy (see [`Lifecycle::may_boot`]): nothing boots when decommissioned; in every other state
/// the ROM needs a root-key hash in OTP and verifies everything against it; a secured device
/// also needs its key regions locked. DICE runs in mode Normal only when secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifecycle {
    /// 0x1000: assembly and test (factory); fresh fuses.
    AssemblyAndTest,
    /// 0x2000: PSA RoT provisioning (keys being programmed).
    PsaRotProvisioning,
    /// 0x3000: secured, in the field.
    Secured,
    /// 0x6000: decommissioned; terminal.
    Decommissioned,
}

impl Lifecycle {
    /// The state encoded by the lifecycle thermometer value (fail closed: 3 and above is
    /// decommissioned).
    pub const fn from_thermometer(value: u32) -> Self {
        match value {
            0 => Lifecycle::AssemblyAndTest,
            1 => Lifecycle::PsaRotProvisioning,
            2 => Lifecycle::Secured,
            _ => Lifecycle::Decommissioned,
        }
    }

    /// The thermometer value of this state.
    pub const fn thermometer(self) -> u32 {
        match self {
            Lifecycle::AssemblyAndTest => 0,
            Lifecycle::PsaRotProvisioning => 1,
            Lifecycle::Secured => 2,
            Lifecycle::Decommissioned => 3,
        }
    }

    /// The PSA lifecycle claim value (0x1000, 0x2000, 0x3000 or 0x6000).
    pub const fn psa_value(self) -> u16 {
        match self {
            Lifecycle::AssemblyAndTest => 0x1000,
            Lifecycle::PsaRotProvisioning => 0x2000,
            Lifecycle::Secured => 0x3000,
            Lifecycle::Decommissioned => 0x6000,
        }
    }

    /// Whether anything may boot in this state (everything but decommissioned).
    pub const fn may_boot(self) -> bool {
        !matches!(self, Lifecycle::Decommissioned)
    }

    /// The DICE mode decision: Normal when secured, NotConfigured before.
    pub const fn dice_mode(self) -> Mode {
        match self {
            Lifecycle::Secured => Mode::Normal,
            _ => Mode::NotConfigured,
        }
    }

    /// The state's name, as [`fmt::Display`] prints it before the PSA value.
    pub const fn name(self) -> &'static str {
        match self {
            Lifecycle::AssemblyAndTest => "assembly-and-test",
            Lifecycle::PsaRotProvisioning => "psa-rot-provisioning",
            Lifecycle::Secured => "secured",
            Lifecycle::Decommissioned => "decommissioned",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#06x})", self.name(), self.psa_value())
    }
}

/// Which slot booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The primary slot (the only one images run from in swap and overwrite modes).
    Primary,
}

/// The anti-rollback counter of the application images, before and after this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterChange {
    /// Value when the bootloader started.
    pub before: u32,
    /// Value handed to the application (raised when a newer image is confirmed).
    pub after: u32,
}

/// Everything a successful boot established, for the application and for the CLI.
///
/// `Debug` and `Display` never show the CDIs.
#[derive(Debug)]
pub struct BootReport {
    /// The lifecycle state.
    pub lifecycle: Lifecycle,
    /// The DICE mode of the derivations.
    pub dice_mode: Mode,
    /// ROM stage verdict: the bootloader it verified and measured.
    pub bootloader: Measurement,
    /// Bootloader verdict: the application image it verified and measured.
    pub application: Measurement,
    /// The slot that booted.
    pub slot: Slot,
    /// What happened about upgrades.
    pub upgrade: UpgradeAction,
    /// True when the running image is confirmed (false for a test image awaiting
    /// confirmation).
    pub confirmed: bool,
    /// The application anti-rollback counter.
    pub security_counter: CounterChange,
    /// The measurements for attestation ("BL" then the application).
    pub boot_record: BootRecord,
    /// The application's CDIs (secret, wiped on drop): derived from the bootloader's with the
    /// application's digest as code and its signer as authority.
    pub cdis: Cdis,
}

impl fmt::Display for BootReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lifecycle:    {}", self.lifecycle)?;
        writeln!(f, "rom:          verified {}", self.bootloader)?;
        writeln!(f, "upgrade:      {}", self.upgrade)?;
        writeln!(f, "bootloader:   verified {}", self.application)?;
        writeln!(
            f,
            "slot:         primary ({})",
            if self.confirmed {
                "confirmed"
            } else {
                "test, not confirmed"
            }
        )?;
        writeln!(
            f,
            "anti-rollback: counter {} -> {}",
            self.security_counter.before, self.security_counter.after
        )?;
        write!(
            f,
            "dice:         CDIs derived in mode {:?} (not shown)",
            self.dice_mode
        )
    }
}
