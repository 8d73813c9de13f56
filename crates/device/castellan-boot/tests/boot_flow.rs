//! The boot chain's behaviour: measurements, DICE, UDS lock, and the upgrade life cycle
//! (test, confirm, revert, permanent, overwrite-only) on every flash geometry.

mod common;

use castellan_boot::{
    AppKey, InstallKind, JournalState, Lifecycle, UpgradeAction, UpgradeMode, program_app_key_hash,
    read_journal,
};
use castellan_dice::{
    Config, HIDDEN_SIZE, InputValues, Mode, measurement_to_authority_hash,
    measurement_to_code_hash, rom_stage_cdis,
};
use castellan_hal::HardwareUniqueSecret;
use castellan_image::trailer::{FlagState, SwapType};
use castellan_image::{PublicKeyFormat, SignOptions, Version, signer_id};
use castellan_sim::FlashConfig;
use common::*;

fn installed(kind: InstallKind) -> UpgradeAction {
    UpgradeAction::Installed {
        kind,
        resumed: false,
    }
}

#[test]
fn fresh_device_boots_the_primary_and_reports_what_it_measured() {
    let mut d = Dev::installed(geometry(4, 0xFF), &image_a());
    let r = d.boot().unwrap();
    assert_eq!(r.lifecycle, Lifecycle::Secured);
    assert_eq!(r.dice_mode, Mode::Normal);
    assert_eq!(r.upgrade, UpgradeAction::None);
    assert!(
        r.confirmed,
        "a factory image without trailer is not a test image"
    );
    assert_eq!(r.bootloader.sw_type.as_str(), "BL");
    assert_eq!(
        r.bootloader.digest.as_bytes(),
        digest_of(&bootloader_image())
    );
    assert_eq!(r.application.sw_type.as_str(), "APP");
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_a()));
    assert_eq!(r.application.signer_id, root_hash());
    assert_eq!(r.application.version, Version::new(1, 0, 0, 0));
    assert_eq!(r.application.security_counter, Some(1));
    // The factory image is confirmed: the counter moves from 0 to its value.
    assert_eq!(
        (r.security_counter.before, r.security_counter.after),
        (0, 1)
    );
    let record: Vec<_> = r
        .boot_record
        .iter()
        .map(|m| m.sw_type.as_str().to_owned())
        .collect();
    assert_eq!(record, ["BL", "APP"]);
}

#[test]
fn dice_cdis_are_open_dice_derivations_of_the_uds_and_both_measurements() {
    let mut d = Dev::provisioned(geometry(8, 0xFF));
    let r = d.boot().unwrap();
    let uds = d.sim.uds.secret_for_tests();
    let bl = rom_stage_cdis(
        &uds,
        r.bootloader.digest.as_bytes(),
        &r.bootloader.signer_id,
        Mode::Normal,
    )
    .unwrap();
    let app = bl
        .derive_next(&InputValues {
            code_hash: measurement_to_code_hash(r.application.digest.as_bytes()),
            code_descriptor: &[],
            config: Config::Inline(castellan_boot::BOOTLOADER_STAGE_CONFIG),
            authority_hash: measurement_to_authority_hash(&r.application.signer_id),
            authority_descriptor: &[],
            mode: Mode::Normal,
            hidden: [0; HIDDEN_SIZE],
        })
        .unwrap();
    assert_eq!(r.cdis.attest(), app.attest());
    assert_eq!(r.cdis.seal(), app.seal());
    assert_ne!(
        r.cdis.attest(),
        bl.attest(),
        "the bootloader's own CDIs are not handed over"
    );

    // An upgrade changes CDI_Attest but not CDI_Seal (same signer, same mode).
    d.stage(&image_b(), true);
    let r2 = d.boot().unwrap();
    assert_ne!(r2.cdis.attest(), r.cdis.attest());
    assert_eq!(r2.cdis.seal(), r.cdis.seal());
}

#[test]
fn the_uds_is_locked_after_the_rom_stage_whatever_the_outcome() {
    let mut d = Dev::provisioned(geometry(1, 0xFF));
    d.boot().unwrap();
    assert!(d.sim.uds.is_locked());
    let mut out = [0u8; 32];
    assert!(d.sim.uds.read(&mut out).is_err());
    // A refused bootloader leaves it locked too.
    d.poke(d.layout.bootloader, 40, 0x01);
    assert!(d.boot().is_err());
    assert!(d.sim.uds.is_locked());
}

#[test]
fn report_display_names_each_stage_and_never_shows_the_cdis() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    let r = d.boot().unwrap();
    let text = format!("{r}\n{r:?}");
    assert!(text.contains("rom:          verified BL 1.0.0+0"), "{text}");
    assert!(
        text.contains("bootloader:   verified APP 1.0.0+0"),
        "{text}"
    );
    assert!(text.contains("secured (0x3000)"), "{text}");
    for cdi in [r.cdis.attest(), r.cdis.seal()] {
        let hex: String = cdi.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex[..16]), "a CDI is printed");
    }
}

/// Test upgrade, reboot without confirmation (revert), then a confirmed upgrade.
fn upgrade_cycle(flash: FlashConfig) {
    let (a, b) = (image_a(), image_b());
    let mut d = Dev::provisioned(flash);
    d.stage(&b, false);
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, installed(InstallKind::Test), "{flash:?}");
    assert_eq!(r.application.digest.as_bytes(), digest_of(&b));
    assert!(!r.confirmed);
    assert_eq!(
        r.security_counter.after, 1,
        "an unconfirmed image does not move the counter"
    );
    assert!(d.holds(d.layout.primary, &b) && d.holds(d.layout.secondary, &a));
    assert!(!d.trailer(d.layout.secondary).is_upgrade_request());
    assert_eq!(
        read_journal(&mut d.sim.flash, &d.layout).unwrap(),
        JournalState::Done {
            kind: SwapType::Test
        }
    );

    // Reset without confirmation: revert.
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, installed(InstallKind::Revert));
    assert_eq!(r.application.digest.as_bytes(), digest_of(&a));
    assert!(r.confirmed);
    assert!(d.holds(d.layout.primary, &a) && d.holds(d.layout.secondary, &b));
    assert_eq!(d.boot().unwrap().upgrade, UpgradeAction::None);

    // Again, and this time the application confirms.
    d.stage(&b, false);
    assert_eq!(d.boot().unwrap().upgrade, installed(InstallKind::Test));
    d.confirm();
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, UpgradeAction::None);
    assert!(r.confirmed);
    assert_eq!(
        (r.security_counter.before, r.security_counter.after),
        (1, 2)
    );
    assert_eq!(d.trailer(d.layout.primary).image_ok, FlagState::Set);
    let r = d.boot().unwrap();
    assert_eq!(r.application.digest.as_bytes(), digest_of(&b));
    assert_eq!(d.counter(), 2);
}

#[test]
fn test_upgrade_runs_once_reverts_unless_confirmed_on_every_geometry() {
    for flash in DEVICE.geometries() {
        upgrade_cycle(flash);
    }
}

#[test]
fn permanent_upgrade_is_confirmed_at_once() {
    let mut d = Dev::provisioned(geometry(16, 0x00));
    d.stage(&image_b(), true);
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, installed(InstallKind::Permanent));
    assert!(r.confirmed);
    assert_eq!(r.security_counter.after, 2);
    let r = d.boot().unwrap();
    assert_eq!(r.upgrade, UpgradeAction::None);
    assert_eq!(r.application.digest.as_bytes(), digest_of(&image_b()));
    assert!(
        d.holds(d.layout.secondary, &image_a()),
        "the old image is kept"
    );
}

#[test]
fn overwrite_only_copies_verifies_confirms_then_erases_the_candidate() {
    for flash in [geometry(1, 0xFF), geometry(16, 0x00)] {
        let mut d = Dev::provisioned(flash).with_mode(UpgradeMode::OverwriteOnly);
        d.stage(&image_b(), false);
        let r = d.boot().unwrap();
        assert_eq!(r.upgrade, installed(InstallKind::Overwrite));
        assert!(r.confirmed);
        assert_eq!(r.security_counter.after, 2);
        assert!(d.holds(d.layout.primary, &image_b()));
        let s = d.trailer(d.layout.secondary);
        assert!(!s.is_upgrade_request());
        assert_eq!(
            s.swap_type,
            SwapType::None,
            "the request is marked consumed"
        );
        assert!(
            !d.holds(d.layout.secondary, &image_b()[..64]),
            "the candidate is erased"
        );
        assert_eq!(d.boot().unwrap().upgrade, UpgradeAction::None);
    }
}

#[test]
fn overwrite_only_without_scratch_or_status_partitions() {
    let mut d = Dev::provisioned(geometry(4, 0xFF)).with_mode(UpgradeMode::OverwriteOnly);
    d.layout.scratch = None;
    d.layout.status = None;
    d.stage(&image_b(), false);
    assert_eq!(d.boot().unwrap().upgrade, installed(InstallKind::Overwrite));
    // Swap mode needs them.
    d.config.upgrade = UpgradeMode::Swap;
    assert!(matches!(
        d.boot(),
        Err(castellan_boot::BootError::Layout(_))
    ));
}

#[test]
fn the_measurement_type_comes_from_the_boot_record_tlv() {
    let img = sign_with(
        &root_key(),
        SignOptions {
            version: Version::new(2, 0, 0, 0),
            security_counter: Some(1),
            boot_record: Some("NSPE".into()),
            public_key_format: PublicKeyFormat::Full,
            ..SignOptions::default()
        },
        900,
        0x33,
    );
    let mut d = Dev::installed(geometry(4, 0xFF), &img);
    let r = d.boot().unwrap();
    assert_eq!(r.application.sw_type.as_str(), "NSPE");
    assert_eq!(r.application.version, Version::new(2, 0, 0, 0));
}

#[test]
fn an_application_key_in_otp_replaces_the_root_key_for_slot_images() {
    let app_key = key(0x22);
    let mine = image(&app_key, Version::new(1, 0, 0, 0), 1, 800, 0x44);
    let mut d = Dev::installed(geometry(4, 0xFF), &mine);
    // Before the app key is burnt, the root key is the only one trusted.
    assert!(d.boot().is_err());
    let mut d = Dev::blank(geometry(4, 0xFF));
    castellan_boot::program_root_key_hash(&mut d.sim.otp, &root_hash()).unwrap();
    program_app_key_hash(&mut d.sim.otp, &signer_id(&app_key.public_spki_der())).unwrap();
    castellan_boot::advance_lifecycle(&mut d.sim.otp, Lifecycle::Secured).unwrap();
    write_partition(&mut d.sim.flash, d.layout.bootloader, &bootloader_image());
    write_partition(&mut d.sim.flash, d.layout.primary, &mine);
    let r = d.boot().unwrap();
    assert_eq!(
        r.application.signer_id,
        signer_id(&app_key.public_spki_der())
    );
    assert_eq!(r.bootloader.signer_id, root_hash());
    // Root-signed images are no longer accepted in the slots.
    d.stage(&image_b(), false);
    assert!(matches!(
        d.boot().unwrap().upgrade,
        UpgradeAction::Refused(_)
    ));
}

#[test]
fn a_built_in_key_accepts_images_that_name_it_by_hash() {
    let spki = root_key().public_spki_der();
    let spki: &'static [u8] = Box::leak(spki.into_boxed_slice());
    let by_hash = sign_with(
        &root_key(),
        SignOptions {
            version: Version::new(1, 0, 0, 0),
            security_counter: Some(1),
            ..SignOptions::default()
        },
        700,
        0x55,
    );
    let mut d = Dev::installed(geometry(4, 0xFF), &by_hash);
    assert!(
        d.boot().is_err(),
        "the OTP key hash alone cannot check a KEYHASH image"
    );
    d.config.app_key = AppKey::Spki(spki);
    let r = d.boot().unwrap();
    assert_eq!(r.application.signer_id, root_hash());
}

#[test]
fn tools_can_measure_a_slot_without_booting() {
    let mut d = Dev::provisioned(geometry(4, 0xFF));
    d.stage(&image_b(), false);
    d.sim.power_cycle();
    let key = castellan_boot::app_trusted_key(&mut d.sim.otp, &d.config).unwrap();
    let m = castellan_boot::measure_slot(&mut d.sim.flash, d.layout.secondary, key)
        .unwrap()
        .unwrap();
    assert_eq!(m.version, Version::new(1, 1, 0, 0));
    assert_eq!(m.digest.as_bytes(), digest_of(&image_b()));
    let scratch = d.layout.scratch.unwrap();
    let none = castellan_boot::measure_slot(&mut d.sim.flash, scratch, key).unwrap();
    assert!(matches!(
        none,
        Err(castellan_image::ImageError::BadMagic { .. })
    ));
    // Nothing was installed by looking.
    assert!(d.trailer(d.layout.secondary).is_upgrade_request());
}
