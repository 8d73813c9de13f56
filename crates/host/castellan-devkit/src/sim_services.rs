//! Simulator glue: the secure services' [`Platform`] over a [`SimDevice`], with the
//! storage replay counter and the lifecycle in the device's fuses ([`OtpCounterMap::castellan`]),
//! so that counter steps are power-loss injection points like flash operations.

use castellan_sim::{SimDevice, SimFlash, SimOtp, SimRng};

use castellan_services::{OtpCounterMap, Platform, ServiceError};

/// The platform of a simulated device (borrows its flash, fuses and RNG).
pub type SimPlatform<'a> =
    Platform<&'a mut SimFlash, OtpCounterMap<&'a mut SimOtp>, &'a mut SimRng>;

/// Borrows `dev`'s flash, fuses and RNG as a [`Platform`] with Castellan's counter map.
/// Fails when the fuse bank is smaller than the map (64 words).
pub fn sim_platform(dev: &mut SimDevice) -> Result<SimPlatform<'_>, ServiceError> {
    let counter = OtpCounterMap::castellan(&mut dev.otp)?;
    Ok(Platform::new(&mut dev.flash, counter, &mut dev.rng))
}
