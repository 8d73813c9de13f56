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

// The stage's steps run in frames of their own (`inline(never)`), one after the other, so that
// the deepest calls (the signature check, the DICE derivation) have only the stage's small
// results beneath them, not each other's state: this is the deepest path of a small ROM
// (docs/benchmarks.md, "ROM stage footprint"). Only the measurement passes between them.
fn rom_inner<F: Flash, O: OtpFuses, U: HardwareUniqueSecret>(
    flash: &mut F,
    otp: &mut O,
    uds: &mut U,
    bootloader: Partition,
) -> Result<RomHandoff, BootError> {
    let (lifecycle, root) = gate(flash, otp, bootloader)?;
    let measurement = measured_image(flash, bootloader, root)?;
    enforce_counter(otp, measurement.security_counter)?;
    let dice_mode = lifecycle.dice_mode();
    let cdis = bootloader_cdis(uds, &measurement, dice_mode)?;
    Ok(RomHandoff {
        lifecycle,
        dice_mode,
        bootloader: measurement,
        cdis,
    })
}

/// The lifecycle gate: the OTP's shape, the partition, a lifecycle that may boot, a root-key
/// hash, and (secured) locked key fuses. Gives the lifecycle and the root-key hash.
#[inline(never)]
fn gate<F: Flash, O: OtpFuses>(
    flash: &F,
    otp: &mut O,
    bootloader: Partition,
) -> Result<(Lifecycle, [u8; 32]), BootError> {
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
    Ok((lifecycle, root))
}

/// The bootloader's anti-rollback counter: an image below the stored counter is refused; a
/// verified, newer one raises it (the bootloader has no test/revert cycle: it is confirmed by
/// booting it).
#[inline(never)]
fn enforce_counter<O: OtpFuses>(otp: &mut O, image: Option<u32>) -> Result<(), BootError> {
    let counter = image.unwrap_or(0);
    let stored = read_security_counter(otp, CounterId::Bootloader)?;
    if counter < stored {
        return Err(BootError::BootloaderRollback {
            image: counter,
            stored,
        });
    }
    let target = counter.min(security_counter_max(otp)?);
    if target > stored {
        raise_security_counter(otp, CounterId::Bootloader, target)?;
    }
    Ok(())
}

/// The measurement of the bootloader image, verified against the root-key hash, in a frame of
/// its own: the signature check, the deepest call, then has only the verifier's state beneath
/// it, and only the measurement (not the whole verification result) comes back.
#[inline(never)]
fn measured_image<F: Flash>(
    flash: &mut F,
    bootloader: Partition,
    root: [u8; 32],
) -> Result<Measurement, BootError> {
    let mut src = SlotReader::new(flash, bootloader);
    let r = castellan_image::verify(&mut src, TrustedKey::Sha256OfSpki(root));
    let image = src.split(r)?.map_err(BootError::BootloaderRejected)?;
    Measurement::of(flash, bootloader, &image, "BL")
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
