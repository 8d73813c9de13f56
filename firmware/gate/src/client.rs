//! The non-secure side of the gate: declarations of the entry points (resolved against the
//! secure partition's import library at link time) and [`Veneers`], the `SecureGate` over
//! them: every typed call is `castellan_gate_api`'s, laid out in registers with real pointers.

use core::fmt;

use castellan_gate_api::{Arg, Op, SecureGate, psa, registers};

unsafe extern "C" {
    fn csl_console_write(a: u32, b: u32) -> i32;
    fn csl_command(a: u32, b: u32) -> i32;
    fn csl_boot_info(a: u32, b: u32) -> i32;
    fn csl_attest_token(a: u32, b: u32, c: u32, d: u32) -> i32;
    fn csl_attest_public_key(a: u32, b: u32) -> i32;
    fn csl_fwu_start(a: u32) -> i32;
    fn csl_fwu_write(a: u32, b: u32, c: u32) -> i32;
    fn csl_fwu_install(a: u32) -> i32;
    fn csl_fwu_accept() -> i32;
    fn csl_its_set(a: u32, b: u32, c: u32) -> i32;
    fn csl_its_get(a: u32, b: u32, c: u32) -> i32;
    fn csl_update_anchor(a: u32, b: u32) -> i32;
    fn csl_update_begin(a: u32, b: u32, c: u32) -> i32;
    fn csl_update_write(a: u32, b: u32, c: u32) -> i32;
    fn csl_update_finish() -> i32;
    fn csl_update_cancel() -> i32;
    fn csl_update_status(a: u32, b: u32) -> i32;
    fn csl_system_reset() -> i32;
    fn csl_power_off(a: u32) -> i32;
    fn csl_its_status(a: u32, b: u32) -> i32;
    fn csl_identity_key(a: u32, b: u32) -> i32;
    fn csl_export_public_key(a: u32, b: u32, c: u32) -> i32;
    fn csl_sign_hash(a: u32, b: u32, c: u32, d: u32) -> i32;
    fn csl_destroy_key(a: u32) -> i32;
    fn csl_generate_signing_key(a: u32) -> i32;
    fn csl_last_refusal(a: u32, b: u32) -> i32;
    fn csl_generate_random(a: u32, b: u32) -> i32;
    fn csl_app_event(a: u32, b: u32) -> i32;
    fn csl_detect_report(a: u32, b: u32) -> i32;
    fn csl_detect_status(a: u32, b: u32) -> i32;
}

/// The gate over the secure partition's veneers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Veneers;

impl Veneers {
    /// Calls the entry point of `op` with registers `r`.
    ///
    /// # Safety
    ///
    /// None of the caller's: the secure side checks every address in `r` (TTAT, as this
    /// unprivileged caller) before it touches it. Marked unsafe because it passes raw
    /// addresses: the demo uses it to show that arbitrary ones are refused.
    pub unsafe fn raw(op: Op, r: [u32; 4]) -> i32 {
        let [a, b, c, d] = r;
        // Safety: every entry point takes registers only and validates addresses itself.
        unsafe {
            match op {
                Op::ConsoleWrite => csl_console_write(a, b),
                Op::Command => csl_command(a, b),
                Op::BootInfo => csl_boot_info(a, b),
                Op::AttestToken => csl_attest_token(a, b, c, d),
                Op::AttestPublicKey => csl_attest_public_key(a, b),
                Op::FwuStart => csl_fwu_start(a),
                Op::FwuWrite => csl_fwu_write(a, b, c),
                Op::FwuInstall => csl_fwu_install(a),
                Op::FwuAccept => csl_fwu_accept(),
                Op::ItsSet => csl_its_set(a, b, c),
                Op::ItsGet => csl_its_get(a, b, c),
                Op::UpdateAnchor => csl_update_anchor(a, b),
                Op::UpdateBegin => csl_update_begin(a, b, c),
                Op::UpdateWrite => csl_update_write(a, b, c),
                Op::UpdateFinish => csl_update_finish(),
                Op::UpdateCancel => csl_update_cancel(),
                Op::UpdateStatus => csl_update_status(a, b),
                Op::SystemReset => csl_system_reset(),
                Op::PowerOff => csl_power_off(a),
                Op::ItsStatus => csl_its_status(a, b),
                Op::IdentityKey => csl_identity_key(a, b),
                Op::ExportPublicKey => csl_export_public_key(a, b, c),
                Op::SignHash => csl_sign_hash(a, b, c, d),
                Op::DestroyKey => csl_destroy_key(a),
                Op::GenerateSigningKey => csl_generate_signing_key(a),
                Op::LastRefusal => csl_last_refusal(a, b),
                Op::GenerateRandom => csl_generate_random(a, b),
                Op::AppEvent => csl_app_event(a, b),
                Op::DetectReport => csl_detect_report(a, b),
                Op::DetectStatus => csl_detect_status(a, b),
                _ => psa::ERROR_NOT_SUPPORTED,
            }
        }
    }

    /// Asks the gate to print `len` bytes at an arbitrary address: the secure side must refuse
    /// any range the caller may not access (this is how the demo shows the pointer checks).
    pub fn console_write_at(addr: u32, len: u32) -> i32 {
        // Safety: the secure side validates the range with TTAT before it touches it; the call
        // itself only passes two integers.
        unsafe { Self::raw(Op::ConsoleWrite, [addr, len, 0, 0]) }
    }
}

impl SecureGate for Veneers {
    fn invoke(&mut self, op: Op, args: &mut [Arg<'_>]) -> i32 {
        // Buffers are ours, in non-secure memory; addresses are 32-bit on this target.
        let Some(r) = registers(op, args, |_, a| a.bytes().as_ptr() as usize as u32) else {
            return psa::ERROR_INVALID_ARGUMENT;
        };
        // Safety: the addresses in `r` are our own live buffers (`args` outlives the call),
        // each with its length; the secure side checks them anyway.
        unsafe { Self::raw(op, r) }
    }
}

/// Resets the device (only the secure side may).
pub fn system_reset() -> ! {
    let _ = Veneers.system_reset();
    loop {
        core::hint::spin_loop();
    }
}

/// Powers the (emulated) device off, ending the QEMU run with `code`.
pub fn power_off(code: u32) -> ! {
    let _ = Veneers.power_off(code);
    loop {
        core::hint::spin_loop();
    }
}

/// The console, through the gate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Veneers.console_write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Prints a line on the device console through the gate.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::client::Console, $($arg)*);
    }};
}
