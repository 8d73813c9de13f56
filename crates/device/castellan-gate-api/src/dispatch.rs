//! The secure side of the gate, platform-independent: [`dispatch`] takes an operation and its
//! four argument registers and holds every check the gate makes, so the TrustZone veneers of
//! the firmware and the host's simulated gate run the same code.
//!
//! Rules every operation follows:
//! - lengths and caps are checked first (`INVALID_ARGUMENT`);
//! - every address range is checked for the access the secure side will make, as the caller,
//!   before any service runs: a refused range returns `PROGRAMMER_ERROR` and nothing is read
//!   or written;
//! - input is copied into secure memory before it is used (no double fetch); output is built
//!   in secure memory and copied out last (`BUFFER_TOO_SMALL` when it does not fit).

use crate::backend::{Access, Event, Fault, GateBackend, GateServices, NsMemory};
use crate::op::{
    CONSOLE_MAX, ENVELOPE_CAP, FWU_CHUNK, HASH_LEN, ITS_CHUNK, NONCE_LENS, NONCE_MAX, RANDOM_CAP,
    SIGNATURE_LEN, TOKEN_CAP, TRUST_ANCHOR_LEN, UPDATE_BLOCK_CAP,
};
use crate::records::{BOOT_INFO_SIZE, ITS_SUMMARY_SIZE, REFUSAL_SIZE, UPDATE_STATUS_SIZE};
use crate::sensor::{DETECT_REPORT_CAP, DETECT_STATUS_SIZE};
use crate::{Op, psa};

/// Bytes of console text copied in at a time.
const CONSOLE_BUF: usize = 128;

type Res = Result<i32, i32>;

/// Runs `op` with argument registers `args` (laid out as [`Op::regs`] says) for the caller
/// whose memory is `mem`; returns a PSA status (`< 0`) or the operation's non-negative result.
pub fn dispatch<M: NsMemory, B: GateBackend>(
    op: Op,
    args: [u32; 4],
    mem: &mut M,
    backend: &mut B,
) -> i32 {
    let status = run(op, args, mem, backend).unwrap_or_else(|e| e);
    // The sensor sees every entry, after it ran; an accepted application event is already its
    // own event.
    if !(op == Op::AppEvent && status >= 0) {
        if let Some(d) = backend.detector() {
            d.gate_entry(op, args, status);
        }
    }
    status
}

fn run<M: NsMemory, B: GateBackend>(op: Op, args: [u32; 4], mem: &mut M, be: &mut B) -> Res {
    let [a, b, c, d] = args;
    match op {
        Op::ConsoleWrite => console_write(a, b, mem, be),
        Op::Command => {
            writable(mem, a, b)?;
            let cmd = be.command();
            copy_out(mem, a, b, cmd)?;
            Ok(len32(cmd.len()))
        }
        Op::BootInfo => {
            exact(b, BOOT_INFO_SIZE)?;
            writable(mem, a, b)?;
            let info = be.boot_info().encode();
            copy_out(mem, a, b, &info).map(|()| psa::SUCCESS)
        }
        Op::AttestToken => {
            if !NONCE_LENS.contains(&(b as usize)) {
                return Err(psa::ERROR_INVALID_ARGUMENT);
            }
            writable(mem, c, d)?;
            let mut nonce = [0u8; NONCE_MAX];
            let nonce = copy_in(mem, a, b, &mut nonce)?;
            let mut token = [0u8; TOKEN_CAP];
            let r = be.services().attest_token(nonce, &mut token);
            let n = service(be, op, r)?;
            copy_out(mem, c, d, token.get(..n).ok_or(psa::ERROR_GENERIC_ERROR)?)?;
            be.note(Event::TokenIssued { len: n });
            Ok(len32(n))
        }
        Op::AttestPublicKey => {
            writable(mem, a, b)?;
            let key = be.services().attest_public_key();
            copy_out(mem, a, b, &key)?;
            Ok(len32(key.len()))
        }
        Op::FwuStart => be.fwu_start(a).map(|()| psa::SUCCESS),
        Op::FwuWrite => {
            let mut buf = [0u8; FWU_CHUNK];
            let data = copy_in(mem, b, c, &mut buf)?;
            be.fwu_write(a, data).map(|()| psa::SUCCESS)
        }
        Op::FwuInstall => be.fwu_install(a != 0).map(|()| psa::SUCCESS),
        Op::FwuAccept => be.fwu_accept().map(|()| psa::SUCCESS),
        Op::ItsSet => {
            let mut buf = [0u8; ITS_CHUNK];
            let data = copy_in(mem, b, c, &mut buf)?;
            let r = be.services().its_set(a, data);
            service(be, op, r).map(|()| psa::SUCCESS)
        }
        Op::ItsGet => {
            writable(mem, b, c)?;
            let mut buf = [0u8; ITS_CHUNK];
            let r = be.services().its_get(a, &mut buf);
            let n = service(be, op, r)?;
            copy_out(mem, b, c, buf.get(..n).ok_or(psa::ERROR_GENERIC_ERROR)?)?;
            Ok(len32(n))
        }
        Op::ItsStatus => {
            exact(b, ITS_SUMMARY_SIZE)?;
            writable(mem, a, b)?;
            let r = be.services().its_status();
            let s = service(be, op, r)?.encode();
            copy_out(mem, a, b, &s).map(|()| psa::SUCCESS)
        }
        Op::UpdateAnchor => {
            exact(b, TRUST_ANCHOR_LEN)?;
            let mut key = [0u8; TRUST_ANCHOR_LEN];
            copy_in(mem, a, b, &mut key)?;
            let r = be.services().update_anchor(&key);
            service(be, op, r)?;
            be.note(Event::AnchorProvisioned);
            Ok(psa::SUCCESS)
        }
        Op::UpdateBegin => {
            if b as usize > ENVELOPE_CAP {
                be.note(Event::EnvelopeTooLarge { len: b });
                return Err(psa::ERROR_INVALID_ARGUMENT);
            }
            let mut buf = [0u8; ENVELOPE_CAP];
            let env = copy_in(mem, a, b, &mut buf)?;
            let now = (c != 0).then_some(u64::from(c));
            let r = be.services().update_begin(env, now);
            let begun = service(be, op, r)?;
            be.note(Event::UpdateBegun(begun));
            i32::try_from(begun.resume_offset).map_err(|_| psa::ERROR_GENERIC_ERROR)
        }
        Op::UpdateWrite => {
            let mut buf = [0u8; UPDATE_BLOCK_CAP];
            let block = copy_in(mem, b, c, &mut buf)?;
            let r = be.services().update_write(u64::from(a), block);
            let received = service(be, op, r)?;
            i32::try_from(received).map_err(|_| psa::ERROR_GENERIC_ERROR)
        }
        Op::UpdateFinish => {
            let r = be.services().update_finish();
            let status = service(be, op, r)?;
            be.note(Event::UpdateInstalled);
            Ok(status)
        }
        Op::UpdateCancel => {
            let r = be.services().update_cancel();
            service(be, op, r)?;
            be.note(Event::UpdateCancelled);
            Ok(psa::SUCCESS)
        }
        Op::UpdateStatus => {
            exact(b, UPDATE_STATUS_SIZE)?;
            writable(mem, a, b)?;
            let r = be.services().update_status();
            let s = service(be, op, r)?.encode();
            copy_out(mem, a, b, &s).map(|()| psa::SUCCESS)
        }
        Op::SystemReset => Err(be.system_reset()),
        Op::PowerOff => Err(be.power_off(a)),
        Op::IdentityKey => {
            writable(mem, a, b)?;
            let r = be.services().identity_key();
            let key = service(be, op, r)?;
            copy_out(mem, a, b, &key)?;
            Ok(len32(key.len()))
        }
        Op::ExportPublicKey => {
            writable(mem, b, c)?;
            let mut key = [0u8; crate::PUBLIC_KEY_LEN];
            let r = be.services().export_public_key(a, &mut key);
            let n = service(be, op, r)?;
            copy_out(mem, b, c, key.get(..n).ok_or(psa::ERROR_GENERIC_ERROR)?)?;
            Ok(len32(n))
        }
        Op::SignHash => {
            exact(c, HASH_LEN)?;
            writable(mem, d, SIGNATURE_LEN as u32)?;
            let mut hash = [0u8; HASH_LEN];
            copy_in(mem, b, c, &mut hash)?;
            let r = be.services().sign_hash(a, &hash);
            let sig = service(be, op, r)?;
            copy_out(mem, d, SIGNATURE_LEN as u32, &sig)?;
            Ok(len32(sig.len()))
        }
        Op::DestroyKey => {
            let r = be.services().destroy_key(a);
            service(be, op, r).map(|()| psa::SUCCESS)
        }
        Op::GenerateSigningKey => {
            let r = be.services().generate_signing_key(a);
            service(be, op, r).map(|()| psa::SUCCESS)
        }
        Op::AppEvent => {
            let d = be.detector().ok_or(psa::ERROR_NOT_SUPPORTED)?;
            d.app_event(a, b).map(|()| psa::SUCCESS)
        }
        Op::DetectReport => {
            writable(mem, a, b)?;
            let d = be.detector().ok_or(psa::ERROR_NOT_SUPPORTED)?;
            let mut buf = [0u8; DETECT_REPORT_CAP];
            let n = d.report(&mut buf)?;
            copy_out(mem, a, b, buf.get(..n).ok_or(psa::ERROR_GENERIC_ERROR)?)?;
            Ok(len32(n))
        }
        Op::DetectStatus => {
            exact(b, DETECT_STATUS_SIZE)?;
            writable(mem, a, b)?;
            let d = be.detector().ok_or(psa::ERROR_NOT_SUPPORTED)?;
            let s = d.status().encode();
            copy_out(mem, a, b, &s).map(|()| psa::SUCCESS)
        }
        Op::GenerateRandom => {
            if b == 0 || b as usize > RANDOM_CAP {
                return Err(psa::ERROR_INVALID_ARGUMENT);
            }
            writable(mem, a, b)?;
            let mut buf = [0u8; RANDOM_CAP];
            let out = buf
                .get_mut(..b as usize)
                .ok_or(psa::ERROR_INVALID_ARGUMENT)?;
            let r = be.services().generate_random(out);
            service(be, op, r)?;
            copy_out(mem, a, b, out)?;
            Ok(len32(out.len()))
        }
        Op::LastRefusal => {
            exact(b, REFUSAL_SIZE)?;
            writable(mem, a, b)?;
            let r = be.last_refusal().ok_or(psa::ERROR_DOES_NOT_EXIST)?;
            copy_out(mem, a, b, &r.encode()).map(|()| psa::SUCCESS)
        }
    }
}

/// Console text: checked whole, then copied in and written a buffer at a time.
fn console_write<M: NsMemory, B: GateBackend>(addr: u32, len: u32, mem: &mut M, be: &mut B) -> Res {
    if len as usize > CONSOLE_MAX {
        return Err(psa::ERROR_INVALID_ARGUMENT);
    }
    if !mem.check(addr, len, Access::Read) {
        return Err(psa::ERROR_PROGRAMMER_ERROR);
    }
    let mut buf = [0u8; CONSOLE_BUF];
    let mut done = 0u32;
    while done < len {
        let n = (len - done).min(CONSOLE_BUF as u32);
        let chunk = copy_in(mem, addr + done, n, &mut buf)?;
        be.console_write(chunk);
        done += n;
    }
    Ok(psa::SUCCESS)
}

/// A service result: its value, or its status once the platform has noted the refusal.
fn service<B: GateBackend, T>(
    be: &mut B,
    op: Op,
    r: Result<T, <B::Services as GateServices>::Error>,
) -> Result<T, i32> {
    r.map_err(|error| {
        let status = error.status();
        be.note(Event::Refused { op, error: &error });
        status
    })
}

fn len32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn exact(len: u32, expected: usize) -> Result<(), i32> {
    if len as usize == expected {
        Ok(())
    } else {
        Err(psa::ERROR_INVALID_ARGUMENT)
    }
}

/// Refuses an output range the caller may not write.
fn writable<M: NsMemory>(mem: &M, addr: u32, cap: u32) -> Result<(), i32> {
    if mem.check(addr, cap, Access::Write) {
        Ok(())
    } else {
        Err(psa::ERROR_PROGRAMMER_ERROR)
    }
}

/// Copies `len` bytes at `addr` into the front of `buf` (which caps the length): the copy the
/// secure side works on.
fn copy_in<'b, M: NsMemory>(
    mem: &mut M,
    addr: u32,
    len: u32,
    buf: &'b mut [u8],
) -> Result<&'b [u8], i32> {
    let dst = buf
        .get_mut(..len as usize)
        .ok_or(psa::ERROR_INVALID_ARGUMENT)?;
    mem.read(addr, dst)?;
    Ok(dst)
}

/// Copies `data` out to the caller's buffer `addr .. addr + cap`.
fn copy_out<M: NsMemory>(mem: &mut M, addr: u32, cap: u32, data: &[u8]) -> Result<(), i32> {
    writable(mem, addr, cap)?;
    if data.len() > cap as usize {
        return Err(psa::ERROR_BUFFER_TOO_SMALL);
    }
    mem.write(addr, data)
}
