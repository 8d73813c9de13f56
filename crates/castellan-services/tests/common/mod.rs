//! Shared test fixtures: a small simulated device with trusted storage laid out on it.
#![allow(dead_code)]

use castellan_hal::Partition;
use castellan_services::sim::{SimPlatform, sim_platform};
use castellan_services::{Its, ItsConfig};
use castellan_sim::{DeviceConfig, FlashConfig, SimDevice};

/// Sector size of the test flash.
pub const SECTOR: u32 = 512;
/// Key area: sector 0.
pub const KEY_AREA: Partition = Partition::new(0, SECTOR);
/// ITS log: sectors 1..5 (two banks of 1 KiB).
pub const ITS_AREA: Partition = Partition::new(SECTOR, 4 * SECTOR);
/// The sealing CDI the tests' boot chain hands over.
pub const CDI_SEAL: [u8; 32] = [0x5E; 32];

/// A blank 8 KiB device with `write_size` and `erased` value.
pub fn device(write_size: u32, erased: u8) -> SimDevice {
    SimDevice::new(
        DeviceConfig::new(FlashConfig::new(16 * SECTOR, SECTOR, write_size, erased)),
        42,
    )
    .unwrap()
}

/// The trusted-storage configuration of [`device`].
pub fn its_config() -> ItsConfig {
    ItsConfig::new(ITS_AREA, KEY_AREA)
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
pub fn read(its: &mut Its, dev: &mut SimDevice, uid: u64) -> Result<Vec<u8>, castellan_services::ServiceError> {
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
    dev.flash.erase(part.offset, part.offset + part.size).unwrap();
    for (i, unit) in bytes.chunks(ws).enumerate() {
        if unit.iter().any(|b| *b != erased) {
            dev.flash.write(part.offset + (i * ws) as u32, unit).unwrap();
        }
    }
}

/// True when `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
