//! The whole device: UDS lock semantics, power cycling, seeds, snapshots, clones, configuration
//! and partitions, and persistence across save / open.

use castellan_hal::{
    Flash, FlashRegion, HalError, HardwareUniqueSecret, MonotonicCounter, NorFlash, OtpCounter,
    OtpFuses, Partition, RandomSource, ReadNorFlash,
};
use castellan_sim::{
    DEVICE_FILE, DeviceConfig, FLASH_FILE, FaultPhase, FaultPlan, FlashConfig, OTP_FILE, SimDevice,
    SimError,
};

fn config() -> DeviceConfig {
    DeviceConfig::new(FlashConfig::new(64 * 1024, 4096, 8, 0x00))
        .with_partition("boot", 0, 8192)
        .with_partition("primary", 8192, 24 * 1024)
        .with_partition("secondary", 32 * 1024, 24 * 1024)
        .with_partition("scratch", 56 * 1024, 8192)
}

#[test]
fn attack_read_uds_after_lock_refused() {
    let mut dev = SimDevice::new(config(), 1).unwrap();
    let mut uds = [0u8; 32];
    dev.uds.read(&mut uds).unwrap();
    assert_eq!(uds, dev.uds.secret_for_tests());
    assert_ne!(uds, [0; 32]);
    dev.uds.lock();
    assert!(dev.uds.is_locked());
    let mut stolen = [0u8; 32];
    assert_eq!(dev.uds.read(&mut stolen), Err(HalError::UdsLocked));
    assert_eq!(stolen, [0; 32], "a refused read leaked bytes");
    // Only a reset unlocks it, and the secret survives the reset.
    dev.power_cycle();
    assert!(!dev.uds.is_locked());
    dev.uds.read(&mut stolen).unwrap();
    assert_eq!(stolen, uds);
}

#[test]
fn seeds_determine_uds_and_rng() {
    let mut a = SimDevice::new(config(), 42).unwrap();
    let mut b = SimDevice::new(config(), 42).unwrap();
    let c = SimDevice::new(config(), 43).unwrap();
    assert_eq!(a.uds.secret_for_tests(), b.uds.secret_for_tests());
    assert_ne!(a.uds.secret_for_tests(), c.uds.secret_for_tests());
    let (mut ra, mut rb) = ([0u8; 64], [0u8; 64]);
    a.rng.fill(&mut ra).unwrap();
    b.rng.fill(&mut rb).unwrap();
    assert_eq!(ra, rb);
    a.rng.fill(&mut rb).unwrap();
    assert_ne!(ra, rb, "the stream does not advance");
    let mut os = SimDevice::new_random(config()).unwrap();
    let mut ro = [0u8; 32];
    os.rng.fill(&mut ro).unwrap();
    assert_ne!(ro, [0; 32]);
    assert_ne!(os.uds.secret_for_tests(), a.uds.secret_for_tests());
}

#[test]
fn snapshot_restore_rewinds_flash_fuses_rng_and_powers_up() {
    let mut dev = SimDevice::new(config(), 3).unwrap();
    dev.flash.write(0, &[7; 8]).unwrap();
    let snap = dev.snapshot();
    let mut r1 = [0u8; 16];
    dev.rng.fill(&mut r1).unwrap();

    dev.flash.erase(0, 4096).unwrap();
    dev.flash.write(4096, &[9; 8]).unwrap();
    dev.otp.program(0, 0xFF).unwrap();
    dev.otp.lock(1).unwrap();
    dev.uds.lock();
    dev.arm(FaultPlan::new(0, FaultPhase::Before));
    let _ = dev.flash.write(8, &[1; 8]);
    assert!(!dev.is_powered());

    dev.restore(&snap).unwrap();
    assert!(dev.is_powered());
    assert!(!dev.uds.is_locked());
    assert_eq!(dev.rail().plan(), None);
    assert_eq!(&dev.flash.contents()[..8], &[7; 8]);
    assert!(dev.flash.is_erased(4096, 8).unwrap());
    assert_eq!(dev.flash.write(0, &[1; 8]), Err(HalError::NotErased));
    dev.flash.write(4096, &[1; 8]).unwrap();
    assert_eq!(dev.otp.read(0).unwrap(), 0);
    assert!(!dev.otp.is_locked(1).unwrap());
    let mut r2 = [0u8; 16];
    dev.rng.fill(&mut r2).unwrap();
    assert_eq!(r1, r2, "restored RNG does not replay");

    let other = SimDevice::new(DeviceConfig::default(), 3).unwrap();
    assert!(matches!(
        dev.restore(&other.snapshot()),
        Err(SimError::SnapshotMismatch)
    ));
}

#[test]
fn clone_is_independent() {
    let mut dev = SimDevice::new(config(), 4).unwrap();
    dev.flash.write(0, &[5; 8]).unwrap();
    let mut copy = dev.clone();
    assert_eq!(copy.flash.contents(), dev.flash.contents());
    assert_eq!(copy.uds.secret_for_tests(), dev.uds.secret_for_tests());
    copy.arm(FaultPlan::new(0, FaultPhase::Before));
    assert_eq!(copy.flash.write(8, &[1; 8]), Err(HalError::PowerLoss));
    assert!(dev.is_powered(), "cutting the clone cut the original");
    dev.flash.write(8, &[2; 8]).unwrap();
    copy.power_cycle();
    assert!(copy.flash.is_erased(8, 8).unwrap());
    assert_eq!(copy.flash.write(0, &[1; 8]), Err(HalError::NotErased));
}

#[test]
fn partitions_and_regions() {
    let mut dev = SimDevice::new(config(), 5).unwrap();
    let primary = dev.partition("primary").unwrap();
    let secondary = dev.partition("secondary").unwrap();
    assert_eq!(primary, Partition::new(8192, 24 * 1024));
    assert_eq!(dev.partition("nope"), None);

    // Partition methods: relative offsets on one flash, several partitions in turn.
    primary.write(&mut dev.flash, 0, &[1; 16]).unwrap();
    secondary.write(&mut dev.flash, 8, &[2; 8]).unwrap();
    assert_eq!(&dev.flash.contents()[8192..8208], &[1; 16]);
    assert_eq!(
        &dev.flash.contents()[32 * 1024 + 8..32 * 1024 + 16],
        &[2; 8]
    );
    assert_eq!(
        primary.write(&mut dev.flash, 24 * 1024 - 8, &[1; 16]),
        Err(HalError::OutOfBounds)
    );
    assert_eq!(
        primary.erase(&mut dev.flash, 0, 28 * 1024),
        Err(HalError::OutOfBounds)
    );
    assert!(!primary.is_erased(&mut dev.flash, 0, 16).unwrap());
    primary.erase_all(&mut dev.flash).unwrap();
    assert!(primary.is_erased(&mut dev.flash, 0, 24 * 1024).unwrap());
    assert!(!secondary.is_erased(&mut dev.flash, 0, 16).unwrap());

    // FlashRegion: the partition as a flash of its own.
    let mut region = FlashRegion::new(&mut dev.flash, secondary).unwrap();
    assert_eq!(region.capacity(), 24 * 1024);
    assert_eq!((region.write_size(), region.erase_size()), (8, 4096));
    assert_eq!(region.erased_value(), 0x00);
    let mut b = [0u8; 8];
    region.read(8, &mut b).unwrap();
    assert_eq!(b, [2; 8]);
    assert_eq!(region.write(8, &[3; 8]), Err(HalError::NotErased));
    assert_eq!(region.write(4, &[3; 8]), Err(HalError::NotAligned));
    assert_eq!(region.read(24 * 1024, &mut b), Err(HalError::OutOfBounds));
    region.erase(0, 4096).unwrap();
    region.write(8, &[3; 8]).unwrap();

    // Misplaced partitions are refused.
    assert_eq!(
        FlashRegion::new(&mut dev.flash, Partition::new(100, 4096)).err(),
        Some(HalError::NotAligned)
    );
    assert_eq!(
        FlashRegion::new(&mut dev.flash, Partition::new(60 * 1024, 8192)).err(),
        Some(HalError::OutOfBounds)
    );
    assert_eq!(
        FlashRegion::new(&mut dev.flash, Partition::new(u32::MAX - 4095, 8192)).err(),
        Some(HalError::OutOfBounds)
    );
}

#[test]
fn invalid_layouts_refused() {
    let base = DeviceConfig::new(FlashConfig::new(64 * 1024, 4096, 4, 0xFF));
    let bad = [
        base.clone()
            .with_partition("a", 0, 8192)
            .with_partition("b", 4096, 8192),
        base.clone()
            .with_partition("a", 0, 4096)
            .with_partition("a", 8192, 4096),
        base.clone().with_partition("a", 100, 4096),
        base.clone().with_partition("a", 0, 0),
        base.clone().with_partition("a", 60 * 1024, 8192),
        base.clone().with_partition("a", u32::MAX - 4095, 8192),
        base.clone().with_partition("", 0, 4096),
        base.clone()
            .with_partition("a", 0, 4096)
            .with_partition("b", u32::MAX - 4095, 8192),
    ];
    for c in bad {
        assert!(
            matches!(
                SimDevice::new(c.clone(), 0),
                Err(SimError::InvalidConfig(_))
            ),
            "{:?} accepted",
            c.partitions
        );
    }
    assert!(config().validate().is_ok());
}

#[test]
fn persistence_round_trip_across_save_and_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev1");
    let mut dev = SimDevice::create(&dir, config()).unwrap();
    for f in [FLASH_FILE, OTP_FILE, DEVICE_FILE] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let uds = dev.uds.secret_for_tests();
    dev.flash.write(8192, &[0xAB; 24]).unwrap();
    dev.otp.program_bytes(0, &[0x11; 32]).unwrap();
    dev.otp.lock(0).unwrap();
    OtpCounter::new(&mut dev.otp, 16, 2, 2)
        .unwrap()
        .increment_to(1, 33)
        .unwrap();
    dev.uds.lock();
    dev.save().unwrap();
    let flash_before = dev.flash.contents().to_vec();
    drop(dev);

    let mut back = SimDevice::open(&dir).unwrap();
    assert_eq!(back.config(), &config());
    assert_eq!(back.dir(), Some(dir.as_path()));
    assert_eq!(back.flash.contents(), &flash_before[..]);
    assert_eq!(back.flash.write(8192, &[1; 8]), Err(HalError::NotErased));
    assert_eq!(back.otp.read(3).unwrap(), 0x1111_1111);
    assert_eq!(back.otp.program(3, u32::MAX), Err(HalError::Locked));
    assert_eq!(
        OtpCounter::new(&mut back.otp, 16, 2, 2)
            .unwrap()
            .read(1)
            .unwrap(),
        33
    );
    // Opening is a power-up: the UDS is readable again and is the same secret.
    let mut u = [0u8; 32];
    back.uds.read(&mut u).unwrap();
    assert_eq!(u, uds);
    // A second save/open keeps the new state.
    back.flash.erase(8192, 12288).unwrap();
    back.save().unwrap();
    let again = SimDevice::open(&dir).unwrap();
    assert!(again.flash.contents()[8192..12288].iter().all(|b| *b == 0));
    assert!(!dir.join("flash.bin.tmp").exists());
}

#[test]
fn saved_state_after_a_cut_is_the_torn_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dev = SimDevice::create(tmp.path(), config()).unwrap();
    dev.arm(FaultPlan::new(0, FaultPhase::Torn));
    assert_eq!(dev.flash.write(0, &[0x77; 64]), Err(HalError::PowerLoss));
    dev.save().unwrap();
    let torn = dev.flash.contents()[..64].to_vec();
    let back = SimDevice::open(tmp.path()).unwrap();
    assert!(back.is_powered());
    assert_eq!(&back.flash.contents()[..64], &torn[..]);
}

#[test]
fn seeded_device_keeps_its_rng_stream_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dev = SimDevice::new(config(), 9).unwrap();
    dev.persist_to(tmp.path()).unwrap();
    let mut expected = [0u8; 16];
    dev.rng.fill(&mut expected).unwrap();
    let mut back = SimDevice::open(tmp.path()).unwrap();
    let mut got = [0u8; 16];
    back.rng.fill(&mut got).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn file_errors_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    SimDevice::create(tmp.path(), config()).unwrap();
    assert!(matches!(
        SimDevice::create(tmp.path(), config()),
        Err(SimError::AlreadyExists(_))
    ));
    assert!(matches!(
        SimDevice::new(config(), 0).unwrap().save(),
        Err(SimError::NotPersistent)
    ));
    let missing = SimDevice::open(&tmp.path().join("nope"));
    assert!(matches!(missing, Err(SimError::Io { .. })));

    std::fs::write(tmp.path().join(FLASH_FILE), [0u8; 10]).unwrap();
    let err = SimDevice::open(tmp.path()).unwrap_err();
    assert!(matches!(err, SimError::Corrupt { .. }));
    assert!(err.to_string().contains("flash.bin"), "{err}");

    std::fs::write(tmp.path().join(DEVICE_FILE), b"{not json").unwrap();
    assert!(matches!(
        SimDevice::open(tmp.path()),
        Err(SimError::Corrupt { .. })
    ));
}

#[test]
fn errors_display_what_is_wrong() {
    assert!(HalError::PowerLoss.to_string().contains("power"));
    assert!(HalError::WouldClearBit.to_string().contains("fuse"));
    assert!(HalError::PowerLoss.is_power_loss());
    assert!(!HalError::NotErased.is_power_loss());
    use castellan_hal::{NorFlashError, NorFlashErrorKind};
    assert_eq!(HalError::NotAligned.kind(), NorFlashErrorKind::NotAligned);
    assert_eq!(HalError::OutOfBounds.kind(), NorFlashErrorKind::OutOfBounds);
    assert_eq!(HalError::PowerLoss.kind(), NorFlashErrorKind::Other);
    assert!(SimError::NotPersistent.to_string().contains("persist_to"));
}

#[test]
fn config_json_written_by_hand_is_accepted() {
    let json = r#"{
        "flash": {"size": 65536, "sector_size": 4096, "write_size": 16, "erased_value": 0},
        "partitions": [{"name": "primary", "offset": 0, "size": 32768}]
    }"#;
    let c: DeviceConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.flash, FlashConfig::new(65536, 4096, 16, 0));
    assert_eq!(c.otp.words, 64);
    assert_eq!(c.partition("primary"), Some(Partition::new(0, 32768)));
    let dev = SimDevice::new(c, 0).unwrap();
    assert_eq!(dev.flash.write_size(), 16);
}
