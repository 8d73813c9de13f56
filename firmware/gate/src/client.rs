//! The non-secure side of the gate: declarations of the entry points (resolved against the
//! secure partition's import library at link time) and safe wrappers.

use core::fmt;

use crate::{BOOT_INFO_SIZE, BootInfo, UPDATE_STATUS_SIZE, UpdateStatus};

unsafe extern "C" {
    fn csl_console_write(ptr: *const u8, len: u32) -> i32;
    fn csl_command(out: *mut u8, cap: u32) -> i32;
    fn csl_boot_info(out: *mut BootInfo, size: u32) -> i32;
    fn csl_attest_token(nonce: *const u8, nonce_len: u32, out: *mut u8, cap: u32) -> i32;
    fn csl_attest_public_key(out: *mut u8, cap: u32) -> i32;
    fn csl_fwu_start(size: u32) -> i32;
    fn csl_fwu_write(offset: u32, data: *const u8, len: u32) -> i32;
    fn csl_fwu_install(permanent: u32) -> i32;
    fn csl_fwu_accept() -> i32;
    fn csl_its_set(uid: u32, data: *const u8, len: u32) -> i32;
    fn csl_its_get(uid: u32, out: *mut u8, cap: u32) -> i32;
    fn csl_update_anchor(key: *const u8, len: u32) -> i32;
    fn csl_update_begin(envelope: *const u8, len: u32, now: u32) -> i32;
    fn csl_update_write(offset: u32, data: *const u8, len: u32) -> i32;
    fn csl_update_finish() -> i32;
    fn csl_update_cancel() -> i32;
    fn csl_update_status(out: *mut UpdateStatus, size: u32) -> i32;
    fn csl_system_reset() -> i32;
    fn csl_power_off(code: u32) -> i32;
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Prints text on the device console (the secure side writes it out).
pub fn console_write(text: &[u8]) -> i32 {
    // Safety: the gate validates the range before reading it; `text` is ours.
    unsafe { csl_console_write(text.as_ptr(), len32(text.len())) }
}

/// Asks the gate to print `len` bytes at an arbitrary address: the secure side must refuse
/// any range the caller may not access (this is how the demo shows the pointer checks).
pub fn console_write_at(addr: u32, len: u32) -> i32 {
    // Safety: the secure side validates the range with TTAT before it touches it; the call
    // itself only passes two integers.
    unsafe { csl_console_write(addr as usize as *const u8, len) }
}

/// The operator's command line for this run (from the host console); returns its length.
pub fn command(out: &mut [u8]) -> i32 {
    // Safety: `out` is ours and writable; the gate validates it.
    unsafe { csl_command(out.as_mut_ptr(), len32(out.len())) }
}

/// What the bootloader did and what runs.
pub fn boot_info() -> Result<BootInfo, i32> {
    let mut info = BootInfo::zeroed();
    // Safety: `info` is ours and writable; the gate validates it.
    let r = unsafe { csl_boot_info(&mut info, len32(BOOT_INFO_SIZE)) };
    if r < 0 { Err(r) } else { Ok(info) }
}

/// An attestation token over `nonce` (PSA initial attestation, COSE_Sign1 ES256) into `out`;
/// returns its length.
pub fn attest_token(nonce: &[u8], out: &mut [u8]) -> Result<usize, i32> {
    // Safety: both buffers are ours; the gate validates them.
    let r = unsafe {
        csl_attest_token(
            nonce.as_ptr(),
            len32(nonce.len()),
            out.as_mut_ptr(),
            len32(out.len()),
        )
    };
    usize::try_from(r).map_err(|_| r)
}

/// The attestation public key (SEC1 uncompressed P-256, 65 bytes) into `out`.
pub fn attest_public_key(out: &mut [u8]) -> Result<usize, i32> {
    // Safety: `out` is ours; the gate validates it.
    let r = unsafe { csl_attest_public_key(out.as_mut_ptr(), len32(out.len())) };
    usize::try_from(r).map_err(|_| r)
}

/// Starts writing a candidate image of `size` bytes (erases the update slot).
pub fn fwu_start(size: u32) -> i32 {
    // Safety: integer arguments only.
    unsafe { csl_fwu_start(size) }
}

/// Writes a chunk of the candidate image at `offset`.
pub fn fwu_write(offset: u32, data: &[u8]) -> i32 {
    // Safety: `data` is ours; the gate validates it.
    unsafe { csl_fwu_write(offset, data.as_ptr(), len32(data.len())) }
}

/// Requests installation at the next boot: a test run (`permanent = false`, reverted unless
/// accepted) or a permanent install.
pub fn fwu_install(permanent: bool) -> i32 {
    // Safety: integer argument only.
    unsafe { csl_fwu_install(u32::from(permanent)) }
}

/// Accepts the running image (confirms the trial).
pub fn fwu_accept() -> i32 {
    // Safety: no arguments.
    unsafe { csl_fwu_accept() }
}

/// Stores `data` (at most 512 bytes) under `uid` in trusted storage.
pub fn its_set(uid: u32, data: &[u8]) -> i32 {
    // Safety: `data` is ours; the gate validates it.
    unsafe { csl_its_set(uid, data.as_ptr(), len32(data.len())) }
}

/// Reads asset `uid` from trusted storage into `out`; returns its length.
pub fn its_get(uid: u32, out: &mut [u8]) -> Result<usize, i32> {
    // Safety: `out` is ours; the gate validates it.
    let r = unsafe { csl_its_get(uid, out.as_mut_ptr(), len32(out.len())) };
    usize::try_from(r).map_err(|_| r)
}

/// Provisions the release trust anchor (P-256 public key, SEC1 uncompressed, 65 bytes) into
/// trusted storage, write-once: a second call is refused with `ALREADY_EXISTS`.
pub fn update_anchor(key: &[u8]) -> i32 {
    // Safety: `key` is ours; the gate validates the range before it copies it.
    unsafe { csl_update_anchor(key.as_ptr(), len32(key.len())) }
}

/// Starts (or resumes) an update from a SUIT envelope: the secure partition authenticates it
/// with the release trust anchor and checks vendor, class, sequence number and (when `now`,
/// unix seconds, is not 0) expiry before anything is written. Returns the offset where the
/// download continues (0 for a new update).
pub fn update_begin(envelope: &[u8], now: u32) -> i32 {
    // Safety: `envelope` is ours; the gate validates it and copies it whole before use.
    unsafe { csl_update_begin(envelope.as_ptr(), len32(envelope.len()), now) }
}

/// Writes a block of the payload at `offset` (blocks in order); returns the bytes received so
/// far.
pub fn update_write(offset: u32, data: &[u8]) -> i32 {
    // Safety: `data` is ours; the gate validates it.
    unsafe { csl_update_write(offset, data.as_ptr(), len32(data.len())) }
}

/// Checks the payload against the manifest (size, digest), verifies the image and requests its
/// installation for a trial run at the next boot (`SUCCESS_REBOOT`).
pub fn update_finish() -> i32 {
    // Safety: no arguments.
    unsafe { csl_update_finish() }
}

/// Abandons the update in progress.
pub fn update_cancel() -> i32 {
    // Safety: no arguments.
    unsafe { csl_update_cancel() }
}

/// The update client's state.
pub fn update_status() -> Result<UpdateStatus, i32> {
    let mut s = UpdateStatus::zeroed();
    // Safety: `s` is ours and writable; the gate validates it.
    let r = unsafe { csl_update_status(&mut s, len32(UPDATE_STATUS_SIZE)) };
    if r < 0 { Err(r) } else { Ok(s) }
}

/// Resets the device (only the secure side may).
pub fn system_reset() -> ! {
    // Safety: no arguments; does not return on success.
    unsafe {
        csl_system_reset();
    }
    loop {
        core::hint::spin_loop();
    }
}

/// Powers the (emulated) device off, ending the QEMU run with `code`.
pub fn power_off(code: u32) -> ! {
    // Safety: integer argument; does not return on success.
    unsafe {
        csl_power_off(code);
    }
    loop {
        core::hint::spin_loop();
    }
}

/// The console, through the gate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if console_write(s.as_bytes()) < 0 {
            Err(fmt::Error)
        } else {
            Ok(())
        }
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
