//! [`SecureGate`]: the safe, typed view of the gate from the non-secure side. An implementation
//! supplies one method, [`SecureGate::invoke`] (how arguments reach the secure side: registers
//! and real pointers on the hardware, a simulated non-secure memory on the host); every typed
//! call is written once, here, over it.
//!
//! ```text
//!  gate.attest_token(nonce, out) ─▶ invoke(AttestToken, [In(nonce), Out(out)])
//!                                     └▶ registers [nonce, 32, out, cap] ─▶ secure side
//!  ◀─ Ok(len) / Err(GateError(status))
//! ```

use core::fmt;

use crate::op::{HASH_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::records::{
    BOOT_INFO_SIZE, BootInfo, ITS_SUMMARY_SIZE, ItsSummary, REFUSAL_SIZE, Refusal,
    UPDATE_STATUS_SIZE, UpdateStatus,
};
use crate::sensor::{DETECT_STATUS_SIZE, DetectStatus};
use crate::{Op, Reg, psa};

/// A refused or failed gate call: the PSA status the secure side returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateError(pub i32);

impl GateError {
    /// The PSA status (`< 0`).
    pub const fn status(self) -> i32 {
        self.0
    }

    /// A short name for it.
    pub const fn name(self) -> &'static str {
        psa::name(self.0)
    }
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (PSA status {})", self.name(), self.0)
    }
}

impl core::error::Error for GateError {}

/// One logical argument of a call; [`Op::regs`] says how it fills the registers.
#[derive(Debug)]
pub enum Arg<'a> {
    /// A plain integer ([`crate::Reg::Int`]).
    Int(u32),
    /// Input: address and length ([`crate::Reg::In`], [`crate::Reg::InLen`]).
    In(&'a [u8]),
    /// Output: address and capacity ([`crate::Reg::Out`], [`crate::Reg::OutCap`]), or the
    /// address alone when the operation fixes the size ([`crate::Reg::OutFixed`]).
    Out(&'a mut [u8]),
}

impl Arg<'_> {
    /// The bytes of a buffer argument (none for an integer).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Arg::Int(_) => &[],
            Arg::In(b) => b,
            Arg::Out(b) => b,
        }
    }
}

/// The four registers of a call of `op` with `args`: integers as they are, each buffer as the
/// address `addr` gives it (called with the argument's index) followed by its length or
/// capacity, unless [`Op::regs`] fixes the size. `None` when `args` do not match the layout
/// (or a fixed-size output is too small).
pub fn registers(
    op: Op,
    args: &[Arg<'_>],
    mut addr: impl FnMut(usize, &Arg<'_>) -> u32,
) -> Option<[u32; 4]> {
    let layout = op.regs();
    let mut r = [0u32; 4];
    let mut i = 0;
    for (n, arg) in args.iter().enumerate() {
        let len = u32::try_from(arg.bytes().len()).ok()?;
        match (arg, layout.get(i).copied()?) {
            (Arg::Int(v), Reg::Int) => {
                *r.get_mut(i)? = *v;
                i += 1;
            }
            (Arg::In(_), Reg::In) | (Arg::Out(_), Reg::Out) => {
                *r.get_mut(i)? = addr(n, arg);
                *r.get_mut(i + 1)? = len;
                i += 2;
            }
            (Arg::Out(b), Reg::OutFixed(size)) if b.len() >= size => {
                *r.get_mut(i)? = addr(n, arg);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(r)
}

fn ok(r: i32) -> Result<u32, GateError> {
    u32::try_from(r).map_err(|_| GateError(r))
}

fn len(r: i32) -> Result<usize, GateError> {
    ok(r).map(|n| n as usize)
}

/// The gate as the non-secure side sees it. `no_std`: only slices and fixed records cross it.
pub trait SecureGate {
    /// Performs `op` with `args` (in the order of [`Op::regs`], pointers and their lengths as
    /// one argument) and returns the raw result: a PSA status (`< 0`) or a non-negative value.
    fn invoke(&mut self, op: Op, args: &mut [Arg<'_>]) -> i32;

    /// Prints text on the device console.
    fn console_write(&mut self, text: &[u8]) -> Result<(), GateError> {
        ok(self.invoke(Op::ConsoleWrite, &mut [Arg::In(text)])).map(drop)
    }

    /// The operator's command line for this run into `out`; returns its length.
    fn command(&mut self, out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::Command, &mut [Arg::Out(out)]))
    }

    /// What the bootloader did and what runs.
    fn boot_info(&mut self) -> Result<BootInfo, GateError> {
        let mut b = [0u8; BOOT_INFO_SIZE];
        ok(self.invoke(Op::BootInfo, &mut [Arg::Out(&mut b)]))?;
        Ok(BootInfo::decode(&b))
    }

    /// An attestation token over `nonce` (32, 48 or 64 bytes) into `out`; returns its length.
    fn attest_token(&mut self, nonce: &[u8], out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::AttestToken, &mut [Arg::In(nonce), Arg::Out(out)]))
    }

    /// The attestation public key (SEC1 uncompressed P-256) into `out`; returns its length.
    fn attest_public_key(&mut self, out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::AttestPublicKey, &mut [Arg::Out(out)]))
    }

    /// Starts writing a raw candidate image of `size` bytes (erases the update slot).
    fn fwu_start(&mut self, size: u32) -> Result<(), GateError> {
        ok(self.invoke(Op::FwuStart, &mut [Arg::Int(size)])).map(drop)
    }

    /// Writes a chunk of the raw candidate at `offset`.
    fn fwu_write(&mut self, offset: u32, data: &[u8]) -> Result<(), GateError> {
        ok(self.invoke(Op::FwuWrite, &mut [Arg::Int(offset), Arg::In(data)])).map(drop)
    }

    /// Requests the candidate's installation at the next boot: a test run (reverted unless
    /// accepted) or permanent.
    fn fwu_install(&mut self, permanent: bool) -> Result<(), GateError> {
        let p = u32::from(permanent);
        ok(self.invoke(Op::FwuInstall, &mut [Arg::Int(p)])).map(drop)
    }

    /// Accepts the running image (confirms the trial).
    fn fwu_accept(&mut self) -> Result<(), GateError> {
        ok(self.invoke(Op::FwuAccept, &mut [])).map(drop)
    }

    /// Stores `data` (at most [`crate::ITS_CHUNK`] bytes) under `uid` in trusted storage.
    fn its_set(&mut self, uid: u32, data: &[u8]) -> Result<(), GateError> {
        ok(self.invoke(Op::ItsSet, &mut [Arg::Int(uid), Arg::In(data)])).map(drop)
    }

    /// Reads asset `uid` into `out`; returns its length.
    fn its_get(&mut self, uid: u32, out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::ItsGet, &mut [Arg::Int(uid), Arg::Out(out)]))
    }

    /// Trusted storage's state (an error when it does not mount).
    fn its_status(&mut self) -> Result<ItsSummary, GateError> {
        let mut b = [0u8; ITS_SUMMARY_SIZE];
        ok(self.invoke(Op::ItsStatus, &mut [Arg::Out(&mut b)]))?;
        Ok(ItsSummary::decode(&b))
    }

    /// Provisions the release trust anchor (P-256, SEC1 uncompressed), write-once.
    fn update_anchor(&mut self, key: &[u8]) -> Result<(), GateError> {
        ok(self.invoke(Op::UpdateAnchor, &mut [Arg::In(key)])).map(drop)
    }

    /// Starts (or resumes) an update from a SUIT envelope; `now` is unix seconds (0 when
    /// unknown: expiry is then not checked). Returns where the download continues.
    fn update_begin(&mut self, envelope: &[u8], now: u32) -> Result<u32, GateError> {
        ok(self.invoke(Op::UpdateBegin, &mut [Arg::In(envelope), Arg::Int(now)]))
    }

    /// Writes the next payload block at `offset`; returns the bytes received so far.
    fn update_write(&mut self, offset: u32, data: &[u8]) -> Result<u32, GateError> {
        ok(self.invoke(Op::UpdateWrite, &mut [Arg::Int(offset), Arg::In(data)]))
    }

    /// Verifies the payload and installs it for a trial run; returns the PSA success code
    /// (`SUCCESS_REBOOT`: the reboot completes it).
    fn update_finish(&mut self) -> Result<i32, GateError> {
        let r = self.invoke(Op::UpdateFinish, &mut []);
        ok(r).map(|_| r)
    }

    /// Abandons the update in progress.
    fn update_cancel(&mut self) -> Result<(), GateError> {
        ok(self.invoke(Op::UpdateCancel, &mut [])).map(drop)
    }

    /// The update client's state.
    fn update_status(&mut self) -> Result<UpdateStatus, GateError> {
        let mut b = [0u8; UPDATE_STATUS_SIZE];
        ok(self.invoke(Op::UpdateStatus, &mut [Arg::Out(&mut b)]))?;
        Ok(UpdateStatus::decode(&b))
    }

    /// The device identity key's public key (the key is generated on first use).
    fn identity_key(&mut self) -> Result<[u8; PUBLIC_KEY_LEN], GateError> {
        let mut k = [0u8; PUBLIC_KEY_LEN];
        ok(self.invoke(Op::IdentityKey, &mut [Arg::Out(&mut k)]))?;
        Ok(k)
    }

    /// The public key of key `id` into `out`; returns its length.
    fn export_public_key(&mut self, id: u32, out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::ExportPublicKey, &mut [Arg::Int(id), Arg::Out(out)]))
    }

    /// An ECDSA P-256 signature `r ‖ s` over a SHA-256 hash with key `id`.
    fn sign_hash(
        &mut self,
        id: u32,
        hash: &[u8; HASH_LEN],
    ) -> Result<[u8; SIGNATURE_LEN], GateError> {
        let mut sig = [0u8; SIGNATURE_LEN];
        let args = &mut [Arg::Int(id), Arg::In(hash), Arg::Out(&mut sig)];
        ok(self.invoke(Op::SignHash, args))?;
        Ok(sig)
    }

    /// Destroys key `id`.
    fn destroy_key(&mut self, id: u32) -> Result<(), GateError> {
        ok(self.invoke(Op::DestroyKey, &mut [Arg::Int(id)])).map(drop)
    }

    /// Generates a persistent P-256 signing key under `id` (not exportable).
    fn generate_signing_key(&mut self, id: u32) -> Result<(), GateError> {
        ok(self.invoke(Op::GenerateSigningKey, &mut [Arg::Int(id)])).map(drop)
    }

    /// Fills `out` (1 to [`crate::RANDOM_CAP`] bytes) with random bytes from the secure
    /// partition's random source.
    fn generate_random(&mut self, out: &mut [u8]) -> Result<(), GateError> {
        let n = len(self.invoke(Op::GenerateRandom, &mut [Arg::Out(out)]))?;
        if n == out.len() {
            Ok(())
        } else {
            Err(GateError(psa::ERROR_GENERIC_ERROR))
        }
    }

    /// Why the last refused call was refused (`DOES_NOT_EXIST` when the secure side keeps
    /// no record).
    fn last_refusal(&mut self) -> Result<Refusal, GateError> {
        let mut b = [0u8; REFUSAL_SIZE];
        ok(self.invoke(Op::LastRefusal, &mut [Arg::Out(&mut b)]))?;
        Ok(Refusal::decode(&b))
    }

    /// Reports an application event to the detector (`kind`: [`crate::app_kind`]).
    fn app_event(&mut self, kind: u32, arg: u32) -> Result<(), GateError> {
        ok(self.invoke(Op::AppEvent, &mut [Arg::Int(kind), Arg::Int(arg)])).map(drop)
    }

    /// A signed detection report into `out` (at most [`crate::DETECT_REPORT_CAP`] bytes);
    /// returns its length.
    fn detect_report(&mut self, out: &mut [u8]) -> Result<usize, GateError> {
        len(self.invoke(Op::DetectReport, &mut [Arg::Out(out)]))
    }

    /// The detector's state.
    fn detect_status(&mut self) -> Result<DetectStatus, GateError> {
        let mut b = [0u8; DETECT_STATUS_SIZE];
        ok(self.invoke(Op::DetectStatus, &mut [Arg::Out(&mut b)]))?;
        Ok(DetectStatus::decode(&b))
    }

    /// Resets the device (returns only when refused).
    fn system_reset(&mut self) -> GateError {
        GateError(self.invoke(Op::SystemReset, &mut []))
    }

    /// Powers the (emulated) device off with `code` (returns only when refused).
    fn power_off(&mut self, code: u32) -> GateError {
        GateError(self.invoke(Op::PowerOff, &mut [Arg::Int(code)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_follow_the_layout() {
        let nonce = [1u8; 32];
        let mut out = [0u8; 100];
        let args = [Arg::In(&nonce), Arg::Out(&mut out)];
        let r = registers(Op::AttestToken, &args, |n, _| 0x100 * (n as u32 + 1));
        assert_eq!(r, Some([0x100, 32, 0x200, 100]));
        let mut sig = [0u8; 64];
        let args = [Arg::Int(7), Arg::In(&nonce), Arg::Out(&mut sig)];
        let r = registers(Op::SignHash, &args, |n, _| n as u32);
        assert_eq!(r, Some([7, 1, 32, 2]));
    }

    #[test]
    fn a_mismatch_is_refused() {
        let mut small = [0u8; 10];
        let hash = [0u8; 32];
        let args = [Arg::Int(7), Arg::In(&hash), Arg::Out(&mut small)];
        assert_eq!(registers(Op::SignHash, &args, |_, _| 0), None);
        assert_eq!(registers(Op::ItsSet, &[Arg::In(&hash)], |_, _| 0), None);
        let five = [
            Arg::Int(0),
            Arg::Int(0),
            Arg::Int(0),
            Arg::Int(0),
            Arg::Int(0),
        ];
        assert_eq!(registers(Op::FwuStart, &five, |_, _| 0), None);
    }
}
