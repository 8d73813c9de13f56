//! A simulated device's secure side for tests (feature `testing`): a blank in-memory device
//! (fixed seed), its secure services over trusted storage on a small flash, one boot record
//! entry and no boot chain, behind the gate. The gate's own tests, the fleet client's and
//! anything later that needs "a device's secure side" start from one [`TestDevice`].
//!
//! ```
//! use castellan_gate_api::SecureGate as _;
//! use castellan_simgate::{SimGate, testing::TestDevice};
//!
//! let mut secure = TestDevice::SMALL.secure();
//! let mut gate = SimGate::new(&mut secure);
//! assert_eq!(gate.boot_info().unwrap().version, [1, 2, 3, 0]);
//! ```
//!
//! These are fixtures: a setup that cannot be built panics (a failed test), as the other test
//! fixtures of the workspace do.

use castellan_dice::Cdis;
use castellan_gate_api::BootInfo;
use castellan_hal::Partition;
use castellan_services::{
    BootRecordEntry, ImageVersion, ItsConfig, OtpCounterMap, Platform, SecureServices,
    ServicesConfig,
};
use castellan_sim::{DeviceConfig, FlashConfig, SimDevice, SimFlash, SimOtp, SimRng};

use crate::SimSecure;

/// The platform of a test device: simulated flash, the Castellan counter map over simulated
/// fuses, a seeded random source.
pub type TestPlatform = Platform<SimFlash, OtpCounterMap<SimOtp>, SimRng>;
/// The secure services of a test device.
pub type TestServices = SecureServices<SimFlash, OtpCounterMap<SimOtp>, SimRng>;
/// The secure side of a test device, as its gate reaches it.
pub type TestSecure = SimSecure<SimFlash, OtpCounterMap<SimOtp>, SimRng>;

/// Sector size of a test device's flash.
pub const SECTOR: u32 = 512;
/// The seed of every test device (UDS and random stream).
pub const SEED: u64 = 7;
/// The implementation id the services report.
pub const IMPLEMENTATION_ID: [u8; 32] = [0x1d; 32];

/// The geometry and running version of a test device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestDevice {
    /// Flash sectors (of [`SECTOR`] bytes); sector 0 holds the key area.
    pub sectors: u32,
    /// Sectors of trusted storage, from sector 1.
    pub its_sectors: u32,
    /// The running image's version (boot record and boot information).
    pub version: ImageVersion,
}

impl TestDevice {
    /// Sixteen sectors, four of trusted storage, version 1.2.3: the gate's tests.
    pub const SMALL: TestDevice = TestDevice {
        sectors: 16,
        its_sectors: 4,
        version: ImageVersion::new(1, 2, 3, 0),
    };

    /// Thirty-two sectors, twelve of trusted storage (room for an LDevID certificate and its
    /// replacement), version 1.0.0: onboarding.
    pub const ROOMY: TestDevice = TestDevice {
        sectors: 32,
        its_sectors: 12,
        version: ImageVersion::new(1, 0, 0, 0),
    };

    /// A blank device's platform.
    ///
    /// # Panics
    /// When the simulator refuses the geometry.
    pub fn platform(&self) -> TestPlatform {
        let flash = FlashConfig::new(self.sectors * SECTOR, SECTOR, 4, 0xff);
        let dev = SimDevice::new(DeviceConfig::new(flash), SEED).expect("simulated device");
        let counters = OtpCounterMap::castellan(dev.otp.clone()).expect("counter map");
        Platform::new(dev.flash.clone(), counters, dev.rng.clone())
    }

    /// The secure services started over `platform` (a blank one, or the one a previous run
    /// gave back: a simulated reboot).
    ///
    /// # Panics
    /// When the services refuse to start.
    pub fn services_on(&self, platform: TestPlatform) -> TestServices {
        let its = Partition::new(SECTOR, self.its_sectors * SECTOR);
        let keys = Partition::new(0, SECTOR);
        let config = ServicesConfig::new(ItsConfig::new(its, keys), IMPLEMENTATION_ID);
        let cdis = Cdis::from_bytes([1; 32], [2; 32]);
        let entry = BootRecordEntry::new("SPE", [0x11; 32], [0x22; 32], self.version);
        let record = [entry.expect("boot record entry")];
        SecureServices::new(platform, config, &cdis, &record).expect("secure services")
    }

    /// The secure services of a blank device.
    pub fn services(&self) -> TestServices {
        self.services_on(self.platform())
    }

    /// The secure side of a blank device, its boot information naming [`Self::version`].
    pub fn secure(&self) -> TestSecure {
        self.secure_over(self.services())
    }

    /// The secure side over `services` (prepared by the caller: a detector installed, a
    /// restart), its boot information naming [`Self::version`].
    pub fn secure_over(&self, services: TestServices) -> TestSecure {
        SimSecure::new(services, self.boot_info())
    }

    /// Boot information of a device running [`Self::version`], otherwise zero.
    pub fn boot_info(&self) -> BootInfo {
        let v = self.version;
        let mut boot = BootInfo::zeroed();
        boot.version = [
            u32::from(v.major),
            u32::from(v.minor),
            u32::from(v.revision),
            v.build,
        ];
        boot
    }
}
