//! The catalog's devices: valid simulator configurations, the documented offsets, and the
//! reference device's options.

use castellan_devkit::reference::{SECTOR_SIZE, SLOT_SIZE};
use castellan_devkit::{
    BOOT_MATRIX, REFERENCE, ReferenceOptions, SERVICES_FWU, SERVICES_ITS, SERVICES_UPDATE,
    UPDATE_MATRIX, by_name, catalog,
};
use castellan_hal::Partition;
use castellan_sim::{FlashConfig, OtpConfig, SimDevice};

#[test]
fn every_device_and_geometry_is_a_valid_simulated_device() {
    assert_eq!(catalog().len(), 6);
    for spec in catalog() {
        assert_eq!(by_name(spec.name), Some(spec));
        assert_eq!(spec.otp, OtpConfig::default(), "{}", spec.name);
        assert!(spec.geometries().count() >= 1, "{}", spec.name);
        for flash in spec.geometries() {
            let config = spec.config(flash);
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            SimDevice::new(config, 1).unwrap();
        }
    }
    assert_eq!(by_name("no-such-device"), None);
}

#[test]
fn boot_matrix_is_the_power_loss_matrix_with_the_documented_offsets() {
    let all: Vec<_> = BOOT_MATRIX.geometries().collect();
    assert_eq!(all, FlashConfig::matrix(8192, 512).collect::<Vec<_>>());
    let l = BOOT_MATRIX.layout().unwrap();
    assert_eq!(l.bootloader, Partition::new(0, 0x200));
    assert_eq!(l.primary, Partition::new(0x200, 0x800));
    assert_eq!(l.secondary, Partition::new(0xA00, 0x800));
    assert_eq!(l.scratch, Some(Partition::new(0x1200, 0x200)));
    assert_eq!(l.status, Some(Partition::new(0x1400, 0x200)));
    assert_eq!(UPDATE_MATRIX.layout().unwrap(), l);
    assert_eq!(UPDATE_MATRIX.geometries().count(), 8);
    assert_eq!(UPDATE_MATRIX.flash_size, 24 * 512);
    assert_eq!(
        UPDATE_MATRIX.partition("its-key"),
        Some(Partition::new(0x1600, 0x200))
    );
    assert_eq!(
        UPDATE_MATRIX.partition("its"),
        Some(Partition::new(0x1800, 0x1000))
    );
}

#[test]
fn services_devices_have_their_storage_where_the_tests_expect_it() {
    assert_eq!(
        SERVICES_ITS.partition("its-key"),
        Some(Partition::new(0, 512))
    );
    assert_eq!(
        SERVICES_ITS.partition("its"),
        Some(Partition::new(512, 2048))
    );
    assert!(SERVICES_ITS.layout().is_err());
    assert_eq!(
        SERVICES_ITS.default_flash(),
        FlashConfig::new(8192, 512, 4, 0xFF)
    );
    let k = 1024;
    for (spec, its) in [(SERVICES_UPDATE, 4 * k), (SERVICES_FWU, 2 * k)] {
        let l = spec.layout().unwrap();
        assert_eq!(l.bootloader, Partition::new(0, 4 * k));
        assert_eq!(l.primary, Partition::new(4 * k, 8 * k));
        assert_eq!(l.secondary, Partition::new(12 * k, 8 * k));
        assert_eq!(l.scratch, Some(Partition::new(20 * k, k)));
        assert_eq!(l.status, Some(Partition::new(21 * k, k)));
        assert_eq!(spec.partition("its-key"), Some(Partition::new(22 * k, k)));
        assert_eq!(spec.partition("its"), Some(Partition::new(23 * k, its)));
        assert_eq!(spec.flash_size, 32 * k);
    }
}

#[test]
fn the_reference_device_is_what_its_default_options_build() {
    assert_eq!(
        ReferenceOptions::default().device_config(),
        REFERENCE.device_config()
    );
    assert_eq!(ReferenceOptions::default().spec(), REFERENCE);
    assert_eq!(REFERENCE.flash_size, 0x57000);
    let names: Vec<_> = REFERENCE.parts.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "bootloader",
            "primary",
            "secondary",
            "scratch",
            "status",
            "its-key",
            "its"
        ]
    );
    assert_eq!(
        REFERENCE.partition("its"),
        Some(Partition::new(0x53000, 0x4000))
    );
    assert_eq!(
        REFERENCE.default_flash(),
        FlashConfig::new(0x57000, 0x1000, 4, 0xFF)
    );
}

#[test]
fn reference_options_resize_and_drop_the_swap_partitions() {
    let big = ReferenceOptions::with_slot(SLOT_SIZE + 1).spec();
    assert_eq!(
        big.partition("primary").unwrap().size,
        SLOT_SIZE + SECTOR_SIZE
    );
    assert_eq!(ReferenceOptions::with_slot(1), ReferenceOptions::DEFAULT);
    let overwrite = ReferenceOptions {
        swap: false,
        write_size: 16,
        erased_value: 0,
        ..ReferenceOptions::DEFAULT
    };
    let config = overwrite.device_config();
    assert_eq!(config.flash, FlashConfig::new(0x55000, 0x1000, 16, 0));
    assert_eq!(config.partition("scratch"), None);
    assert_eq!(
        config.partition("its-key"),
        Some(Partition::new(0x50000, 0x1000))
    );
    assert!(overwrite.spec().layout().unwrap().scratch.is_none());
}
