//! The PSA lifecycle policy: what boots in which state, and how the state may move.

mod common;

use castellan_boot::{
    BootError, LIFECYCLE_WORD, Lifecycle, advance_lifecycle, key_regions_locked,
    program_root_key_hash, read_lifecycle,
};
use castellan_dice::Mode;
use castellan_hal::{HalError, OtpFuses};
use common::*;

fn unsecured(lifecycle: Lifecycle) -> Dev {
    let mut d = Dev::blank(geometry(4, 0xFF));
    program_root_key_hash(&mut d.sim.otp, &root_hash()).unwrap();
    if lifecycle > Lifecycle::AssemblyAndTest {
        advance_lifecycle(&mut d.sim.otp, lifecycle).unwrap();
    }
    write_partition(&mut d.sim.flash, d.layout.bootloader, &bootloader_image());
    write_partition(&mut d.sim.flash, d.layout.primary, &image_a());
    d
}

#[test]
fn a_device_without_root_key_boots_nothing_in_any_state() {
    let mut d = Dev::blank(geometry(4, 0xFF));
    write_partition(&mut d.sim.flash, d.layout.bootloader, &bootloader_image());
    write_partition(&mut d.sim.flash, d.layout.primary, &image_a());
    assert_eq!(
        d.boot().unwrap_err(),
        BootError::RootKeyNotProvisioned {
            lifecycle: Lifecycle::AssemblyAndTest
        }
    );
    advance_lifecycle(&mut d.sim.otp, Lifecycle::PsaRotProvisioning).unwrap();
    assert!(matches!(
        d.boot(),
        Err(BootError::RootKeyNotProvisioned { .. })
    ));
}

#[test]
fn factory_states_boot_verified_images_with_dice_mode_not_configured() {
    for lc in [Lifecycle::AssemblyAndTest, Lifecycle::PsaRotProvisioning] {
        let mut d = unsecured(lc);
        let r = d.boot().unwrap();
        assert_eq!(r.lifecycle, lc);
        assert_eq!(r.dice_mode, Mode::NotConfigured);
        // Verification is on: a tampered application is refused here too.
        d.poke(d.layout.primary, 100, 0x80);
        assert!(matches!(d.boot(), Err(BootError::PrimaryRejected(_))));
    }
}

#[test]
fn secured_boots_in_dice_mode_normal_with_other_cdis_than_provisioning() {
    let mut d = unsecured(Lifecycle::PsaRotProvisioning);
    let before = *d.boot().unwrap().cdis.attest();
    advance_lifecycle(&mut d.sim.otp, Lifecycle::Secured).unwrap();
    let r = d.boot().unwrap();
    assert_eq!(r.dice_mode, Mode::Normal);
    assert_ne!(*r.cdis.attest(), before, "the mode is a DICE input");
}

#[test]
fn decommissioned_devices_boot_nothing() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    advance_lifecycle(&mut d.sim.otp, Lifecycle::Decommissioned).unwrap();
    assert_eq!(d.boot().unwrap_err(), BootError::Decommissioned);
    assert!(d.boot().unwrap_err().to_string().contains("decommissioned"));
}

#[test]
fn the_lifecycle_only_moves_forward() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    assert_eq!(read_lifecycle(&mut d.sim.otp).unwrap(), Lifecycle::Secured);
    assert_eq!(
        advance_lifecycle(&mut d.sim.otp, Lifecycle::PsaRotProvisioning),
        Err(BootError::Hal(HalError::Rollback))
    );
    advance_lifecycle(&mut d.sim.otp, Lifecycle::Decommissioned).unwrap();
    for lc in [Lifecycle::Secured, Lifecycle::AssemblyAndTest] {
        assert!(advance_lifecycle(&mut d.sim.otp, lc).is_err());
    }
    assert_eq!(
        read_lifecycle(&mut d.sim.otp).unwrap(),
        Lifecycle::Decommissioned
    );
}

#[test]
fn entering_secured_needs_a_root_key_and_locks_the_key_fuses() {
    let mut d = Dev::blank(geometry(4, 0xFF));
    assert!(matches!(
        advance_lifecycle(&mut d.sim.otp, Lifecycle::Secured),
        Err(BootError::RootKeyNotProvisioned { .. })
    ));
    program_root_key_hash(&mut d.sim.otp, &root_hash()).unwrap();
    assert!(!key_regions_locked(&d.sim.otp).unwrap());
    advance_lifecycle(&mut d.sim.otp, Lifecycle::Secured).unwrap();
    assert!(key_regions_locked(&d.sim.otp).unwrap());
    // Nobody can add bits to the root-key hash, or burn an application key, any more.
    assert_eq!(
        program_root_key_hash(&mut d.sim.otp, &[0xFF; 32]),
        Err(BootError::Hal(HalError::Locked))
    );
    assert_eq!(
        castellan_boot::program_app_key_hash(&mut d.sim.otp, &[0x01; 32]),
        Err(BootError::Hal(HalError::Locked))
    );
}

#[test]
fn secured_with_unlocked_key_fuses_is_refused() {
    // Lifecycle fuses set directly (not through advance_lifecycle, which would lock the keys).
    let mut d = unsecured(Lifecycle::AssemblyAndTest);
    d.sim.otp.program(LIFECYCLE_WORD, 0b11).unwrap();
    assert_eq!(read_lifecycle(&mut d.sim.otp).unwrap(), Lifecycle::Secured);
    assert_eq!(d.boot().unwrap_err(), BootError::KeysNotLocked);
}

#[test]
fn psa_lifecycle_values() {
    let v: Vec<u16> = [
        Lifecycle::AssemblyAndTest,
        Lifecycle::PsaRotProvisioning,
        Lifecycle::Secured,
        Lifecycle::Decommissioned,
    ]
    .iter()
    .map(|l| l.psa_value())
    .collect();
    assert_eq!(v, [0x1000, 0x2000, 0x3000, 0x6000]);
    // Any higher thermometer value (fuses blown past decommissioned) fails closed.
    assert_eq!(Lifecycle::from_thermometer(17), Lifecycle::Decommissioned);
}

#[test]
fn an_unprovisioned_device_can_still_be_decommissioned() {
    let mut d = Dev::blank(geometry(4, 0xFF));
    advance_lifecycle(&mut d.sim.otp, Lifecycle::Decommissioned).unwrap();
    assert_eq!(
        read_lifecycle(&mut d.sim.otp).unwrap(),
        Lifecycle::Decommissioned
    );
    assert_eq!(d.boot().unwrap_err(), BootError::Decommissioned);
}
