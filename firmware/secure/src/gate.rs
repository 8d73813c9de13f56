//! The non-secure-callable entry points (`extern "cmse-nonsecure-entry"`): the whole attack
//! surface the application sees. Each is thin: it hands its registers to the shared dispatcher
//! (`castellan_gate_api::dispatch`, the same code the host's simulated gate runs), which holds
//! every rule:
//!
//! - arguments are plain 32-bit values in registers (addresses arrive as `u32`, never as
//!   references), at most four, so the secure side never reads the non-secure stack;
//! - every address range is checked with `TTAT` ([`TzMemory`], [`tz::ns_range_ok`]) for the
//!   access the secure side will make, as the unprivileged non-secure caller, before it is
//!   touched; a refused range returns `PROGRAMMER_ERROR` and nothing is read or written;
//! - input is copied into secure memory before it is used (no double fetch), output is built
//!   in secure memory and copied out last;
//! - one call at a time ([`crate::state::with`]); results are PSA status codes (the services'
//!   errors map to theirs with `ServiceError::psa_status`).
//!
//! The platform's part (console, command line, boot record, raw firmware update, reset, power,
//! what is printed) is [`crate::backend`].

use castellan_gate::{Access, NsMemory, Op, dispatch, psa};
use castellan_platform_an505::tz;

use crate::{faults, state};

/// The non-secure caller's memory, as TrustZone lets the secure side see it.
pub struct TzMemory;

impl NsMemory for TzMemory {
    fn check(&self, addr: u32, len: u32, access: Access) -> bool {
        let access = match access {
            Access::Read => tz::Access::Read,
            Access::Write => tz::Access::Write,
        };
        tz::ns_range_ok(addr, len, access)
    }

    fn read(&mut self, addr: u32, dst: &mut [u8]) -> Result<(), i32> {
        let len = u32::try_from(dst.len()).map_err(|_| psa::ERROR_PROGRAMMER_ERROR)?;
        if !self.check(addr, len, Access::Read) {
            return Err(psa::ERROR_PROGRAMMER_ERROR);
        }
        // Safety: the whole range was just checked to be non-secure memory the caller may
        // read; `dst` is secure memory of the same length.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn write(&mut self, addr: u32, src: &[u8]) -> Result<(), i32> {
        let len = u32::try_from(src.len()).map_err(|_| psa::ERROR_PROGRAMMER_ERROR)?;
        if !self.check(addr, len, Access::Write) {
            return Err(psa::ERROR_PROGRAMMER_ERROR);
        }
        // Safety: the whole range was just checked to be non-secure memory the caller may
        // write; `src` is secure memory of the same length.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        Ok(())
    }
}

/// Runs one gate call: marks the gate, takes the state, dispatches.
fn call(op: Op, args: [u32; 4]) -> i32 {
    faults::enter_gate();
    let r = state::with(|s| Ok(dispatch(op, args, &mut TzMemory, s))).unwrap_or_else(|e| e);
    faults::leave_gate();
    r
}

/// Declares entry points: each passes its registers, as `op`'s, to [`call`].
macro_rules! entries {
    ($($(#[$doc:meta])* $name:ident($($arg:ident),*) => $op:ident;)*) => {
        $(
            $(#[$doc])*
            #[unsafe(no_mangle)]
            pub extern "cmse-nonsecure-entry" fn $name($($arg: u32),*) -> i32 {
                let mut r = [0u32; 4];
                for (slot, v) in r.iter_mut().zip([$($arg),*]) {
                    *slot = v;
                }
                call(Op::$op, r)
            }
        )*
    };
}

entries! {
    /// Writes text from the application on the console.
    csl_console_write(a, b) => ConsoleWrite;
    /// The operator's command for this run; returns its length.
    csl_command(a, b) => Command;
    /// What booted and what the bootloader did.
    csl_boot_info(a, b) => BootInfo;
    /// An attestation token over the caller's nonce; returns its length.
    csl_attest_token(a, b, c, d) => AttestToken;
    /// The attestation public key (SEC1 uncompressed, 65 bytes).
    csl_attest_public_key(a, b) => AttestPublicKey;
    /// Starts receiving a raw candidate image of `size` bytes.
    csl_fwu_start(a) => FwuStart;
    /// Writes a chunk (at most 256 bytes) of the raw candidate.
    csl_fwu_write(a, b, c) => FwuWrite;
    /// Requests installation of the candidate at the next boot (test run, or permanent).
    csl_fwu_install(a) => FwuInstall;
    /// Accepts (confirms) the running image.
    csl_fwu_accept() => FwuAccept;
    /// `psa_its_set` for the non-secure client (encrypted under a key sealed to CDI_Seal,
    /// replay-protected by OTP counters).
    csl_its_set(a, b, c) => ItsSet;
    /// `psa_its_get` for the non-secure client; returns the asset's length.
    csl_its_get(a, b, c) => ItsGet;
    /// Stores the release trust anchor (P-256, SEC1 uncompressed) in trusted storage,
    /// write-once.
    csl_update_anchor(a, b) => UpdateAnchor;
    /// Takes a SUIT envelope (copied whole into secure memory first) and starts or resumes its
    /// update; returns the offset where the download continues.
    csl_update_begin(a, b, c) => UpdateBegin;
    /// Writes the next block of the payload; returns the bytes received so far.
    csl_update_write(a, b, c) => UpdateWrite;
    /// Verifies the staged payload against the manifest and installs it for a trial run.
    csl_update_finish() => UpdateFinish;
    /// Abandons the update in progress (or forgets a failed one).
    csl_update_cancel() => UpdateCancel;
    /// The update client's state.
    csl_update_status(a, b) => UpdateStatus;
    /// Resets the device.
    csl_system_reset() => SystemReset;
    /// Powers the emulated device off (ends the QEMU run) with `code`.
    csl_power_off(a) => PowerOff;
    /// Trusted storage's state.
    csl_its_status(a, b) => ItsStatus;
    /// The device identity key's public key (generated on first use).
    csl_identity_key(a, b) => IdentityKey;
    /// `psa_export_public_key`.
    csl_export_public_key(a, b, c) => ExportPublicKey;
    /// `psa_sign_hash` (ECDSA P-256 over SHA-256).
    csl_sign_hash(a, b, c, d) => SignHash;
    /// `psa_destroy_key`.
    csl_destroy_key(a) => DestroyKey;
    /// `psa_generate_key`: a persistent P-256 signing key.
    csl_generate_signing_key(a) => GenerateSigningKey;
    /// Why the last refused call was refused (this partition prints refusals instead:
    /// `DOES_NOT_EXIST`).
    csl_last_refusal(a, b) => LastRefusal;
    /// `psa_generate_random`: the caller's buffer filled from the partition's DRBG (which
    /// fails closed without an entropy source).
    csl_generate_random(a, b) => GenerateRandom;
    /// An application event for the detector (rate-limited; a flood is itself an event).
    csl_app_event(a, b) => AppEvent;
    /// A detection report signed in this partition (counter raised first); its length.
    csl_detect_report(a, b) => DetectReport;
    /// The detector's state.
    csl_detect_status(a, b) => DetectStatus;
}
