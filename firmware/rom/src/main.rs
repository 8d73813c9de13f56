//! The ROM stage: the immutable first code of the chain of trust (QEMU loads it with `-kernel`;
//! on silicon it would be mask ROM). It runs `castellan_boot::rom_stage` on the board's flash,
//! OTP and UDS — lifecycle gate, bootloader verified against the root-key hash in OTP,
//! bootloader anti-rollback counter, DICE CDIs, UDS locked — then copies the verified bootloader
//! to RAM, checks the copy against the verified digest, leaves the CDIs and the measurement in
//! the hand-off page and starts the bootloader. Any refusal stops the device.
#![no_std]
#![no_main]

use castellan_platform_an505::handoff::{self, Handoff, MeasurementRecord, STAGE_ROM};
use castellan_platform_an505::load::{self, Segment};
use castellan_platform_an505::map::{BOOTLOADER_EXEC, BOOTLOADER_MAX, PART_BOOTLOADER};
use castellan_platform_an505::{EXIT_BOOT_REFUSED, HostFlash, HostOtp, HostUds, halt, println};
use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    // Reset: the UDS lock register opens, the hand-off page is cleared.
    handoff::reset_uds_lock();
    handoff::wipe();
    println!("[rom] Castellan ROM stage, mps2-an505 (Cortex-M33)");
    let mut flash = HostFlash::open()
        .unwrap_or_else(|e| halt(EXIT_BOOT_REFUSED, format_args!("[rom] no flash: {e}")));
    let mut otp = HostOtp::open()
        .unwrap_or_else(|e| halt(EXIT_BOOT_REFUSED, format_args!("[rom] no OTP: {e}")));
    let mut uds = HostUds::new();

    let rom = match castellan_boot::rom_stage(&mut flash, &mut otp, &mut uds, PART_BOOTLOADER) {
        Ok(r) => r,
        Err(e) => halt(EXIT_BOOT_REFUSED, format_args!("[rom] REFUSED: {e}")),
    };
    println!("[rom] lifecycle {}", rom.lifecycle);
    println!("[rom] verified bootloader: {}", rom.bootloader);

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

    let layout = load::layout_of(&mut flash, PART_BOOTLOADER)
        .unwrap_or_else(|e| halt(EXIT_BOOT_REFUSED, format_args!("[rom] REFUSED: {e}")));
    let segments = [Segment {
        payload_offset: 0,
        len: layout.header.img_size,
        dest: BOOTLOADER_EXEC,
        window: BOOTLOADER_MAX,
    }];
    // Safety: the bootloader window 0x1004_0000..+256 KiB is code SRAM outside this image.
    let loaded = unsafe { load::load(&mut flash, PART_BOOTLOADER, &segments, m.digest.as_bytes()) };
    if let Err(e) = loaded {
        halt(EXIT_BOOT_REFUSED, format_args!("[rom] REFUSED: {e}"));
    }
    handoff::write(&h);
    drop(rom);
    println!(
        "[rom] starting bootloader (ROM stack high-water {} bytes)",
        castellan_platform_an505::stack_used()
    );
    // Safety: a verified bootloader was just loaded and checked at BOOTLOADER_EXEC.
    unsafe { load::start_secure_image(BOOTLOADER_EXEC) }
}
