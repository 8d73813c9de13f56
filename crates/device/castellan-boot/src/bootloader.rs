//! The bootloader stage and the whole boot ([`boot`] = ROM stage + bootloader): upgrades, then
//! verification of the primary slot, anti-rollback, the boot record and the application's DICE
//! CDIs, gathered in a [`BootReport`].

use castellan_dice::{Config, HIDDEN_SIZE, INLINE_CONFIG_SIZE, InputValues};
use castellan_dice::{measurement_to_authority_hash, measurement_to_code_hash};
use castellan_hal::{Flash, HardwareUniqueSecret, OtpFuses, Partition};
use castellan_image::{ImageError, TrustedKey};

use crate::flashio::verify_slot;
use crate::otp_map::{
    CounterId, raise_security_counter, read_app_key_hash, read_lifecycle, read_root_key_hash,
    read_security_counter, security_counter_max,
};
use crate::rom::{RomHandoff, rom_stage};
use crate::upgrade::{Ctx, UpgradeMode};
use castellan_slots::BootError;
use castellan_slots::read_slot_trailer;
use castellan_slots::{BootRecord, Measurement};
use castellan_slots::{BootReport, CounterChange, DowngradePolicy, Slot};
use castellan_slots::{FlashLayout, Geometry};

/// The DICE configuration input the bootloader uses for the application layer: byte 0 bit 0
/// (MSB first) "verified boot enabled", as the ROM stage's.
pub const BOOTLOADER_STAGE_CONFIG: [u8; INLINE_CONFIG_SIZE] = {
    let mut c = [0u8; INLINE_CONFIG_SIZE];
    c[0] = 0x80;
    c
};

/// Which key application images (primary and secondary slots) must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppKey<'a> {
    /// The application-key hash in OTP, or the root-key hash when none is programmed. Images
    /// must then carry their public key (PUBKEY TLV, `imgtool sign --public-key-format full`).
    #[default]
    Otp,
    /// A key built into the bootloader (DER SubjectPublicKeyInfo); images may name it by hash.
    Spki(&'a [u8]),
}

/// Bootloader settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootConfig<'a> {
    /// Swap (test/confirm/revert) or overwrite-only upgrades.
    pub upgrade: UpgradeMode,
    /// The key application images are verified with.
    pub app_key: AppKey<'a>,
    /// Which lower-version candidates are refused.
    pub downgrade: DowngradePolicy,
}

/// The key application images are verified with under `config` (what [`boot`] uses): the
/// built-in key, or the application-key hash in OTP, or else the root-key hash.
pub fn app_trusted_key<'a, O: OtpFuses>(
    otp: &mut O,
    config: &BootConfig<'a>,
) -> Result<TrustedKey<'a>, BootError> {
    if let AppKey::Spki(der) = config.app_key {
        return Ok(TrustedKey::Spki(der));
    }
    if let Some(h) = read_app_key_hash(otp)? {
        return Ok(TrustedKey::Sha256OfSpki(h));
    }
    match read_root_key_hash(otp)? {
        Some(h) => Ok(TrustedKey::Sha256OfSpki(h)),
        None => Err(BootError::RootKeyNotProvisioned {
            lifecycle: read_lifecycle(otp)?,
        }),
    }
}

/// Verifies and measures the image in `part` without booting anything (for tools that show
/// what a device holds). The outer error is a flash failure, the inner one the image's verdict.
pub fn measure_slot<F: Flash>(
    flash: &mut F,
    part: Partition,
    key: TrustedKey<'_>,
) -> Result<Result<Measurement, ImageError>, BootError> {
    let g = Geometry::of(flash)?;
    match verify_slot(flash, part, &g, key)? {
        Ok(v) => Ok(Ok(Measurement::of(flash, part, &v, "APP")?)),
        Err(e) => Ok(Err(e)),
    }
}

/// Boots: the ROM stage, then the bootloader stage.
pub fn boot<F: Flash, O: OtpFuses, U: HardwareUniqueSecret>(
    flash: &mut F,
    otp: &mut O,
    uds: &mut U,
    layout: &FlashLayout,
    config: &BootConfig<'_>,
) -> Result<BootReport, BootError> {
    let rom = rom_stage(flash, otp, uds, layout.bootloader)?;
    bootloader_stage(flash, otp, layout, config, rom)
}

/// The bootloader stage, given what the ROM stage handed over.
pub fn bootloader_stage<F: Flash, O: OtpFuses>(
    flash: &mut F,
    otp: &mut O,
    layout: &FlashLayout,
    config: &BootConfig<'_>,
    rom: RomHandoff,
) -> Result<BootReport, BootError> {
    let swap = config.upgrade == UpgradeMode::Swap;
    let g = layout.validate(flash, swap)?;
    let key = app_trusted_key(otp, config)?;
    let before = read_security_counter(otp, CounterId::Application)?;

    let upgrade = {
        let mut ctx = Ctx {
            flash: &mut *flash,
            otp: &mut *otp,
            layout,
            g,
            key,
            downgrade: config.downgrade,
        };
        if swap {
            ctx.swap_mode()?
        } else {
            ctx.overwrite_mode()?
        }
    };

    let image = verify_slot(flash, layout.primary, &g, key)?.map_err(BootError::PrimaryRejected)?;
    let counter = image.security_counter.unwrap_or(0);
    let stored = read_security_counter(otp, CounterId::Application)?;
    if counter < stored {
        return Err(BootError::PrimaryRollback {
            image: counter,
            stored,
        });
    }
    let confirmed = !swap || !read_slot_trailer(flash, &g, layout.primary)?.is_unconfirmed_test();
    // Only a confirmed image moves the counter: an unconfirmed test image can still be
    // reverted to the previous one, which must stay bootable.
    let target = counter.min(security_counter_max(otp)?);
    if confirmed && target > stored {
        raise_security_counter(otp, CounterId::Application, target)?;
    }
    let after = read_security_counter(otp, CounterId::Application)?;

    let application = Measurement::of(flash, layout.primary, &image, "APP")?;
    let mut boot_record = BootRecord::new();
    boot_record.push(rom.bootloader)?;
    boot_record.push(application)?;

    let input = InputValues {
        code_hash: measurement_to_code_hash(application.digest.as_bytes()),
        code_descriptor: &[],
        config: Config::Inline(BOOTLOADER_STAGE_CONFIG),
        authority_hash: measurement_to_authority_hash(&application.signer_id),
        authority_descriptor: &[],
        mode: rom.dice_mode,
        hidden: [0; HIDDEN_SIZE],
    };
    let cdis = rom.cdis.derive_next(&input)?;
    Ok(BootReport {
        lifecycle: rom.lifecycle,
        dice_mode: rom.dice_mode,
        bootloader: rom.bootloader,
        application,
        slot: Slot::Primary,
        upgrade,
        confirmed,
        security_counter: CounterChange { before, after },
        boot_record,
        cdis,
    })
}
