//! Shared test fixtures: a small simulated device with trusted storage laid out on it.
#![allow(dead_code)]

use castellan_devkit::sim_services::{SimPlatform, sim_platform};
use castellan_devkit::{DeviceSpec, PARTITION_ITS, PARTITION_ITS_KEY};
use castellan_hal::Partition;
use castellan_services::{Its, ItsConfig};
use castellan_sim::SimDevice;

/// The device the tests run on: the catalog's `services-its` (8 KiB of flash in 512-byte
/// sectors, the storage key in sector 0, trusted storage in sectors 1..5: two banks of 1 KiB).
pub const DEVICE: DeviceSpec = castellan_devkit::SERVICES_ITS;
/// Sector size of the test flash.
pub const SECTOR: u32 = DEVICE.sector_size;

/// Key area: sector 0.
pub fn key_area() -> Partition {
    DEVICE.partition(PARTITION_ITS_KEY).unwrap()
}

/// ITS log: sectors 1..5 (two banks of 1 KiB).
pub fn its_area() -> Partition {
    DEVICE.partition(PARTITION_ITS).unwrap()
}

/// The sealing CDI the tests' boot chain hands over.
pub const CDI_SEAL: [u8; 32] = [0x5E; 32];

/// A blank 8 KiB device with `write_size` and `erased` value.
pub fn device(write_size: u32, erased: u8) -> SimDevice {
    seeded_device(write_size, erased, 42)
}

/// A blank device of [`DEVICE`] whose UDS and RNG come from `seed` (another device).
pub fn seeded_device(write_size: u32, erased: u8, seed: u64) -> SimDevice {
    SimDevice::new(DEVICE.config(DEVICE.flash(write_size, erased)), seed).unwrap()
}

/// The trusted-storage configuration of [`device`].
pub fn its_config() -> ItsConfig {
    ItsConfig::new(its_area(), key_area())
}

/// The device's platform.
pub fn platform(dev: &mut SimDevice) -> SimPlatform<'_> {
    sim_platform(dev).unwrap()
}

/// Mounts (formatting a blank device) the store of [`its_config`].
pub fn mount(dev: &mut SimDevice) -> Its {
    Its::mount(its_config(), &CDI_SEAL, &mut platform(dev)).unwrap()
}

/// Reads a whole client asset.
pub fn read(
    its: &mut Its,
    dev: &mut SimDevice,
    uid: u64,
) -> Result<Vec<u8>, castellan_services::ServiceError> {
    let mut buf = [0u8; 512];
    let n = its.get(&mut platform(dev), uid, 0, &mut buf)?;
    Ok(buf[..n].to_vec())
}

/// The raw bytes of a partition (a probe on the flash chip).
pub fn raw(dev: &SimDevice, part: Partition) -> Vec<u8> {
    dev.flash.contents()[part.offset as usize..(part.offset + part.size) as usize].to_vec()
}

/// Puts raw bytes back into a partition the way an attacker with a flash programmer does:
/// erase, then program every write unit that is not blank.
pub fn put_raw(dev: &mut SimDevice, part: Partition, bytes: &[u8]) {
    use castellan_hal::{Flash, NorFlash};
    let ws = dev.flash.write_size();
    let erased = dev.flash.erased_value();
    dev.flash
        .erase(part.offset, part.offset + part.size)
        .unwrap();
    for (i, unit) in bytes.chunks(ws).enumerate() {
        if unit.iter().any(|b| *b != erased) {
            dev.flash
                .write(part.offset + (i * ws) as u32, unit)
                .unwrap();
        }
    }
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// --- whole secure partition -------------------------------------------------------------------

use castellan_dice::{Cdis, Mode, rom_stage_cdis};
use castellan_hal::HardwareUniqueSecret;
use castellan_services::{
    BootRecordEntry, ImageVersion, OtpCounterMap, SecureServices, ServicesConfig,
};
use castellan_sim::{SimFlash, SimOtp, SimRng};

/// The services of a simulated device.
pub type Services<'a> =
    SecureServices<&'a mut SimFlash, OtpCounterMap<&'a mut SimOtp>, &'a mut SimRng>;

/// Implementation id of the test device class.
pub const IMPLEMENTATION_ID: [u8; 32] = [0xA1; 32];
/// SHA-256 of the test bootloader image.
pub const BL_HASH: [u8; 32] = [0xB1; 32];
/// SHA-256 of the test secure image.
pub const SPE_HASH: [u8; 32] = [0x5E; 32];
/// SHA-256 of the test signing key.
pub const SIGNER: [u8; 32] = [0x51; 32];

/// The boot record the test bootloader hands over.
pub fn boot_record() -> [BootRecordEntry; 2] {
    [
        BootRecordEntry::new(
            "BL",
            BL_HASH,
            SIGNER,
            ImageVersion {
                major: 1,
                minor: 0,
                revision: 0,
                build: 0,
            },
        )
        .unwrap(),
        BootRecordEntry::new(
            "SPE",
            SPE_HASH,
            SIGNER,
            ImageVersion {
                major: 2,
                minor: 1,
                revision: 3,
                build: 7,
            },
        )
        .unwrap(),
    ]
}

/// The CDIs the ROM stage derives for a bootloader measuring `bl_hash` (UDS read, then locked).
pub fn cdis(dev: &mut SimDevice, bl_hash: &[u8; 32]) -> Cdis {
    cdis_signed_by(dev, bl_hash, &SIGNER)
}

/// The CDIs for a bootloader measuring `bl_hash` signed by the key whose hash is `signer`.
pub fn cdis_signed_by(dev: &mut SimDevice, bl_hash: &[u8; 32], signer: &[u8; 32]) -> Cdis {
    let mut uds = [0u8; 32];
    dev.uds.read(&mut uds).unwrap();
    dev.uds.lock();
    rom_stage_cdis(&uds, bl_hash, signer, Mode::Normal).unwrap()
}

/// Boots with a bootloader measuring `bl_hash` and signed by `signer`.
pub fn boot_signed_by<'a>(
    dev: &'a mut SimDevice,
    bl_hash: &[u8; 32],
    signer: &[u8; 32],
) -> Services<'a> {
    let cdis = cdis_signed_by(dev, bl_hash, signer);
    let config = ServicesConfig::new(its_config(), IMPLEMENTATION_ID);
    SecureServices::new(platform(dev), config, &cdis, &boot_record()).unwrap()
}

/// Boots the secure partition of `dev` (4-byte writes unless the device says otherwise).
pub fn boot(dev: &mut SimDevice) -> Services<'_> {
    boot_with(dev, &BL_HASH)
}

/// Boots with a bootloader that measures `bl_hash`.
pub fn boot_with<'a>(dev: &'a mut SimDevice, bl_hash: &[u8; 32]) -> Services<'a> {
    let cdis = cdis(dev, bl_hash);
    let config = ServicesConfig::new(its_config(), IMPLEMENTATION_ID);
    SecureServices::new(platform(dev), config, &cdis, &boot_record()).unwrap()
}
