//! The ROM stage: the immutable first code of the chain of trust (QEMU loads it with `-kernel`;
//! on silicon it would be mask ROM). It runs `castellan_boot::rom_stage` on the board's flash,
//! OTP and UDS — lifecycle gate, bootloader verified against the root-key hash in OTP,
//! bootloader anti-rollback counter, DICE CDIs, UDS locked — then copies the verified bootloader
//! to RAM, checks the copy against the verified digest, leaves the CDIs and the measurement in
//! the hand-off page and starts the bootloader. Any refusal stops the device.
//!
//! No formatting machinery is linked in: everything is printed with the console's
//! `text`/`decimal`/`hex` writers, refusals with the errors' fixed `reason` phrases, and the
//! platform's `quiet-panic` handler never formats a panic message (docs/benchmarks.md, "ROM
//! stage footprint").
#![no_std]
#![no_main]

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use castellan_boot::{BootError, RomHandoff};
use castellan_image::ImageError;
use castellan_platform_an505::console::Console;
use castellan_platform_an505::handoff::{self, Handoff, MeasurementRecord, STAGE_ROM};
use castellan_platform_an505::load::{self, Segment};
use castellan_platform_an505::map::{BOOTLOADER_EXEC, BOOTLOADER_MAX, PART_BOOTLOADER};
use castellan_platform_an505::{EXIT_BOOT_REFUSED, HostFlash, HostOtp, HostUds, halt_with};
use cortex_m_rt::entry;
use zeroize::Zeroize;

/// Stops the device with `[rom] REFUSED: <reason>[: <the image's reason>]`.
fn refuse(reason: &str, image: Option<&ImageError>) -> ! {
    match image {
        Some(e) => halt_with(
            EXIT_BOOT_REFUSED,
            &["[rom] REFUSED: ", reason, ": ", e.reason()],
        ),
        None => halt_with(EXIT_BOOT_REFUSED, &["[rom] REFUSED: ", reason]),
    }
}

/// Stops the device because of a boot refusal.
fn refuse_boot(e: &BootError) -> ! {
    refuse(e.reason(), e.image_error())
}

#[entry]
fn main() -> ! {
    // Reset: the UDS lock register opens, the hand-off page is cleared.
    handoff::reset_uds_lock();
    handoff::wipe();
    Console.text("[rom] Castellan ROM stage, mps2-an505 (Cortex-M33)\n");
    let mut flash = HostFlash::open()
        .unwrap_or_else(|_| halt_with(EXIT_BOOT_REFUSED, &["[rom] no flash file"]));
    let otp = open_otp();
    let mut uds = HostUds::new();
    let mut rom = run_stage(&mut flash, otp, &mut uds);
    report(&rom);
    hand_off(&mut flash, &mut rom)
}

/// The OTP driver's state (the fuse image, 300 bytes), kept in a static instead of `main`'s
/// frame, which lies under every other frame of the ROM, the deepest path (the DICE
/// derivation) included.
struct OtpSlot(UnsafeCell<MaybeUninit<HostOtp>>);

// Safety: the only access is `open_otp`'s one write, guarded by `OTP_TAKEN`; the ROM runs on
// one core and takes no interrupt (its table has one entry and it enables none).
unsafe impl Sync for OtpSlot {}

static OTP: OtpSlot = OtpSlot(UnsafeCell::new(MaybeUninit::uninit()));
static OTP_TAKEN: AtomicBool = AtomicBool::new(false);

/// Opens the OTP into [`OTP`]; its own frame, so the fuse image read on the way is not part of
/// `main`'s.
#[inline(never)]
fn open_otp() -> &'static mut HostOtp {
    if OTP_TAKEN.swap(true, Ordering::AcqRel) {
        halt_with(EXIT_BOOT_REFUSED, &["[rom] OTP opened twice"]);
    }
    let otp =
        HostOtp::open().unwrap_or_else(|_| halt_with(EXIT_BOOT_REFUSED, &["[rom] no OTP file"]));
    // Safety: `OTP_TAKEN` was clear, so this is the first and only reference to the slot ever
    // made, and nothing else runs concurrently (one core, no interrupt).
    unsafe { (*OTP.0.get()).write(otp) }
}

// The stage, the report and the hand-off are separate frames (`inline(never)`): the deepest
// path, the DICE derivation inside the stage, then does not also carry the hand-off record and
// the loader's buffer on the stack (docs/benchmarks.md, "ROM stage footprint").

/// `castellan_boot::rom_stage`: lifecycle gate, verification, counter, DICE, UDS locked.
#[inline(never)]
fn run_stage(flash: &mut HostFlash, otp: &mut HostOtp, uds: &mut HostUds) -> RomHandoff {
    castellan_boot::rom_stage(flash, otp, uds, PART_BOOTLOADER).unwrap_or_else(|e| refuse_boot(&e))
}

/// Prints the lifecycle and the verified bootloader's measurement.
#[inline(never)]
fn report(rom: &RomHandoff) {
    let mut out = Console;
    out.text("[rom] lifecycle ")
        .text(rom.lifecycle.name())
        .text("\n");
    let m = &rom.bootloader;
    let v = m.version;
    out.text("[rom] verified bootloader: ")
        .text(m.sw_type.as_str())
        .text(" ")
        .decimal(v.major.into())
        .text(".")
        .decimal(v.minor.into())
        .text(".")
        .decimal(v.revision.into())
        .text("+")
        .decimal(v.build)
        .text(" digest ")
        .hex(m.digest.as_bytes())
        .text(" signer ")
        .hex(&m.signer_id);
    match m.security_counter {
        Some(c) => out.text(" security-counter ").decimal(c).text("\n"),
        None => out.text(" security-counter none\n"),
    };
}

/// Copies the bootloader to RAM, checks the copy, writes the hand-off page, wipes the CDIs
/// and starts it. (`rom` by reference: one copy of the hand-off value in `main`'s frame, not
/// a second one for the move, and that one is wiped.)
#[inline(never)]
fn hand_off(flash: &mut HostFlash, rom: &mut RomHandoff) -> ! {
    let m = &rom.bootloader;
    let mut h = Handoff {
        stage: STAGE_ROM,
        lifecycle: u32::from(rom.lifecycle.psa_value()),
        dice_mode: u32::from(rom.dice_mode.to_byte()),
        cdi_attest: *rom.cdis.attest(),
        cdi_seal: *rom.cdis.seal(),
        measurement_count: 1,
        ..Handoff::default()
    };
    h.measurements[0] = MeasurementRecord::new(
        m.sw_type.as_str(),
        m.digest.as_bytes(),
        &m.signer_id,
        m.version,
        m.security_counter,
    );

    let layout = load::layout_of(flash, PART_BOOTLOADER)
        .unwrap_or_else(|e| refuse(e.reason(), e.image_error()));
    let segments = [Segment {
        payload_offset: 0,
        len: layout.header.img_size,
        dest: BOOTLOADER_EXEC,
        window: BOOTLOADER_MAX,
    }];
    // Safety: the bootloader window 0x1004_0000..+256 KiB is code SRAM outside this image.
    let loaded = unsafe { load::load(flash, PART_BOOTLOADER, &segments, m.digest.as_bytes()) };
    if let Err(e) = loaded {
        refuse(e.reason(), e.image_error());
    }
    handoff::write(&h);
    h.cdi_attest.zeroize();
    h.cdi_seal.zeroize();
    rom.cdis.zeroize();
    Console
        .text("[rom] starting bootloader (ROM stack high-water ")
        .decimal(castellan_platform_an505::stack_used())
        .text(" bytes)\n");
    // Safety: a verified bootloader was just loaded and checked at BOOTLOADER_EXEC.
    unsafe { load::start_secure_image(BOOTLOADER_EXEC) }
}
