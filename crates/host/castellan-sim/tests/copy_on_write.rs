//! Copy-on-write flash: devices made from one base share every page they do not write, never
//! see each other's writes, and a device saved as a page journal comes back as it was saved.

use castellan_hal::{NorFlash, ReadNorFlash};
use castellan_sim::{
    DeviceConfig, FLASH_FILE, FLASH_JOURNAL_FILE, FaultPhase, FaultPlan, FlashConfig, SimDevice,
    SimFlash,
};

const SECTOR: u32 = 4096;

fn config() -> FlashConfig {
    FlashConfig::new(64 * 1024, SECTOR, 4, 0xFF)
}

/// A base whose first 8 sectors hold a firmware-like pattern, the rest erased.
fn base_flash() -> SimFlash {
    let mut f = SimFlash::new(config()).unwrap();
    let image: Vec<u8> = (0..8 * SECTOR).map(|i| (i % 251) as u8).collect();
    f.write(0, &image).unwrap();
    f
}

#[test]
fn a_devices_writes_do_not_show_in_another_devices_flash() {
    let base = base_flash().to_base();
    let mut a = SimFlash::from_base(&base);
    let mut b = SimFlash::from_base(&base);
    // a rewrites a sector of the shared image and writes into an erased one.
    a.erase(SECTOR, 2 * SECTOR).unwrap();
    a.write(SECTOR, &[0x11; 64]).unwrap();
    a.write(10 * SECTOR, &[0x22; 64]).unwrap();
    let mut got = [0u8; 64];
    b.read(SECTOR, &mut got).unwrap();
    let expected: Vec<u8> = (SECTOR..SECTOR + 64).map(|i| (i % 251) as u8).collect();
    assert_eq!(&got[..], &expected[..], "a's write showed in b");
    b.read(10 * SECTOR, &mut got).unwrap();
    assert_eq!(got, [0xFF; 64], "a's write into erased flash showed in b");
    a.read(SECTOR, &mut got).unwrap();
    assert_eq!(got, [0x11; 64]);
    // A fresh device from the base still sees the base.
    let c = SimFlash::from_base(&base);
    assert_eq!(c.contents(), base_flash().contents());
}

#[test]
fn untouched_pages_share_the_base() {
    let base = base_flash().to_base();
    let mut a = SimFlash::from_base(&base);
    for s in 0..8 {
        assert!(a.shares_base_at(&base, s * SECTOR), "sector {s} not shared");
    }
    a.erase(3 * SECTOR, 4 * SECTOR).unwrap();
    a.write(3 * SECTOR, &[1; 16]).unwrap();
    assert!(!a.shares_base_at(&base, 3 * SECTOR));
    for s in [0, 1, 2, 4, 5, 6, 7] {
        assert!(a.shares_base_at(&base, s * SECTOR), "sector {s} copied");
    }
    let m = a.memory();
    assert_eq!(m.pages, 16);
    assert_eq!(m.own_pages, 1, "{m:?}");
    assert_eq!(m.erased_pages, 8, "{m:?}");
    assert_eq!(m.shared_pages, 7, "{m:?}");
}

#[test]
fn identical_full_pages_of_two_devices_share_storage() {
    // Two devices download the same release into erased flash.
    let release: Vec<u8> = (0..4 * SECTOR).map(|i| (i % 253) as u8 ^ 0x5A).collect();
    let mut a = SimFlash::new(config()).unwrap();
    let mut b = SimFlash::new(config()).unwrap();
    for chunk in 0..4 {
        let at = chunk * SECTOR;
        let bytes = &release[at as usize..(at + SECTOR) as usize];
        a.write(32 * 1024 + at, bytes).unwrap();
        b.write(32 * 1024 + at, bytes).unwrap();
    }
    assert_eq!(a.memory().own_pages, 0, "{:?}", a.memory());
    assert_eq!(a.memory().shared_pages, 4);
    // A later erase and write by a is its own.
    a.erase(32 * 1024, 32 * 1024 + SECTOR).unwrap();
    a.write(32 * 1024, &[9; 8]).unwrap();
    let mut got = [0u8; 8];
    b.read(32 * 1024, &mut got).unwrap();
    assert_eq!(&got[..], &release[..8]);
}

#[test]
fn contents_mut_changes_reach_the_pages_of_one_device_only() {
    let base = base_flash().to_base();
    let mut a = SimFlash::from_base(&base);
    let b = SimFlash::from_base(&base);
    a.contents_mut()[5] ^= 0xFF;
    let mut got = [0u8; 1];
    a.read(5, &mut got).unwrap();
    assert_eq!(got[0], 5 ^ 0xFF);
    assert_eq!(b.contents()[5], 5);
    assert!(a.shares_base_at(&base, SECTOR));
    assert!(!a.shares_base_at(&base, 0));
}

fn device_config() -> DeviceConfig {
    DeviceConfig::new(config())
}

#[test]
fn a_page_journal_device_opens_as_it_was_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let mut dev = SimDevice::create(&dir, device_config()).unwrap();
    dev.flash.write(0, &[7; 4096]).unwrap();
    dev.use_page_journal().unwrap();
    assert!(!dir.join(FLASH_FILE).exists());
    let after_first = std::fs::metadata(dir.join(FLASH_JOURNAL_FILE))
        .unwrap()
        .len();
    dev.flash.write(5 * SECTOR, &[3; 8]).unwrap();
    dev.save().unwrap();
    let grown = std::fs::metadata(dir.join(FLASH_JOURNAL_FILE))
        .unwrap()
        .len()
        - after_first;
    assert!(grown <= u64::from(SECTOR) + 64, "appended {grown} bytes");
    // Nothing changed: nothing appended.
    dev.save().unwrap();
    let again = std::fs::metadata(dir.join(FLASH_JOURNAL_FILE))
        .unwrap()
        .len();
    assert_eq!(again - after_first, grown);
    let back = SimDevice::open(&dir).unwrap();
    assert_eq!(back.flash.contents(), dev.flash.contents());
    assert!(back.flash.is_unit_written(5 * SECTOR as usize / 4));
    // An erased sector is journaled too.
    let mut back = back;
    back.flash.erase(0, SECTOR).unwrap();
    back.save().unwrap();
    let third = SimDevice::open(&dir).unwrap();
    assert!(
        third.flash.contents()[..SECTOR as usize]
            .iter()
            .all(|b| *b == 0xFF)
    );
}

#[test]
fn attack_torn_journal_append_keeps_the_previous_save() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let mut dev = SimDevice::create(&dir, device_config()).unwrap();
    dev.flash.write(0, &[1; 64]).unwrap();
    dev.use_page_journal().unwrap();
    let saved = dev.flash.contents().to_vec();
    let len = std::fs::metadata(dir.join(FLASH_JOURNAL_FILE))
        .unwrap()
        .len();
    dev.flash.write(SECTOR, &[2; 64]).unwrap();
    dev.flash.write(2 * SECTOR, &[3; 64]).unwrap();
    dev.save().unwrap();
    let full = std::fs::read(dir.join(FLASH_JOURNAL_FILE)).unwrap();
    // The host dies at every point of the append: the device opens as the previous save or,
    // with the whole batch and its commit record, as the new one; never in between.
    for cut in len as usize..full.len() {
        std::fs::write(dir.join(FLASH_JOURNAL_FILE), &full[..cut]).unwrap();
        let back = SimDevice::open(&dir).unwrap();
        assert_eq!(back.flash.contents(), &saved[..], "cut at {cut}");
    }
    std::fs::write(dir.join(FLASH_JOURNAL_FILE), &full).unwrap();
    assert_eq!(
        SimDevice::open(&dir).unwrap().flash.contents(),
        dev.flash.contents()
    );
}

#[test]
fn power_loss_in_a_shared_page_tears_only_the_devices_copy() {
    let base = base_flash().to_base();
    let mut dev = SimDevice::new(device_config(), 3).unwrap();
    dev.flash = SimFlash::from_base(&base);
    let mut dev = dev.clone();
    dev.arm(FaultPlan::new(0, FaultPhase::Torn));
    assert!(dev.flash.erase(0, SECTOR).is_err());
    let other = SimFlash::from_base(&base);
    assert_eq!(other.contents(), base_flash().contents());
    assert_ne!(
        &dev.flash.contents()[..SECTOR as usize],
        &other.contents()[..SECTOR as usize]
    );
}
