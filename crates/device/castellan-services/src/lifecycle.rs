//! The PSA security lifecycle, kept as a thermometer code in OTP (the word `castellan-boot`'s
//! OTP map uses), so it can only move forward:
//!
//! ```text
//!  thermometer  0                 1                      2            3 (and above)
//!  state        assembly & test → PSA RoT provisioning → secured  →   decommissioned
//!  PSA value    0x1000            0x2000                 0x3000       0x6000
//!                  └──────────────────┴──────────────────────┴──────────▲ (from any state)
//! ```
//!
//! A transition goes one step forward, or to decommissioned from any state; anything else is
//! refused. Decommissioning is done by [`crate::SecureServices::decommission`], which
//! crypto-erases the device first (see there).

use castellan_attest::Lifecycle;
use castellan_hal::MonotonicCounter;

use crate::ServiceError;

/// The state of thermometer value `value` (fail closed: 3 and above is decommissioned).
pub const fn from_thermometer(value: u32) -> Lifecycle {
    match value {
        0 => Lifecycle::AssemblyAndTest,
        1 => Lifecycle::PsaRotProvisioning,
        2 => Lifecycle::Secured,
        _ => Lifecycle::Decommissioned,
    }
}

/// The thermometer value of `state`, if it is one of the four states this device uses.
pub const fn thermometer(state: Lifecycle) -> Option<u32> {
    match state {
        Lifecycle::AssemblyAndTest => Some(0),
        Lifecycle::PsaRotProvisioning => Some(1),
        Lifecycle::Secured => Some(2),
        Lifecycle::Decommissioned => Some(3),
        _ => None,
    }
}

/// Reads the lifecycle from counter `id`.
pub(crate) fn read<C: MonotonicCounter>(counter: &C, id: usize) -> Result<Lifecycle, ServiceError> {
    Ok(from_thermometer(counter.read(id)?))
}

/// Checks that `from → to` is an allowed transition; returns the thermometer value of `to`.
pub(crate) fn check_transition(from: Lifecycle, to: Lifecycle) -> Result<u32, ServiceError> {
    let target = thermometer(to).ok_or(ServiceError::NotSupported(
        "lifecycle state (assembly-and-test, psa-rot-provisioning, secured, decommissioned)",
    ))?;
    let current = thermometer(from).unwrap_or(3);
    if current >= 3 {
        return Err(ServiceError::BadState("the device is decommissioned"));
    }
    if target == current + 1 || to == Lifecycle::Decommissioned {
        Ok(target)
    } else {
        Err(ServiceError::BadState(
            "lifecycle transitions go one step forward, or to decommissioned",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_one_way() {
        use Lifecycle::*;
        assert_eq!(check_transition(AssemblyAndTest, PsaRotProvisioning), Ok(1));
        assert_eq!(check_transition(PsaRotProvisioning, Secured), Ok(2));
        assert_eq!(check_transition(Secured, Decommissioned), Ok(3));
        assert_eq!(check_transition(AssemblyAndTest, Decommissioned), Ok(3));
        assert!(check_transition(AssemblyAndTest, Secured).is_err());
        assert!(check_transition(Secured, PsaRotProvisioning).is_err());
        assert!(check_transition(Secured, Secured).is_err());
        assert!(check_transition(Decommissioned, Decommissioned).is_err());
        assert!(matches!(
            check_transition(Secured, NonPsaRotDebug),
            Err(ServiceError::NotSupported(_))
        ));
        assert_eq!(from_thermometer(7), Decommissioned);
    }
}
