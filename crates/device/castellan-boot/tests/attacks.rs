//! Attacks on the boot chain, each test named after its attack. The device must refuse, say
//! why, keep booting an authorized image (or nothing, when none is left), and never lower its
//! anti-rollback state.

mod common;

use castellan_boot::{
    BootError, COUNTER_FIRST_WORD, CounterId, UpgradeAction, UpgradeRefusal, raise_security_counter,
};
use castellan_hal::{Flash, HalError, NorFlash, OtpFuses, ReadNorFlash};
use castellan_image::trailer::{FlagState, SwapType};
use castellan_image::{ImageError, SignOptions, Version};
use castellan_sim::SimFlash;
use common::*;
use embedded_storage::nor_flash::ErrorType;

fn refused(d: &mut Dev) -> UpgradeRefusal {
    let r = d.boot().unwrap();
    assert_eq!(
        r.application.digest.as_bytes(),
        digest_of(&image_a()),
        "A keeps running"
    );
    match r.upgrade {
        UpgradeAction::Refused(why) => {
            // Marked: not retried at the next boot.
            let t = d.trailer(d.layout.secondary);
            assert_eq!(t.swap_type, SwapType::Fail);
            assert_eq!(d.boot().unwrap().upgrade, UpgradeAction::None);
            assert!(d.holds(d.layout.primary, &image_a()));
            why
        }
        other => panic!("not refused: {other:?}"),
    }
}

fn confirmed_b() -> Dev {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), true);
    d.boot().unwrap();
    assert_eq!(d.counter(), 2);
    d
}

#[test]
fn attack_upgrade_signed_with_another_key() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(
        &image(&key(0x99), Version::new(9, 0, 0, 0), 9, 1000, 0x66),
        false,
    );
    assert_eq!(
        refused(&mut d),
        UpgradeRefusal::Invalid(ImageError::KeyMismatch)
    );
}

#[test]
fn attack_tampered_upgrade_candidate() {
    let mut d = Dev::provisioned(geometry(8, 0x00));
    d.stage(&image_b(), false);
    d.poke(d.layout.secondary, 700, 0x04);
    assert_eq!(
        refused(&mut d),
        UpgradeRefusal::Invalid(ImageError::HashMismatch)
    );
}

#[test]
fn attack_tampered_bootloader_is_refused_by_the_rom() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.poke(d.layout.bootloader, 60, 0x10);
    assert_eq!(
        d.boot().unwrap_err(),
        BootError::BootloaderRejected(ImageError::HashMismatch)
    );
}

#[test]
fn attack_bootloader_signed_with_another_key() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let evil = image(&key(0x99), Version::new(1, 0, 0, 0), 1, 96, 0xB0);
    write_partition(&mut d.sim.flash, d.layout.bootloader, &evil);
    assert_eq!(
        d.boot().unwrap_err(),
        BootError::BootloaderRejected(ImageError::KeyMismatch)
    );
}

#[test]
fn attack_rollback_of_the_bootloader() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let newer = image(&root_key(), Version::new(1, 1, 0, 0), 2, 96, 0xB1);
    write_partition(&mut d.sim.flash, d.layout.bootloader, &newer);
    d.boot().unwrap();
    write_partition(&mut d.sim.flash, d.layout.bootloader, &bootloader_image());
    assert_eq!(
        d.boot().unwrap_err(),
        BootError::BootloaderRollback {
            image: 1,
            stored: 2
        }
    );
}

#[test]
fn attack_tampered_application_in_the_primary_slot() {
    let mut d = Dev::provisioned(geometry(1, 0xFF));
    d.poke(d.layout.primary, 500, 0x01);
    let e = d.boot().unwrap_err();
    assert_eq!(e, BootError::PrimaryRejected(ImageError::HashMismatch));
    assert!(e.to_string().contains("primary slot"), "{e}");
}

#[test]
fn attack_downgrade_to_an_older_version() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    // Same security counter as the running image, older version.
    d.stage(
        &image(&root_key(), Version::new(0, 9, 0, 0), 1, 1000, 0x09),
        true,
    );
    let why = refused(&mut d);
    assert_eq!(
        why,
        UpgradeRefusal::Downgrade {
            candidate: Version::new(0, 9, 0, 0),
            current: Version::new(1, 0, 0, 0)
        }
    );
    assert!(why.to_string().contains("downgrade refused"));
}

#[test]
fn attack_replay_of_an_old_signed_image_after_a_newer_one_was_confirmed() {
    let mut d = confirmed_b();
    d.stage(&image_a(), true);
    let r = d.boot().unwrap();
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_b()));
    assert_eq!(
        r.upgrade,
        UpgradeAction::Refused(UpgradeRefusal::Rollback {
            candidate: 1,
            stored: 2
        })
    );
    assert_eq!(d.counter(), 2);
}

#[test]
fn attack_rollback_image_without_security_counter() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let no_counter = sign_with(
        &root_key(),
        SignOptions {
            version: Version::new(5, 0, 0, 0),
            public_key_format: castellan_image::PublicKeyFormat::Full,
            ..SignOptions::default()
        },
        900,
        0x21,
    );
    d.stage(&no_counter, false);
    assert_eq!(
        refused(&mut d),
        UpgradeRefusal::Rollback {
            candidate: 0,
            stored: 1
        }
    );
}

#[test]
fn attack_rollback_by_writing_an_old_image_straight_into_the_primary_slot() {
    let mut d = confirmed_b();
    write_partition(&mut d.sim.flash, d.layout.primary, &image_a());
    assert_eq!(
        d.boot().unwrap_err(),
        BootError::PrimaryRollback {
            image: 1,
            stored: 2
        }
    );
}

#[test]
fn attack_security_counter_beyond_what_the_fuses_hold() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(
        &image(&root_key(), Version::new(2, 0, 0, 0), 500, 900, 0x12),
        true,
    );
    assert_eq!(
        refused(&mut d),
        UpgradeRefusal::CounterTooLarge {
            candidate: 500,
            max: 128
        }
    );
}

#[test]
fn attack_image_larger_than_the_slot() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    // Ends 4 bytes into the trailer area (over swap_size), where the trailer would overwrite it.
    let overhead = image_a().len() - 1300;
    let big = image(
        &root_key(),
        Version::new(2, 0, 0, 0),
        2,
        2004 - overhead,
        0x13,
    );
    assert_eq!(big.len(), 2004);
    d.stage(&big, false);
    match refused(&mut d) {
        UpgradeRefusal::TooLarge { needed, slot_size } => {
            assert_eq!(slot_size, SLOT);
            assert!(needed > u64::from(SLOT));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn attack_header_claiming_a_payload_larger_than_the_slot() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let mut lie = image_b();
    lie[12..16].copy_from_slice(&0x0010_0000u32.to_le_bytes());
    d.stage(&lie, false);
    let why = refused(&mut d);
    assert!(
        matches!(
            why,
            UpgradeRefusal::Invalid(ImageError::SizeOutOfBounds { .. })
                | UpgradeRefusal::TooLarge { .. }
        ),
        "{why:?}"
    );
}

#[test]
fn attack_corrupted_secondary_trailer_magic_installs_nothing() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), false);
    d.poke(d.layout.secondary, SLOT - 3, 0x40);
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, UpgradeAction::None);
    assert!(d.holds(d.layout.primary, &image_a()));
}

#[test]
fn attack_corrupted_swap_info_is_not_a_request() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), true);
    // swap_info sits 4 × max_align + 16 before the end (max_align 8 for write size 4).
    d.poke(d.layout.secondary, SLOT - 16 - 3 * 8, 0x5A);
    assert_eq!(d.boot().unwrap().upgrade, UpgradeAction::None);
}

#[test]
fn attack_corrupted_primary_trailer_cannot_brick_or_roll_back() {
    // copy_done forged on a confirmed image with nothing to revert to.
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let g = castellan_boot::Geometry::of(&d.sim.flash).unwrap();
    let t = g.trailer(SLOT);
    let at = |off: u32| off as usize;
    {
        let p = d.layout.primary.offset as usize;
        let c = d.sim.flash.contents_mut();
        c[p + at(t.copy_done_off())] = 0x01;
        c[p + at(t.magic_off())..p + at(t.magic_off()) + 16]
            .copy_from_slice(&castellan_image::trailer::boot_magic(8));
    }
    let r = d.boot().unwrap();
    assert!(
        matches!(r.upgrade, UpgradeAction::RevertRefused(_)),
        "{:?}",
        r.upgrade
    );
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_a()));
    assert_eq!(d.counter(), 1);
    // Garbage in the primary magic: still boots A, nothing happens.
    d.poke(d.layout.primary, SLOT - 1, 0xFF);
    assert_eq!(d.boot().unwrap().upgrade, UpgradeAction::None);
}

#[test]
fn attack_torn_confirmation_counts_as_unconfirmed() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), false);
    d.boot().unwrap();
    let g = castellan_boot::Geometry::of(&d.sim.flash).unwrap();
    let off = g.trailer(SLOT).image_ok_off();
    d.poke(d.layout.primary, off, 0x3C ^ 0xFF);
    assert_eq!(d.trailer(d.layout.primary).image_ok, FlagState::Bad);
    let r = d.boot().unwrap();
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_a()));
    assert_eq!(
        d.counter(),
        1,
        "garbage in image_ok must not raise the counter"
    );
}

#[test]
fn attack_lower_the_anti_rollback_counter_through_the_hal() {
    let mut d = confirmed_b();
    // Through the counter API...
    assert_eq!(
        raise_security_counter(&mut d.sim.otp, CounterId::Application, 1),
        Err(BootError::Hal(HalError::Rollback))
    );
    // ...or by clearing fuse bits directly.
    let word = d.sim.otp.read(COUNTER_FIRST_WORD).unwrap();
    assert_eq!(word, 0b11);
    assert_eq!(
        d.sim.otp.program(COUNTER_FIRST_WORD, 0b01),
        Err(HalError::WouldClearBit)
    );
    assert_eq!(d.counter(), 2);
    // The bootloader's state is unchanged: the old image is still refused.
    d.stage(&image_a(), true);
    assert!(matches!(
        d.boot().unwrap().upgrade,
        UpgradeAction::Refused(UpgradeRefusal::Rollback { .. })
    ));
}

#[test]
fn attack_test_image_never_moves_the_counter_so_a_revert_stays_possible() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), false);
    assert_eq!(d.boot().unwrap().security_counter.after, 1);
    let r = d.boot().unwrap();
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_a()));
    assert_eq!(r.security_counter.after, 1);
}

/// A flash whose `fail_at`-th read fails with a power loss, to check that no read failure is
/// ever taken for a bad image. The rail stays up, so a bootloader that mistook the failure for
/// a bad image would go on and mark the candidate: the test would see it.
struct BrownOut<'a> {
    flash: &'a mut SimFlash,
    reads: usize,
    fail_at: usize,
}

impl ErrorType for BrownOut<'_> {
    type Error = HalError;
}

impl ReadNorFlash for BrownOut<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), HalError> {
        self.reads += 1;
        if self.reads == self.fail_at {
            return Err(HalError::PowerLoss);
        }
        self.flash.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl NorFlash for BrownOut<'_> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 1;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), HalError> {
        self.flash.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), HalError> {
        self.flash.write(offset, bytes)
    }
}

impl Flash for BrownOut<'_> {
    fn write_size(&self) -> usize {
        self.flash.write_size()
    }
    fn erase_size(&self) -> usize {
        self.flash.erase_size()
    }
    fn erased_value(&self) -> u8 {
        self.flash.erased_value()
    }
}

#[test]
fn attack_brown_out_during_verification_never_gets_a_good_image_refused() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), false);
    let start = d.sim.snapshot();
    let mut fail_at = 1;
    loop {
        d.sim.restore(&start).unwrap();
        let mut flash = BrownOut {
            flash: &mut d.sim.flash,
            reads: 0,
            fail_at,
        };
        let r = castellan_boot::boot(
            &mut flash,
            &mut d.sim.otp,
            &mut d.sim.uds,
            &d.layout,
            &d.config,
        );
        match r {
            Err(BootError::PowerLoss) => {}
            Ok(_) => break,
            Err(e) => panic!("read #{fail_at} failing gave {e}"),
        }
        // Whatever was cut, the candidate was not refused or marked: the next boot installs B,
        // or reverts to A when the cut came after the test swap had completed (the test image
        // had its one boot).
        d.sim.power_cycle();
        assert_ne!(d.trailer(d.layout.secondary).swap_type, SwapType::Fail);
        let r = d.boot().unwrap();
        let ran_b = r.application.digest.as_bytes() == digest_of(&image_b());
        let reverted = r.upgrade
            == UpgradeAction::Installed {
                kind: castellan_boot::InstallKind::Revert,
                resumed: false,
            };
        assert!(ran_b || reverted, "read #{fail_at}: {:?}", r.upgrade);
        fail_at += 1;
    }
    assert!(
        fail_at > 20,
        "the boot reads the flash only {fail_at} times"
    );
}
