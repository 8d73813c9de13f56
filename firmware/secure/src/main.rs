//! The secure partition: the TrustZone secure world that keeps running after boot.
//!
//! It takes the bootloader's hand-off (boot record, CDIs), derives the attestation key, sets up
//! the split of memory (SAU, MPC, NSCCFG), and starts the non-secure application unprivileged.
//! From then on it runs only when the application calls a veneer of the gate ([`gate`]) or
//! when the non-secure side faults ([`faults`]).
#![no_std]
#![no_main]
// `extern "cmse-nonsecure-entry"` is a nightly feature; the firmware build enables it on the
// stable toolchain with RUSTC_BOOTSTRAP=1 (see docs/firmware.md).
#![feature(cmse_nonsecure_entry)]

mod attest;
mod faults;
mod fwu;
mod gate;
mod state;

use castellan_platform_an505::handoff::{self, STAGE_BOOTLOADER};
use castellan_platform_an505::map::{NS_EXEC, VENEER_BASE, VENEER_SIZE};
use castellan_platform_an505::{
    DrbgRng, EXIT_SECURE_ERROR, HostFlash, halt, println, semihosting, tz,
};
use cortex_m_rt::entry;
use zeroize::Zeroize;

#[entry]
fn main() -> ! {
    println!("[secure] Castellan secure partition");
    let Some(mut h) = handoff::read(STAGE_BOOTLOADER) else {
        halt(EXIT_SECURE_ERROR, format_args!("[secure] no hand-off from the bootloader"))
    };
    handoff::wipe();
    let flash = HostFlash::open()
        .unwrap_or_else(|e| halt(EXIT_SECURE_ERROR, format_args!("[secure] no flash: {e}")));
    let mut rng = DrbgRng::seed(b"secure partition");
    if rng.is_weak() {
        println!("[secure] WARNING: no host entropy file; random numbers seeded from timing only");
    }
    let key = attest::AttestationKey::derive(&h.cdi_attest)
        .unwrap_or_else(|| halt(EXIT_SECURE_ERROR, format_args!("[secure] attestation key derivation failed")));
    h.cdi_attest.zeroize();
    h.cdi_seal.zeroize();
    let mut cmdline = [0u8; 512];
    let args = semihosting::command_line(&mut cmdline);
    let mut command = [0u8; 200];
    let n = args.len().min(command.len());
    if let (Some(d), Some(s)) = (command.get_mut(..n), args.get(..n)) {
        d.copy_from_slice(s);
    }
    let mut boot_seed = [0u8; 32];
    let _ = castellan_hal::RandomSource::fill(&mut rng, &mut boot_seed);
    state::init(state::Services {
        flash,
        key,
        boot: h,
        boot_seed,
        confirmed: h.boot.confirmed != 0,
        command,
        command_len: n,
        fwu: fwu::Fwu::default(),
    });

    tz::configure();
    println!(
        "[secure] TrustZone-M: SAU regions NS code {:#010x}, NS RAM {:#010x}, NSC veneers {:#010x}..{:#010x}; SecureFault enabled",
        castellan_platform_an505::map::NS_CODE_START,
        castellan_platform_an505::map::NS_RAM_START,
        VENEER_BASE,
        VENEER_BASE + VENEER_SIZE
    );
    println!("[secure] attestation key ready; starting the non-secure application (unprivileged)");
    faults::ns_started();
    // Safety: `configure` ran and the bootloader loaded and verified the application.
    unsafe { tz::start_nonsecure(NS_EXEC) }
}
