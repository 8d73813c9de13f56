//! The power rail a device's parts share, and fault plans that cut it.
//!
//! Every mutating hardware operation (a flash write call, the erase of one sector, a fuse
//! program, a fuse-region lock) takes the next operation index on the rail. A [`FaultPlan`] picks
//! one index and a [`FaultPhase`]:
//!
//! ```text
//!  op index:      0      1      2  ...  N                     N+1 ...
//!  Before         ok     ok     ok      not done, PowerLoss   PowerLoss (device off)
//!  Torn           ok     ok     ok      partly done, garbage  PowerLoss
//!  After          ok     ok     ok      done, PowerLoss       PowerLoss
//! ```
//!
//! Once cut, every operation (reads, RNG and UDS included) fails with `PowerLoss` until the rail
//! is powered on again ([`PowerRail::power_on`], or `SimDevice::power_cycle`). Operations refused
//! by a rule (misaligned, not erased, locked, ...) change nothing and take no index.
//!
//! To enumerate every cut of a scenario: run it once with no plan and read [`PowerRail::ops`]
//! (the dry run), then for each plan of [`FaultPlan::all`] restore the start state, arm the plan,
//! run until `PowerLoss`, power cycle, recover and check.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use castellan_hal::HalError;

use crate::prng::SplitMix64;

/// When, relative to the chosen operation, the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPhase {
    /// The operation does not happen at all.
    Before,
    /// The operation is cut in the middle: for a write, a prefix of its write units is written,
    /// the unit in flight holds garbage, the rest is untouched; for a sector erase, a prefix of
    /// the sector is erased, the next write unit holds garbage, the rest keeps its old data; for
    /// a fuse program, a random subset of the new bits is set; for a lock, it may or may not
    /// take. The choices come from the plan's seed.
    Torn,
    /// The operation completes, then the power goes (the caller still sees `PowerLoss`).
    After,
}

impl FaultPhase {
    /// The three phases, in order.
    pub const ALL: [FaultPhase; 3] = [FaultPhase::Before, FaultPhase::Torn, FaultPhase::After];
}

/// One power cut: at mutating operation number `at` (0-based, counted from arming), in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultPlan {
    /// Index of the operation to cut, counted from the moment the plan is armed.
    pub at: u64,
    /// Where in that operation the cut happens.
    pub phase: FaultPhase,
    /// Seed of the torn-operation choices (which prefix survives, the garbage bytes).
    pub seed: u64,
}

impl FaultPlan {
    /// A cut at operation `at` in `phase`, with a seed derived from both (deterministic).
    pub const fn new(at: u64, phase: FaultPhase) -> Self {
        let seed = at.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (phase as u64);
        FaultPlan { at, phase, seed }
    }

    /// The same cut with another seed for the torn-operation choices.
    pub const fn with_seed(self, seed: u64) -> Self {
        FaultPlan { seed, ..self }
    }

    /// Every cut of a run of `ops` operations: `at` in `0..ops`, each with the three phases.
    pub fn all(ops: u64) -> impl Iterator<Item = FaultPlan> {
        (0..ops).flat_map(|at| {
            FaultPhase::ALL
                .into_iter()
                .map(move |p| FaultPlan::new(at, p))
        })
    }
}

/// What the rail lets an operation do.
pub(crate) enum OpFate {
    /// Do it fully, report success.
    Complete,
    /// Do it fully, then report `PowerLoss` (the rail is now off).
    CompleteThenCut,
    /// Do part of it using these choices, then report `PowerLoss` (the rail is now off).
    Torn(SplitMix64),
}

#[derive(Debug, Clone, Default)]
struct RailState {
    off: bool,
    ops: u64,
    plan: Option<FaultPlan>,
}

/// A device's power supply, shared by its flash, OTP, UDS and RNG.
///
/// This is a handle: clones share the same rail (a `SimDevice` gives one to each of its parts).
#[derive(Debug, Clone, Default)]
pub struct PowerRail(Arc<Mutex<RailState>>);

impl PowerRail {
    /// A powered rail with no plan.
    pub fn new() -> Self {
        PowerRail::default()
    }

    /// Arms `plan` and restarts the operation count at 0 (the plan's `at` counts from here).
    pub fn arm(&self, plan: FaultPlan) {
        let mut s = self.state();
        s.plan = Some(plan);
        s.ops = 0;
    }

    /// Removes the armed plan, if any.
    pub fn disarm(&self) {
        self.state().plan = None;
    }

    /// The armed plan that has not fired yet.
    pub fn plan(&self) -> Option<FaultPlan> {
        self.state().plan
    }

    /// Mutating operations begun since power-on, the last [`PowerRail::arm`] or
    /// [`PowerRail::reset_ops`] (the one cut included).
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Restarts the operation count at 0.
    pub fn reset_ops(&self) {
        self.state().ops = 0;
    }

    /// True while the device has power.
    pub fn is_on(&self) -> bool {
        !self.state().off
    }

    /// Cuts the power now, between operations.
    pub fn cut(&self) {
        let mut s = self.state();
        s.off = true;
        s.plan = None;
    }

    /// Powers the rail up: on, no plan, operation count 0. (`SimDevice::power_cycle` also
    /// resets the parts' volatile state, such as the UDS lock.)
    pub fn power_on(&self) {
        *self.state() = RailState::default();
    }

    /// A rail with the same state that shares nothing with this one.
    pub(crate) fn fork(&self) -> PowerRail {
        PowerRail(Arc::new(Mutex::new(self.state().clone())))
    }

    /// Fails with `PowerLoss` when off (for operations that take no index: reads, RNG, UDS).
    pub(crate) fn check_on(&self) -> Result<(), HalError> {
        if self.state().off {
            Err(HalError::PowerLoss)
        } else {
            Ok(())
        }
    }

    /// Takes the next operation index and says what the operation may do. `Err(PowerLoss)` if
    /// the rail is off or the plan cuts before this operation.
    pub(crate) fn begin_op(&self) -> Result<OpFate, HalError> {
        let mut s = self.state();
        if s.off {
            return Err(HalError::PowerLoss);
        }
        let index = s.ops;
        s.ops = s.ops.saturating_add(1);
        match s.plan {
            Some(plan) if plan.at == index => {
                s.off = true;
                s.plan = None;
                match plan.phase {
                    FaultPhase::Before => Err(HalError::PowerLoss),
                    FaultPhase::Torn => Ok(OpFate::Torn(SplitMix64::new(plan.seed))),
                    FaultPhase::After => Ok(OpFate::CompleteThenCut),
                }
            }
            _ => Ok(OpFate::Complete),
        }
    }

    fn state(&self) -> MutexGuard<'_, RailState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
