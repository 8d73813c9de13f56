//! The bootloader: the second stage of the chain of trust. It takes the ROM stage's hand-off
//! (lifecycle, DICE CDIs, the bootloader's own measurement), runs
//! `castellan_boot::bootloader_stage` on the board's flash and OTP — resume or perform a swap,
//! refuse a bad or older candidate, revert an unconfirmed test image, verify the primary slot,
//! enforce and raise the anti-rollback counter, derive the next CDIs — then RAM-loads the two
//! halves of the primary image (secure partition, non-secure application), checks the copies
//! against the verified digest, leaves the boot record and CDIs in the hand-off page and starts
//! the secure partition.
//!
//! No formatting machinery is linked in: lines and refusals are written piece by piece
//! ([`say`]), and the platform's `quiet-panic` handler never formats a panic message
//! (docs/benchmarks.md, "Bootloader and secure partition").
#![no_std]
#![no_main]

mod say;

use castellan_boot::{
    AppKey, BootConfig, BootError, FlashLayout, Lifecycle, Measurement, RomHandoff, SwType,
    UpgradeAction, UpgradeMode,
};
use castellan_dice::{Cdis, Mode};
use castellan_gate::upgrade;
use castellan_image::{HashAlg, ImageDigest};
use castellan_platform_an505::console::Console;
use castellan_platform_an505::handoff::{
    self, Handoff, MeasurementRecord, STAGE_BOOTLOADER, STAGE_ROM,
};
use castellan_platform_an505::load::LoadError;
use castellan_platform_an505::load::{self, Segment};
use castellan_platform_an505::map::{
    NS_EXEC_SECURE_ALIAS, NS_MAX, PART_BOOTLOADER, PART_PRIMARY, PART_SCRATCH, PART_SECONDARY,
    PART_STATUS, PAYLOAD_NS_OFFSET, SECURE_EXEC, SECURE_MAX, SECURE_VECTORS,
};
use castellan_platform_an505::{EXIT_BOOT_REFUSED, HostFlash, HostOtp, semihosting};
use cortex_m_rt::entry;
use say::Out as _;

/// The flash layout the bootloader works on.
const LAYOUT: FlashLayout = FlashLayout {
    bootloader: PART_BOOTLOADER,
    primary: PART_PRIMARY,
    secondary: PART_SECONDARY,
    scratch: Some(PART_SCRATCH),
    status: Some(PART_STATUS),
};

/// Stops the device with `[bootloader] REFUSED: <what say_why writes>`; the hand-off page is
/// wiped first.
fn refuse_with(say_why: impl FnOnce(&mut Console)) -> ! {
    handoff::wipe();
    let mut out = Console;
    out.text("[bootloader] REFUSED: ");
    say_why(&mut out);
    out.text("\n");
    semihosting::exit(EXIT_BOOT_REFUSED)
}

/// Stops the device with a fixed reason.
fn refuse(reason: &str) -> ! {
    refuse_with(|o| o.put(reason))
}

/// Stops the device because of a boot refusal.
fn refuse_boot(e: &BootError) -> ! {
    refuse_with(|o| say::boot_error(o, e))
}

/// Stops the device because the primary image could not be loaded.
fn refuse_load(e: &LoadError) -> ! {
    refuse_with(|o| {
        o.put(e.reason());
        if let Some(image) = e.image_error() {
            o.put(": ");
            o.put(image.reason());
        }
    })
}

/// Rebuilds what the ROM stage handed over; the page is wiped once read.
fn rom_handoff() -> RomHandoff {
    let Some(h) = handoff::read(STAGE_ROM) else {
        refuse("no hand-off from the ROM stage")
    };
    handoff::wipe();
    let lifecycle = match h.lifecycle {
        0x1000 => Lifecycle::AssemblyAndTest,
        0x2000 => Lifecycle::PsaRotProvisioning,
        0x3000 => Lifecycle::Secured,
        _ => Lifecycle::Decommissioned,
    };
    let Some(bl) = h.measurements().first().copied() else {
        refuse("the ROM hand-off holds no bootloader measurement")
    };
    let (Some(sw_type), Some(digest)) = (
        SwType::new(bl.sw_type()),
        ImageDigest::from_bytes(HashAlg::Sha256, &bl.digest),
    ) else {
        refuse("the ROM hand-off holds a malformed measurement")
    };
    RomHandoff {
        lifecycle,
        dice_mode: Mode::from_byte(h.dice_mode as u8),
        bootloader: Measurement {
            sw_type,
            digest,
            signer_id: bl.signer_id,
            version: bl.version(),
            security_counter: (bl.has_security_counter != 0).then_some(bl.security_counter),
        },
        cdis: Cdis::from_bytes(h.cdi_attest, h.cdi_seal),
    }
}

fn record(m: &Measurement) -> MeasurementRecord {
    MeasurementRecord::new(
        m.sw_type.as_str(),
        m.digest.as_bytes(),
        &m.signer_id,
        m.version,
        m.security_counter,
    )
}

#[entry]
fn main() -> ! {
    Console.text("[bootloader] Castellan bootloader\n");
    let rom = rom_handoff();
    let mut flash = HostFlash::open().unwrap_or_else(|_| refuse("no flash file"));
    let mut otp = HostOtp::open().unwrap_or_else(|_| refuse("no OTP file"));
    let config = BootConfig {
        upgrade: UpgradeMode::Swap,
        app_key: AppKey::Otp,
        ..BootConfig::default()
    };
    let report = match castellan_boot::bootloader_stage(&mut flash, &mut otp, &LAYOUT, &config, rom)
    {
        Ok(r) => r,
        Err(e) => refuse_boot(&e),
    };
    let mut out = Console;
    out.text("[bootloader] upgrade: ");
    say::upgrade(&mut out, &report.upgrade);
    out.text("\n[bootloader] verified primary: ");
    say::measurement(&mut out, &report.application);
    out.text("\n[bootloader] image ");
    say::version(&mut out, &report.application.version);
    out.text(if report.confirmed {
        " (confirmed)"
    } else {
        " (test, not confirmed)"
    })
    .text(", anti-rollback counter ")
    .decimal(report.security_counter.before)
    .text(" -> ")
    .decimal(report.security_counter.after)
    .text("\n");

    let mut h = Handoff {
        stage: STAGE_BOOTLOADER,
        lifecycle: u32::from(report.lifecycle.psa_value()),
        dice_mode: u32::from(report.dice_mode.to_byte()),
        cdi_attest: *report.cdis.attest(),
        cdi_seal: *report.cdis.seal(),
        ..Handoff::default()
    };
    let mut n = 0;
    for (slot, m) in h.measurements.iter_mut().zip(report.boot_record.iter()) {
        *slot = record(m);
        n += 1;
    }
    h.measurement_count = n;
    h.boot.upgrade = upgrade_code(&report.upgrade);
    h.boot.resumed = u32::from(matches!(
        report.upgrade,
        UpgradeAction::Installed { resumed: true, .. }
    ));
    h.boot.confirmed = u32::from(report.confirmed);
    h.boot.counter_before = report.security_counter.before;
    h.boot.counter_after = report.security_counter.after;
    if let UpgradeAction::Refused(r) | UpgradeAction::RevertRefused(r) = &report.upgrade {
        let mut text = say::TextOut::new(&mut h.boot.text);
        say::refusal(&mut text, r);
        h.boot.text_len = text.len();
    }

    let layout = load::layout_of(&mut flash, PART_PRIMARY).unwrap_or_else(|e| refuse_load(&e));
    let size = layout.header.img_size;
    if size <= PAYLOAD_NS_OFFSET {
        refuse_with(|o| {
            o.put("the primary image holds no non-secure application (payload ");
            o.hex_num(size.into());
            o.put(" bytes)");
        });
    }
    let segments = [
        Segment {
            payload_offset: 0,
            len: PAYLOAD_NS_OFFSET,
            dest: SECURE_EXEC,
            window: SECURE_MAX,
        },
        Segment {
            payload_offset: PAYLOAD_NS_OFFSET,
            len: size - PAYLOAD_NS_OFFSET,
            dest: NS_EXEC_SECURE_ALIAS,
            window: NS_MAX,
        },
    ];
    let digest = report.application.digest;
    drop(report);
    // Safety: both windows are code SRAM outside this image (bootloader at 0x1004_0000).
    let loaded = unsafe { load::load(&mut flash, PART_PRIMARY, &segments, digest.as_bytes()) };
    if let Err(e) = loaded {
        refuse_load(&e);
    }
    handoff::write(&h);
    Console
        .text("[bootloader] starting secure partition (bootloader stack high-water ")
        .decimal(castellan_platform_an505::stack_used())
        .text(" bytes)\n");
    // Safety: the verified secure partition was just loaded; its vector table follows the
    // veneer page.
    unsafe { load::start_secure_image(SECURE_VECTORS) }
}

/// The gate's upgrade code.
fn upgrade_code(a: &UpgradeAction) -> u32 {
    use castellan_boot::InstallKind;
    match a {
        UpgradeAction::None => upgrade::NONE,
        UpgradeAction::Installed { kind, .. } => match kind {
            InstallKind::Test => upgrade::INSTALLED_TEST,
            InstallKind::Permanent => upgrade::INSTALLED_PERMANENT,
            InstallKind::Revert => upgrade::REVERTED,
            InstallKind::Overwrite => upgrade::INSTALLED_OVERWRITE,
        },
        UpgradeAction::Refused(_) => upgrade::REFUSED,
        UpgradeAction::RevertRefused(_) => upgrade::REVERT_REFUSED,
    }
}
