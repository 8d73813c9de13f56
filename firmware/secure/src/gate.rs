//! The non-secure-callable entry points (`extern "cmse-nonsecure-entry"`): the whole attack
//! surface the application sees. Rules every entry follows:
//!
//! - arguments are plain 32-bit values in registers (addresses arrive as `u32`, never as
//!   references), at most four, so the secure side never reads the non-secure stack;
//! - every address range is checked with `TTAT` ([`tz::ns_range_ok`]) for the access the
//!   secure side will make, as the unprivileged non-secure caller, before it is touched;
//!   a refused range returns `PROGRAMMER_ERROR` and nothing is read or written;
//! - input is copied into secure memory before it is used (no double fetch), output is built
//!   in secure memory and copied out last;
//! - one call at a time ([`crate::state::with`]); results are PSA status codes (the services'
//!   errors map to theirs with `ServiceError::psa_status`).

use castellan_gate::{BOOT_INFO_SIZE, BootInfo, TOKEN_CAP, status};
use castellan_platform_an505::console::Console;
use castellan_platform_an505::tz::{self, Access};
use castellan_platform_an505::{println, semihosting};

use castellan_services::ItsFlags;

use crate::state::{self, State};
use crate::{faults, fwu};

/// Copies `len` bytes at non-secure `addr` into `dst` after checking the range.
pub(crate) fn copy_in(addr: u32, len: u32, dst: &mut [u8]) -> Result<(), i32> {
    let n = usize::try_from(len).map_err(|_| status::INVALID_ARGUMENT)?;
    let dst = dst.get_mut(..n).ok_or(status::INVALID_ARGUMENT)?;
    if !tz::ns_range_ok(addr, len, Access::Read) {
        return Err(status::PROGRAMMER_ERROR);
    }
    // Safety: the whole range was just checked to be non-secure memory the caller may read.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), n) };
    Ok(())
}

/// Copies `data` to non-secure `addr` (a buffer of `cap` bytes) after checking the range.
pub(crate) fn copy_out(addr: u32, cap: u32, data: &[u8]) -> Result<(), i32> {
    if !tz::ns_range_ok(addr, cap, Access::Write) {
        return Err(status::PROGRAMMER_ERROR);
    }
    if data.len() > cap as usize {
        return Err(status::BUFFER_TOO_SMALL);
    }
    // Safety: `addr..addr + cap` was just checked to be non-secure memory the caller may
    // write, and `data.len() <= cap`.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
    Ok(())
}

/// Runs a service call: marks the gate, takes the state, folds the result into a status.
pub(crate) fn call(f: impl FnOnce(&mut State) -> Result<i32, i32>) -> i32 {
    faults::enter_gate();
    let r = state::with(f).unwrap_or_else(|e| e);
    faults::leave_gate();
    r
}

/// Writes text from the application on the console.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_console_write(addr: u32, len: u32) -> i32 {
    faults::enter_gate();
    let r = (|| {
        if len > 4096 {
            return Err(status::INVALID_ARGUMENT);
        }
        if !tz::ns_range_ok(addr, len, Access::Read) {
            return Err(status::PROGRAMMER_ERROR);
        }
        let mut buf = [0u8; 128];
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(buf.len() as u32);
            copy_in(addr + done, n, &mut buf)?;
            Console.write_bytes(buf.get(..n as usize).unwrap_or(&[]));
            done += n;
        }
        Ok(status::SUCCESS)
    })();
    faults::leave_gate();
    r.unwrap_or_else(|e| e)
}

/// The operator's command for this run; returns its length.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_command(out: u32, cap: u32) -> i32 {
    call(|s| {
        let cmd = s.command.get(..s.command_len).unwrap_or(&[]);
        copy_out(out, cap, cmd)?;
        Ok(cmd.len() as i32)
    })
}

/// What booted and what the bootloader did.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_boot_info(out: u32, size: u32) -> i32 {
    call(|s| {
        if size as usize != BOOT_INFO_SIZE {
            return Err(status::INVALID_ARGUMENT);
        }
        let mut info = BootInfo::zeroed();
        let ms = s.boot.measurements();
        if let Some(bl) = ms.first() {
            info.bootloader_version = bl.version;
        }
        if let Some(app) = ms.get(1) {
            info.version = app.version;
            info.security_counter = app.security_counter;
            info.digest = app.digest;
        }
        info.counter = s.boot.boot.counter_after;
        info.lifecycle = s.boot.lifecycle;
        info.confirmed = u32::from(s.confirmed);
        info.upgrade = s.boot.boot.upgrade;
        let text = s.boot.boot_text().as_bytes();
        let n = text.len().min(info.text.len());
        if let (Some(d), Some(t)) = (info.text.get_mut(..n), text.get(..n)) {
            d.copy_from_slice(t);
        }
        info.text_len = n as u32;
        // Safety-free view of the record as bytes: built field by field above.
        let bytes = boot_info_bytes(&info);
        copy_out(out, size, &bytes)?;
        Ok(status::SUCCESS)
    })
}

fn boot_info_bytes(info: &BootInfo) -> [u8; BOOT_INFO_SIZE] {
    let mut b = [0u8; BOOT_INFO_SIZE];
    // Safety: `BootInfo` is `repr(C)` plain integers and byte arrays without padding (checked
    // by the size assertion below), so its bytes are initialised.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (info as *const BootInfo).cast::<u8>(),
            b.as_mut_ptr(),
            BOOT_INFO_SIZE,
        );
    }
    b
}

const _: () =
    assert!(BOOT_INFO_SIZE == 4 * 4 + 5 * 4 + 4 * 4 + 32 + 4 + castellan_gate::BOOT_TEXT_CAP);

/// An attestation token over the caller's nonce; returns its length.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_attest_token(
    nonce: u32,
    nonce_len: u32,
    out: u32,
    cap: u32,
) -> i32 {
    call(|s| {
        if !matches!(nonce_len, 32 | 48 | 64) {
            return Err(status::INVALID_ARGUMENT);
        }
        if !tz::ns_range_ok(out, cap, Access::Write) {
            return Err(status::PROGRAMMER_ERROR);
        }
        let mut n = [0u8; 64];
        copy_in(nonce, nonce_len, &mut n)?;
        let nonce = n
            .get(..nonce_len as usize)
            .ok_or(status::INVALID_ARGUMENT)?;
        let mut token = [0u8; TOKEN_CAP];
        // Client id -1: the (single) non-secure caller.
        let len = s
            .svc
            .attest_token(nonce, -1, &mut token)
            .map_err(|e| e.psa_status())?;
        let t = token.get(..len).ok_or(status::GENERIC_ERROR)?;
        copy_out(out, cap, t)?;
        println!("[secure] attestation: token of {len} bytes issued");
        Ok(len as i32)
    })
}

/// The attestation public key (SEC1 uncompressed, 65 bytes).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_attest_public_key(out: u32, cap: u32) -> i32 {
    call(|s| {
        let key = s.svc.attestation_public_key();
        copy_out(out, cap, &key)?;
        Ok(key.len() as i32)
    })
}

/// Largest asset the gate moves in one call.
const ITS_CHUNK: usize = 512;

/// `psa_its_set` for the non-secure client: stores `len` bytes at `data` under `uid`
/// (encrypted under a key sealed to CDI_Seal, replay-protected by OTP counters).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_its_set(uid: u32, data: u32, len: u32) -> i32 {
    call(|s| {
        let mut buf = [0u8; ITS_CHUNK];
        if len as usize > buf.len() {
            return Err(status::INVALID_ARGUMENT);
        }
        copy_in(data, len, &mut buf)?;
        let value = buf.get(..len as usize).unwrap_or(&[]);
        s.svc
            .its_set(u64::from(uid), value, ItsFlags::NONE)
            .map_err(|e| e.psa_status())?;
        Ok(status::SUCCESS)
    })
}

/// `psa_its_get` for the non-secure client: reads asset `uid` into `out`; returns its length.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_its_get(uid: u32, out: u32, cap: u32) -> i32 {
    call(|s| {
        if !tz::ns_range_ok(out, cap, Access::Write) {
            return Err(status::PROGRAMMER_ERROR);
        }
        let mut buf = [0u8; ITS_CHUNK];
        let n = s
            .svc
            .its_get(u64::from(uid), 0, &mut buf)
            .map_err(|e| e.psa_status())?;
        copy_out(out, cap, buf.get(..n).unwrap_or(&[]))?;
        Ok(n as i32)
    })
}

/// Starts receiving a candidate image of `size` bytes.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_fwu_start(size: u32) -> i32 {
    call(|s| fwu::start(s, size))
}

/// Writes a chunk (at most 256 bytes) of the candidate.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_fwu_write(offset: u32, data: u32, len: u32) -> i32 {
    call(|s| {
        let mut buf = [0u8; 256];
        if len as usize > buf.len() {
            return Err(status::INVALID_ARGUMENT);
        }
        copy_in(data, len, &mut buf)?;
        fwu::write(s, offset, buf.get(..len as usize).unwrap_or(&[]))
    })
}

/// Requests installation of the candidate at the next boot (test run, or permanent).
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_fwu_install(permanent: u32) -> i32 {
    call(|s| fwu::install(s, permanent != 0))
}

/// Accepts (confirms) the running image. A trial image the firmware-update service knows
/// (installed through the SUIT update client, or staged raw) is accepted by the service, which
/// also stores the accepted release's sequence number.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_fwu_accept() -> i32 {
    call(crate::update::accept)
}

/// Resets the device.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_system_reset() -> i32 {
    println!("[secure] system reset requested by the application");
    tz::system_reset()
}

/// Powers the emulated device off (ends the QEMU run) with `code`.
#[unsafe(no_mangle)]
pub extern "cmse-nonsecure-entry" fn csl_power_off(code: u32) -> i32 {
    println!(
        "[secure] power off requested by the application (status {code}; secure stack high-water {} bytes)",
        castellan_platform_an505::stack_used()
    );
    semihosting::exit(code.min(255))
}
