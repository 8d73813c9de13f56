//! The normal world's end of a simulated gate: [`SimGate`] implements
//! [`castellan_gate_api::SecureGate`] by laying every argument out in a simulated non-secure
//! memory, as the application's own buffers, and passing addresses and lengths to the secure
//! side's dispatcher, which checks and copies them as the firmware does.
//!
//! ```text
//!  gate.its_get(7, &mut buf) ─▶ invoke(ItsGet, [Int(7), Out(buf)])
//!     lay out: buf → NS RAM @ a           registers [7, a, buf.len(), 0]
//!     SimSecure::call ─▶ dispatch(ItsGet, regs, SimNsMemory, backend)
//!     copy back: NS RAM @ a → buf         ◀─ status / length
//! ```
//!
//! [`OwnedArg`] carries a call's arguments across threads (the agent's secure world runs on
//! a thread of its own).

use castellan_gate_api::{Arg, Op, SecureGate, psa, registers};

use crate::memory::{NS_RAM_BASE, SimNsMemory};

/// Something that runs one gate call over a caller's memory: the secure side.
pub trait GateCall {
    /// Runs `op` with registers `args` for a caller whose memory is `mem`.
    fn gate_call(&mut self, op: Op, args: [u32; 4], mem: &mut SimNsMemory) -> i32;
}

impl<F, C, R> GateCall for crate::SimSecure<F, C, R>
where
    F: castellan_hal::Flash,
    C: castellan_hal::MonotonicCounter,
    R: castellan_hal::RandomSource,
{
    fn gate_call(&mut self, op: Op, args: [u32; 4], mem: &mut SimNsMemory) -> i32 {
        self.call(op, args, mem)
    }
}

/// The gate of a simulated device, from its normal world.
#[derive(Debug)]
pub struct SimGate<'a, S> {
    secure: &'a mut S,
    mem: SimNsMemory,
}

impl<'a, S: GateCall> SimGate<'a, S> {
    /// The gate to `secure`, with blank non-secure memory.
    pub fn new(secure: &'a mut S) -> Self {
        SimGate {
            secure,
            mem: SimNsMemory::new(),
        }
    }

    /// The non-secure memory (what the secure side wrote there).
    pub fn memory(&self) -> &SimNsMemory {
        &self.mem
    }
}

impl<S: GateCall> SecureGate for SimGate<'_, S> {
    fn invoke(&mut self, op: Op, args: &mut [Arg<'_>]) -> i32 {
        invoke(self.secure, &mut self.mem, op, args)
    }
}

/// Lays `args` out in `mem` as [`Op::regs`] says, runs the call, copies the outputs back.
pub fn invoke<S: GateCall + ?Sized>(
    secure: &mut S,
    mem: &mut SimNsMemory,
    op: Op,
    args: &mut [Arg<'_>],
) -> i32 {
    // Outputs laid out in non-secure memory (argument index, address, length), to copy back.
    let mut outs = Vec::new();
    let mut at = NS_RAM_BASE;
    let regs = registers(op, args, |n, arg| {
        let bytes = arg.bytes();
        let addr = at;
        // The caller's buffer as it is in its memory (a buffer too large for the simulated RAM
        // is passed with its length but not copied: the secure side refuses it by its caps or
        // by its range, as it would on the hardware).
        if mem.put(addr, bytes) && matches!(arg, Arg::Out(_)) {
            outs.push((n, addr, bytes.len()));
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        at = at.saturating_add(len.next_multiple_of(8));
        addr
    });
    // The typed calls never mismatch a layout; a hand-made call may.
    let Some(regs) = regs else {
        return psa::ERROR_INVALID_ARGUMENT;
    };
    let status = secure.gate_call(op, regs, mem);
    for (n, addr, len) in outs {
        if let Some(Arg::Out(b)) = args.get_mut(n) {
            if let Some(b) = b.get_mut(..len) {
                mem.get(addr, b);
            }
        }
    }
    status
}

/// A call's argument, owned (to send it to the thread of the secure side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedArg {
    /// An integer.
    Int(u32),
    /// Input bytes.
    In(Vec<u8>),
    /// An output buffer (its bytes before the call; after it, what the secure side wrote).
    Out(Vec<u8>),
}

impl OwnedArg {
    /// Copies of `args`.
    pub fn from_args(args: &[Arg<'_>]) -> Vec<OwnedArg> {
        args.iter()
            .map(|a| match a {
                Arg::Int(v) => OwnedArg::Int(*v),
                Arg::In(b) => OwnedArg::In(b.to_vec()),
                Arg::Out(b) => OwnedArg::Out(b.to_vec()),
            })
            .collect()
    }

    /// Borrows owned arguments as [`Arg`]s.
    pub fn as_args(owned: &mut [OwnedArg]) -> Vec<Arg<'_>> {
        owned
            .iter_mut()
            .map(|a| match a {
                OwnedArg::Int(v) => Arg::Int(*v),
                OwnedArg::In(b) => Arg::In(b),
                OwnedArg::Out(b) => Arg::Out(b),
            })
            .collect()
    }

    /// Copies the outputs of `owned` (after the call) back into `args`.
    pub fn copy_back(owned: &[OwnedArg], args: &mut [Arg<'_>]) {
        for (o, a) in owned.iter().zip(args.iter_mut()) {
            if let (OwnedArg::Out(src), Arg::Out(dst)) = (o, a) {
                let n = src.len().min(dst.len());
                dst[..n].copy_from_slice(&src[..n]);
            }
        }
    }
}

impl<S: GateCall + ?Sized> GateCall for &mut S {
    fn gate_call(&mut self, op: Op, args: [u32; 4], mem: &mut SimNsMemory) -> i32 {
        (**self).gate_call(op, args, mem)
    }
}
