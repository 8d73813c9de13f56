//! Arm semihosting (the `BKPT 0xAB` host-call interface QEMU implements): console output,
//! host files (which back this board's flash, OTP fuses and entropy), the command line and exit.
//!
//! Only secure images call these. Semihosting is not a security boundary: QEMU serves any
//! privileged caller, secure or not (see `docs/firmware.md`, threat model). The non-secure
//! application runs unprivileged and QEMU is started without `userspace=on`, so its `BKPT 0xAB`
//! is an ordinary breakpoint that faults instead of reaching the host.

use core::arch::asm;

const SYS_OPEN: usize = 0x01;
const SYS_CLOSE: usize = 0x02;
const SYS_WRITE: usize = 0x05;
const SYS_READ: usize = 0x06;
const SYS_SEEK: usize = 0x0a;
const SYS_FLEN: usize = 0x0c;
const SYS_GET_CMDLINE: usize = 0x15;
const SYS_EXIT_EXTENDED: usize = 0x20;

/// `ADP_Stopped_ApplicationExit`: the reason code of a normal exit.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;

/// Open modes of `SYS_OPEN` (the `fopen` mode strings they stand for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Mode {
    /// `"rb"`: read an existing file.
    ReadBinary = 1,
    /// `"r+b"`: read and write an existing file.
    ReadWriteBinary = 3,
    /// `"w"`: write (used with `:tt` for the console).
    Write = 4,
    /// `"w+b"`: create or truncate, read and write.
    CreateBinary = 7,
}

/// One semihosting call: operation `op` with parameter `arg` (a pointer to the parameter block
/// or a value); returns the host's `r0`.
///
/// # Safety
/// `arg` must be what `op` expects: for block operations, a pointer to a parameter block that
/// stays valid (and, for reads, writable) for the duration of the call, pointing in turn to
/// buffers of the lengths it states. Semihosting must be enabled (QEMU
/// `-semihosting-config enable=on`) and the caller privileged, or the `BKPT` faults.
#[inline(always)]
pub unsafe fn call(op: usize, arg: usize) -> isize {
    let r: isize;
    // Safety: the caller upholds the contract above; the host may read and write the memory the
    // block points to, which the asm block allows (no `nomem`/`readonly`).
    unsafe {
        asm!("bkpt #0xab", inout("r0") op => r, in("r1") arg, options(nostack, preserves_flags));
    }
    r
}

/// The host refused or failed a file operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostIoError;

impl castellan_text::Describe for HostIoError {
    fn describe(
        &self,
        out: &mut dyn castellan_text::Sink,
    ) -> Result<(), castellan_text::TextError> {
        out.put("host file operation failed")
    }
}

impl core::fmt::Display for HostIoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("host file operation failed")
    }
}

/// An open host file.
#[derive(Debug)]
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    /// Opens `name` (NUL-terminated) in `mode`; `None` when the host refuses.
    pub fn open(name: &core::ffi::CStr, mode: Mode) -> Option<HostFile> {
        let bytes = name.to_bytes();
        let block = [bytes.as_ptr() as usize, mode as usize, bytes.len()];
        // Safety: the block holds a valid NUL-terminated name and its length.
        let r = unsafe { call(SYS_OPEN, block.as_ptr() as usize) };
        if r < 0 {
            None
        } else {
            Some(HostFile { handle: r as usize })
        }
    }

    /// Gives up ownership: the file stays open for good; returns its raw handle.
    pub(crate) fn into_raw(self) -> usize {
        let f = core::mem::ManuallyDrop::new(self);
        f.handle
    }

    /// Length of the file in bytes, or `None` on a host error.
    pub fn size(&self) -> Option<u32> {
        let block = [self.handle];
        // Safety: the block holds an open handle.
        let r = unsafe { call(SYS_FLEN, block.as_ptr() as usize) };
        u32::try_from(r).ok()
    }

    /// Moves the file position to `pos` (from the start).
    pub fn seek(&mut self, pos: u32) -> Result<(), HostIoError> {
        let block = [self.handle, pos as usize];
        // Safety: the block holds an open handle and a position.
        let r = unsafe { call(SYS_SEEK, block.as_ptr() as usize) };
        if r == 0 { Ok(()) } else { Err(HostIoError) }
    }

    /// Reads exactly `buf.len()` bytes at the current position.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), HostIoError> {
        let block = [self.handle, buf.as_mut_ptr() as usize, buf.len()];
        // Safety: the block describes `buf`, writable for its whole length during the call.
        let r = unsafe { call(SYS_READ, block.as_ptr() as usize) };
        // The host returns the number of bytes NOT read.
        if r == 0 { Ok(()) } else { Err(HostIoError) }
    }

    /// Writes all of `data` at the current position.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), HostIoError> {
        let block = [self.handle, data.as_ptr() as usize, data.len()];
        // Safety: the block describes `data`, readable for its whole length during the call.
        let r = unsafe { call(SYS_WRITE, block.as_ptr() as usize) };
        // The host returns the number of bytes NOT written.
        if r == 0 { Ok(()) } else { Err(HostIoError) }
    }

    /// Reads `buf.len()` bytes at `pos`.
    pub fn read_at(&mut self, pos: u32, buf: &mut [u8]) -> Result<(), HostIoError> {
        self.seek(pos)?;
        self.read_exact(buf)
    }

    /// Writes `data` at `pos`.
    pub fn write_at(&mut self, pos: u32, data: &[u8]) -> Result<(), HostIoError> {
        self.seek(pos)?;
        self.write_all(data)
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let block = [self.handle];
        // Safety: the block holds a handle this value owns; it is not used afterwards.
        unsafe {
            call(SYS_CLOSE, block.as_ptr() as usize);
        }
    }
}

/// Copies the host command line (QEMU: the `-kernel` file name, a space, then `-append`'s text)
/// into `buf`; returns the part after the first space (the arguments), or an empty slice.
pub fn command_line(buf: &mut [u8]) -> &[u8] {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // Safety: the block describes `buf`; the host writes at most `buf.len()` bytes and stores
    // the length it wrote back into the block.
    let r = unsafe { call(SYS_GET_CMDLINE, block.as_mut_ptr() as usize) };
    if r != 0 {
        return &[];
    }
    let len = block[1].min(buf.len());
    let line = buf.get(..len).unwrap_or(&[]);
    match line.iter().position(|b| *b == b' ') {
        Some(i) => line.get(i + 1..).unwrap_or(&[]),
        None => &[],
    }
}

/// Ends the QEMU run with exit status `code`.
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    loop {
        // Safety: SYS_EXIT_EXTENDED takes a two-word block (reason, subcode).
        unsafe {
            call(SYS_EXIT_EXTENDED, block.as_ptr() as usize);
        }
    }
}
