//! The ROM stage: the immutable first code. It applies the lifecycle policy, verifies the
//! bootloader against the root-key hash in OTP, enforces the bootloader's anti-rollback
//! counter, derives the bootloader's DICE CDIs from the UDS and locks the UDS away.
//!
//! ```text
//!  OTP lifecycle ──▶ gate (decommissioned: stop; secured: key fuses must be locked)
//!  OTP root-key hash ──▶ verify(bootloader partition, Sha256OfSpki(hash)) ──▶ Measurement "BL"
//!  OTP counter 1 ≤ image SEC_CNT ──▶ raise counter 1
//!  UDS ──▶ rom_stage_cdis(UDS, BL digest, signer id, mode) ──▶ CDIs ──▶ bootloader
//!  UDS locked until reset (on every path, error or not)
//! ```

use castellan_dice::{Cdis, Mode, rom_stage_cdis};
use castellan_hal::{Flash, HardwareUniqueSecret, OtpFuses, Partition, UDS_LEN};
use castellan_image::TrustedKey;
use zeroize::Zeroize;

use crate::otp_map::{
    CounterId, check_otp, key_regions_locked, raise_security_counter, read_lifecycle,
    read_root_key_hash, read_security_counter, security_counter_max,
};
use crate::{BootError, Lifecycle};
use castellan_slots::Measurement;
use castellan_slots::SlotReader;

/// What the ROM stage hands to the bootloader.
#[derive(Debug)]
pub struct RomHandoff {
    /// The lifecycle state the ROM booted in.
    pub lifecycle: Lifecycle,
    /// The DICE mode the CDIs were derived with.
    pub dice_mode: Mode,
    /// The verified bootloader.
    pub bootloader: Measurement,
    /// The bootloader's CDIs (secret; wiped on drop).
    pub cdis: Cdis,
}

/// Runs the ROM stage. The UDS is locked when this returns, whatever the result.
pub fn rom_stage<F: Flash, O: OtpFuses, U: HardwareUniqueSecret>(
    flash: &mut F,
    otp: &mut O,
    uds: &mut U,
    bootloader: Partition,
) -> Result<RomHandoff, BootError> {
    let r = rom_inner(flash, otp, uds, bootloader);
    uds.lock();
    r
}

// The stage runs in two frames of its own (`inline(never)`), one after the other: the
// verification's state (the image layout, the signature check) is gone from the stack when the
// DICE derivation, the deepest path of a small ROM, runs (docs/benchmarks.md, "ROM stage
// footprint"). Only the measurement passes from one to the other.
fn rom_inner<F: Flash, O: OtpFuses, U: HardwareUniqueSecret>(
    flash: &mut F,
    otp: &mut O,
    uds: &mut U,
    bootloader: Partition,
) -> Result<RomHandoff, BootError> {
    let (lifecycle, measurement) = verify_bootloader(flash, otp, bootloader)?;
    let dice_mode = lifecycle.dice_mode();
    let cdis = bootloader_cdis(uds, &measurement, dice_mode)?;
    Ok(RomHandoff {
        lifecycle,
        dice_mode,
        bootloader: measurement,
        cdis,
    })
}

/// Lifecycle gate, verification against the root-key hash, anti-rollback counter: the
/// verified bootloader's measurement.
#[inline(never)]
fn verify_bootloader<F: Flash, O: OtpFuses>(
    flash: &mut F,
    otp: &mut O,
    bootloader: Partition,
) -> Result<(Lifecycle, Measurement), BootError> {
    check_otp(otp)?;
    bootloader.validate(flash).map_err(|_| {
        BootError::Layout("the bootloader partition must be sector-aligned, inside the flash")
    })?;
    let lifecycle = read_lifecycle(otp)?;
    if !lifecycle.may_boot() {
        return Err(BootError::Decommissioned);
    }
    let root = read_root_key_hash(otp)?.ok_or(BootError::RootKeyNotProvisioned { lifecycle })?;
    if lifecycle == Lifecycle::Secured && !key_regions_locked(otp)? {
        return Err(BootError::KeysNotLocked);
    }

    let mut src = SlotReader::new(flash, bootloader);
    let r = castellan_image::verify(&mut src, TrustedKey::Sha256OfSpki(root));
    let image = src.split(r)?.map_err(BootError::BootloaderRejected)?;

    let counter = image.security_counter.unwrap_or(0);
    let stored = read_security_counter(otp, CounterId::Bootloader)?;
    if counter < stored {
        return Err(BootError::BootloaderRollback {
            image: counter,
            stored,
        });
    }
    // The bootloader has no test/revert cycle: a verified, newer bootloader is confirmed by
    // booting it.
    let target = counter.min(security_counter_max(otp)?);
    if target > stored {
        raise_security_counter(otp, CounterId::Bootloader, target)?;
    }
    let measurement = Measurement::of(flash, bootloader, &image, "BL")?;
    Ok((lifecycle, measurement))
}

/// The bootloader's CDIs from the UDS and its measurement (the verified image's digest and
/// signer id). The UDS copy is wiped before this returns; the caller locks the UDS.
#[inline(never)]
fn bootloader_cdis<U: HardwareUniqueSecret>(
    uds: &mut U,
    bootloader: &Measurement,
    dice_mode: Mode,
) -> Result<Cdis, BootError> {
    let mut secret = [0u8; UDS_LEN];
    let read = uds.read(&mut secret);
    let cdis = read.map_err(BootError::from).and_then(|()| {
        rom_stage_cdis(
            &secret,
            bootloader.digest.as_bytes(),
            &bootloader.signer_id,
            dice_mode,
        )
        .map_err(BootError::from)
    });
    secret.zeroize();
    cdis
}
