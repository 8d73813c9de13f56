//! Castellan's board support for the Arm MPS2+ AN505 (Cortex-M33 with TrustZone-M) as QEMU
//! emulates it. It is the only firmware crate that knows the board:
//!
//! ```text
//!  castellan-boot · castellan-image · castellan-dice · castellan-attest   (unchanged, no_std)
//!        │ generic over castellan-hal traits
//!  ┌─────┴─────────────────────────────────────────────────────────────────────────────┐
//!  │ HostFlash (Flash)   HostOtp (OtpFuses)   HostUds (HardwareUniqueSecret)   DrbgRng │
//!  │ map (memory map, partitions)  handoff (stage to stage)  load (RAM-load + jump)    │
//!  │ tz (SAU, MPC, NSCCFG, TT checks, faults)  cycles (instruction counting)  console  │
//!  └─────┬─────────────────────────────────────────────────────────────────────────────┘
//!        │ semihosting (BKPT 0xAB): host files castellan-flash.bin, castellan-otp.bin, …
//!  QEMU mps2-an505
//! ```
//!
//! Flash and OTP are host files reached through semihosting, so that they persist across resets
//! and QEMU runs; only secure images use this crate. See `docs/firmware.md` for the design and
//! the threat model (semihosting is not a security boundary).
#![no_std]
// TrustZone-M calls into the non-secure world (`extern "cmse-nonsecure-call"`) are a nightly
// feature; the firmware build enables it on the stable toolchain with RUSTC_BOOTSTRAP=1.
#![feature(abi_cmse_nonsecure_call)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

pub mod console;
pub mod cycles;
pub mod flash;
pub mod handoff;
pub mod load;
pub mod map;
pub mod otp;
pub mod rng;
pub mod semihosting;
pub mod tz;

pub use flash::HostFlash;
pub use otp::{HostOtp, HostUds};
pub use rng::DrbgRng;

/// Exit status of a QEMU run: the demo application finished normally.
pub const EXIT_OK: u32 = 0;
/// Exit status: a boot stage refused to continue (bad image, rollback, …).
pub const EXIT_BOOT_REFUSED: u32 = 3;
/// Exit status: the secure side stopped the non-secure world after a fault.
pub const EXIT_NS_FAULT: u32 = 4;
/// Exit status: a secure-side error (hardware, panic).
pub const EXIT_SECURE_ERROR: u32 = 5;
/// Exit status: an injected power cut (see [`flash`]).
pub const EXIT_POWER_CUT: u32 = 6;

/// Prints `msg` and ends the QEMU run with `code`.
pub fn halt(code: u32, msg: core::fmt::Arguments<'_>) -> ! {
    println!("{}", msg);
    semihosting::exit(code)
}

/// Prints `parts` as one line and ends the QEMU run with `code`, without `core::fmt` (the ROM
/// stage's refusals).
pub fn halt_with(code: u32, parts: &[&str]) -> ! {
    let mut out = console::Console;
    for part in parts {
        out.text(part);
    }
    out.text("\n");
    semihosting::exit(code)
}

/// Prints `template` filled with `args` as one line and ends the QEMU run with `code`, without
/// `core::fmt` (the secure partition's failures, descriptions included).
pub fn halt_line(code: u32, template: &str, args: &[castellan_text::Piece<'_>]) -> ! {
    console::line(template, args);
    semihosting::exit(code)
}

#[cfg(all(not(test), not(feature = "quiet-panic")))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    halt(EXIT_SECURE_ERROR, format_args!("[secure] panic: {info}"))
}

/// With `quiet-panic` (the ROM stage) a panic prints a fixed line: the panic's message and
/// location are never formatted, so no formatting code is linked for them.
#[cfg(all(not(test), feature = "quiet-panic"))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    halt_with(EXIT_SECURE_ERROR, &["[secure] panic"])
}

/// The interrupt part of the vector table of a stage that never enables an interrupt (feature
/// `no-interrupts`: every secure image — the ROM stage, the bootloader, the secure partition and
/// the bench; NVIC enables are clear at reset and they set none, and the non-secure side's
/// interrupts go to its own vector table): one entry, to cortex-m-rt's default handler, instead
/// of the 480 of cortex-m-rt's Armv8-M table (1.9 KiB of flash). The image turns on
/// cortex-m-rt's `device` feature, which makes the table its own.
#[cfg(all(not(test), feature = "no-interrupts"))]
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = {
    unsafe extern "C" {
        fn DefaultHandler();
    }
    [DefaultHandler]
};

/// Bytes of stack this image has used so far (its high-water mark).
///
/// Needs cortex-m-rt's `paint-stack` feature in the image: the start-up code paints the whole
/// stack region with `0xCCCC_CCCC`, and this scans up from the stack's far end for the first
/// word that is not paint. (Every secure stage uses the whole secure RAM below the hand-off page
/// as stack, so the figure is what the code needs, not what the memory map reserves.)
pub fn stack_used() -> u32 {
    unsafe extern "C" {
        static _stack_end: u32;
        static _stack_start: u32;
    }
    let lo = (&raw const _stack_end) as u32;
    let hi = (&raw const _stack_start) as u32;
    let mut p = lo;
    // Safety: `_stack_end.._stack_start` is this image's stack region (linker symbols).
    while p < hi && unsafe { core::ptr::read_volatile(p as *const u32) } == 0xcccc_cccc {
        p += 4;
    }
    hi - p
}
