//! The bootloader: the second stage of the chain of trust. It takes the ROM stage's hand-off
//! (lifecycle, DICE CDIs, the bootloader's own measurement), runs
//! `castellan_boot::bootloader_stage` on the board's flash and OTP — resume or perform a swap,
//! refuse a bad or older candidate, revert an unconfirmed test image, verify the primary slot,
//! enforce and raise the anti-rollback counter, derive the next CDIs — then RAM-loads the two
//! halves of the primary image (secure partition, non-secure application), checks the copies
//! against the verified digest, leaves the boot record and CDIs in the hand-off page and starts
//! the secure partition.
#![no_std]
#![no_main]

use castellan_boot::{
    AppKey, BootConfig, FlashLayout, Lifecycle, Measurement, RomHandoff, SwType, UpgradeAction,
    UpgradeMode,
};
use castellan_dice::{Cdis, Mode};
use castellan_gate::upgrade;
use castellan_image::{HashAlg, ImageDigest};
use castellan_platform_an505::handoff::{
    self, Handoff, MeasurementRecord, STAGE_BOOTLOADER, STAGE_ROM,
};
use castellan_platform_an505::load::{self, Segment};
use castellan_platform_an505::map::{
    NS_EXEC_SECURE_ALIAS, NS_MAX, PART_BOOTLOADER, PART_PRIMARY, PART_SCRATCH, PART_SECONDARY,
    PART_STATUS, PAYLOAD_NS_OFFSET, SECURE_EXEC, SECURE_MAX, SECURE_VECTORS,
};
use castellan_platform_an505::{EXIT_BOOT_REFUSED, HostFlash, HostOtp, halt, println};
use cortex_m_rt::entry;

/// The flash layout the bootloader works on.
const LAYOUT: FlashLayout = FlashLayout {
    bootloader: PART_BOOTLOADER,
    primary: PART_PRIMARY,
    secondary: PART_SECONDARY,
    scratch: Some(PART_SCRATCH),
    status: Some(PART_STATUS),
};

fn refuse(msg: core::fmt::Arguments<'_>) -> ! {
    handoff::wipe();
    halt(
        EXIT_BOOT_REFUSED,
        format_args!("[bootloader] REFUSED: {msg}"),
    )
}

/// Rebuilds what the ROM stage handed over; the page is wiped once read.
fn rom_handoff() -> RomHandoff {
    let Some(h) = handoff::read(STAGE_ROM) else {
        refuse(format_args!("no hand-off from the ROM stage"))
    };
    handoff::wipe();
    let lifecycle = match h.lifecycle {
        0x1000 => Lifecycle::AssemblyAndTest,
        0x2000 => Lifecycle::PsaRotProvisioning,
        0x3000 => Lifecycle::Secured,
        _ => Lifecycle::Decommissioned,
    };
    let Some(bl) = h.measurements().first().copied() else {
        refuse(format_args!(
            "the ROM hand-off holds no bootloader measurement"
        ))
    };
    let (Some(sw_type), Some(digest)) = (
        SwType::new(bl.sw_type()),
        ImageDigest::from_bytes(HashAlg::Sha256, &bl.digest),
    ) else {
        refuse(format_args!(
            "the ROM hand-off holds a malformed measurement"
        ))
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
    println!("[bootloader] Castellan bootloader");
    let rom = rom_handoff();
    let mut flash = HostFlash::open().unwrap_or_else(|e| refuse(format_args!("no flash: {e}")));
    let mut otp = HostOtp::open().unwrap_or_else(|e| refuse(format_args!("no OTP: {e}")));
    let config = BootConfig {
        upgrade: UpgradeMode::Swap,
        app_key: AppKey::Otp,
        ..BootConfig::default()
    };
    let report = match castellan_boot::bootloader_stage(&mut flash, &mut otp, &LAYOUT, &config, rom)
    {
        Ok(r) => r,
        Err(e) => refuse(format_args!("{e}")),
    };
    println!("[bootloader] upgrade: {}", report.upgrade);
    println!("[bootloader] verified primary: {}", report.application);
    println!(
        "[bootloader] image {} ({}), anti-rollback counter {} -> {}",
        report.application.version,
        if report.confirmed {
            "confirmed"
        } else {
            "test, not confirmed"
        },
        report.security_counter.before,
        report.security_counter.after
    );

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
    let (code, text) = upgrade_summary(&report.upgrade);
    h.boot.upgrade = code;
    h.boot.resumed = u32::from(matches!(
        report.upgrade,
        UpgradeAction::Installed { resumed: true, .. }
    ));
    h.boot.confirmed = u32::from(report.confirmed);
    h.boot.counter_before = report.security_counter.before;
    h.boot.counter_after = report.security_counter.after;
    if let Some(t) = text {
        let mut w = TextBuf::default();
        let _ = core::fmt::write(&mut w, format_args!("{t}"));
        h.boot.text_len = handoff::put_text(&mut h.boot.text, w.as_str());
    }

    let layout =
        load::layout_of(&mut flash, PART_PRIMARY).unwrap_or_else(|e| refuse(format_args!("{e}")));
    let size = layout.header.img_size;
    if size <= PAYLOAD_NS_OFFSET {
        refuse(format_args!(
            "the primary image holds no non-secure application (payload {size:#x} bytes)"
        ));
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
        refuse(format_args!("{e}"));
    }
    handoff::write(&h);
    println!(
        "[bootloader] starting secure partition (bootloader stack high-water {} bytes)",
        castellan_platform_an505::stack_used()
    );
    // Safety: the verified secure partition was just loaded; its vector table follows the
    // veneer page.
    unsafe { load::start_secure_image(SECURE_VECTORS) }
}

/// The gate's upgrade code and, for refusals, the reason.
fn upgrade_summary(a: &UpgradeAction) -> (u32, Option<&dyn core::fmt::Display>) {
    use castellan_boot::InstallKind;
    match a {
        UpgradeAction::None => (upgrade::NONE, None),
        UpgradeAction::Installed { kind, .. } => (
            match kind {
                InstallKind::Test => upgrade::INSTALLED_TEST,
                InstallKind::Permanent => upgrade::INSTALLED_PERMANENT,
                InstallKind::Revert => upgrade::REVERTED,
                InstallKind::Overwrite => upgrade::INSTALLED_OVERWRITE,
            },
            None,
        ),
        UpgradeAction::Refused(r) => (upgrade::REFUSED, Some(r)),
        UpgradeAction::RevertRefused(r) => (upgrade::REVERT_REFUSED, Some(r)),
    }
}

/// A small text buffer for formatting a refusal into the hand-off page.
struct TextBuf {
    buf: [u8; handoff::TEXT_CAP],
    len: usize,
}

impl Default for TextBuf {
    fn default() -> Self {
        TextBuf {
            buf: [0; handoff::TEXT_CAP],
            len: 0,
        }
    }
}

impl TextBuf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl core::fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let e = c.encode_utf8(&mut tmp);
            let end = self.len + e.len();
            match self.buf.get_mut(self.len..end) {
                Some(d) => d.copy_from_slice(e.as_bytes()),
                None => return Ok(()),
            }
            self.len = end;
        }
        Ok(())
    }
}
