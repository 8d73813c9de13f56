//! The secure partition: the TrustZone secure world that keeps running after boot.
//!
//! It takes the bootloader's hand-off (boot record, DICE CDIs) and starts the secure services
//! of `castellan-services` on the board's parts (crypto, trusted storage sealed under
//! CDI_Seal, attestation with a key derived from CDI_Seal, lifecycle), sets up the split of
//! memory (SAU, MPC, NSCCFG), and starts the non-secure application unprivileged. From then on
//! it runs only when the application calls a veneer of the gate ([`gate`]), when the
//! non-secure side faults ([`faults`]), and on the detector's PC sampler tick ([`detect`]).
#![no_std]
#![no_main]
// `extern "cmse-nonsecure-entry"` is a nightly feature; the firmware build enables it on the
// stable toolchain with RUSTC_BOOTSTRAP=1 (see docs/firmware.md).
#![feature(cmse_nonsecure_entry)]

mod backend;
#[cfg(feature = "detect")]
mod detect;
mod faults;
mod fwu;
mod gate;
mod state;

use castellan_dice::Cdis;
use castellan_gate::upgrade;
use castellan_image::TrustedKey;
use castellan_platform_an505::console::line;
use castellan_platform_an505::handoff::{self, Handoff, STAGE_BOOTLOADER};
use castellan_platform_an505::map::{
    NS_CODE_START, NS_EXEC, NS_RAM_START, PART_STORAGE, PART_STORAGE_KEY, ROM_BASE, VENEER_BASE,
    VENEER_SIZE,
};
use castellan_platform_an505::{
    DrbgRng, EXIT_SECURE_ERROR, HostFlash, HostOtp, cycles, halt_line, semihosting, tz,
};
use castellan_services::{
    BootRecordEntry, FwuConfig, ImageVersion, ItsConfig, LastBoot, OtpCounterMap, Platform,
    SecureServices, ServicesConfig, UpdateConfig, psa,
};
use castellan_text::Describe;
use castellan_text::Piece::{Dec, Hex, Str, Text};
use cortex_m_rt::entry;
use sha2::{Digest as _, Sha256};

/// The ROM window hashed into the attestation implementation id (the immutable PSA RoT code):
/// the ROM stage's 32 KiB region (its `memory.x`).
const ROM_WINDOW: usize = 0x8000;

/// Prints `[secure] {what}` (and `: {error}` when there is one) and stops.
fn fail(what: &str, error: Option<&dyn Describe>) -> ! {
    match error {
        Some(e) => halt_line(EXIT_SECURE_ERROR, "[secure] {}: {}", &[Str(what), Text(e)]),
        None => halt_line(EXIT_SECURE_ERROR, "[secure] {}", &[Str(what)]),
    }
}

/// The boot record as the attestation service takes it.
fn boot_record(h: &Handoff) -> ([BootRecordEntry; 4], usize) {
    let blank = BootRecordEntry::new("", [0; 32], [0; 32], ImageVersion::default());
    let Ok(blank) = blank else {
        fail("boot record", None)
    };
    let mut out = [blank; 4];
    let mut n = 0;
    for (slot, m) in out.iter_mut().zip(h.measurements()) {
        let v = m.version();
        let version = ImageVersion {
            major: v.major,
            minor: v.minor,
            revision: v.revision,
            build: v.build,
        };
        match BootRecordEntry::new(m.sw_type(), m.digest, m.signer_id, version) {
            Ok(e) => *slot = e,
            Err(e) => fail("bad boot record entry", Some(&e)),
        }
        n += 1;
    }
    (out, n)
}

/// What the bootloader did about a pending update, as the firmware-update service needs it.
fn last_boot(h: &Handoff) -> LastBoot {
    match h.boot.upgrade {
        _ if h.boot.confirmed == 0 => LastBoot::Trial,
        upgrade::INSTALLED_PERMANENT | upgrade::INSTALLED_OVERWRITE => LastBoot::Installed,
        upgrade::REVERTED => LastBoot::RolledBack,
        upgrade::REFUSED => LastBoot::Refused(psa::ERROR_NOT_PERMITTED),
        _ => LastBoot::Nothing,
    }
}

#[entry]
fn main() -> ! {
    line("[secure] Castellan secure partition", &[]);
    let Some(mut h) = handoff::read(STAGE_BOOTLOADER) else {
        fail("no hand-off from the bootloader", None)
    };
    handoff::wipe();
    let cdis = Cdis::from_bytes(h.cdi_attest, h.cdi_seal);
    h.cdi_attest = [0; 32];
    h.cdi_seal = [0; 32];

    let flash = HostFlash::open().unwrap_or_else(|e| fail("no flash", Some(&e)));
    let otp = HostOtp::open().unwrap_or_else(|e| fail("no OTP", Some(&e)));
    let counters = OtpCounterMap::castellan(otp).unwrap_or_else(|e| fail("OTP map", Some(&e)));
    let rng = DrbgRng::seed(b"secure partition");
    if rng.is_weak() {
        line(
            "[secure] WARNING: no host entropy file: the random source fails closed (QEMU has no TRNG)",
            &[],
        );
    }
    // Safety: the ROM window is secure code SRAM, loaded by QEMU and never written.
    let rom = unsafe { core::slice::from_raw_parts(ROM_BASE as *const u8, ROM_WINDOW) };
    // Update candidates must be signed by the key of the running image (the bootloader checks
    // it again against the key hash in OTP), and manifests must name this board's class.
    let app_signer = h
        .measurements()
        .get(1)
        .map(|m| m.signer_id)
        .unwrap_or([0; 32]);
    let config = ServicesConfig::new(
        ItsConfig::new(PART_STORAGE, PART_STORAGE_KEY),
        Sha256::digest(rom).into(),
    )
    .with_fwu(FwuConfig::new(
        fwu::LAYOUT,
        TrustedKey::Sha256OfSpki(app_signer),
        true,
    ))
    .with_update(UpdateConfig::for_class(
        castellan_gate::VENDOR,
        castellan_gate::DEVICE_CLASS,
    ));
    let (record, n) = boot_record(&h);
    let svc = SecureServices::start(
        Platform::new(flash, counters, rng),
        config,
        &cdis,
        record.get(..n).unwrap_or(&[]),
        last_boot(&h),
    )
    .unwrap_or_else(|e| fail("secure services did not start", Some(&e)));
    drop(cdis);
    #[cfg(feature = "detect")]
    let svc = {
        let mut svc = svc;
        detect::install(&mut svc);
        svc
    };
    match svc.its_status() {
        Ok(s) => line(
            "[secure] services up: trusted storage mounted ({} assets), attestation key derived from CDI_Seal",
            &[Dec(s.assets as u64)],
        ),
        Err(e) => line(
            "[secure] services up; trusted storage NOT mounted: {}",
            &[Text(&e)],
        ),
    }

    let mut cmdline = [0u8; 512];
    let args = semihosting::command_line(&mut cmdline);
    let mut command = [0u8; 200];
    let len = args.len().min(command.len());
    if let (Some(d), Some(s)) = (command.get_mut(..len), args.get(..len)) {
        d.copy_from_slice(s);
    }
    let confirmed = h.boot.confirmed != 0;
    state::init(state::State {
        svc,
        boot: h,
        confirmed,
        command,
        command_len: len,
        fwu: fwu::Fwu::default(),
    });

    tz::configure();
    // Read before anything else is printed: the boot time is up to the hand-off below.
    let boot_ticks = cycles::board_counter();
    line(
        "[secure] TrustZone-M: SAU regions NS code {}, NS RAM {}, NSC veneers {}..{}; SecureFault enabled",
        &[
            Hex(NS_CODE_START.into(), 8),
            Hex(NS_RAM_START.into(), 8),
            Hex(VENEER_BASE.into(), 8),
            Hex((VENEER_BASE + VENEER_SIZE).into(), 8),
        ],
    );
    line(
        "[secure] starting the non-secure application (unprivileged; board counter {} ticks since reset)",
        &[Dec(boot_ticks.into())],
    );
    faults::ns_started();
    #[cfg(feature = "detect")]
    detect::start_sampler();
    // Safety: `configure` ran and the bootloader loaded and verified the application.
    unsafe { tz::start_nonsecure(NS_EXEC) }
}
