//! Exhaustive sweeps: a power cut at every mutating operation of a scenario's action, in each
//! phase (before, torn, after), then — for every such cut — a second cut at every operation of
//! the recovery boot; after each, the device recovers and [`recover_and_check`] judges it.
//!
//! ```text
//!  start ──act──✂ cut #1 (op i, phase p) ──power cycle──▶ after-cut state
//!                                   │ recover_and_check (boots until settled)
//!                                   └─ boot ──✂ cut #2 (op j, phase q) ──▶ recover_and_check
//! ```

use std::fmt;

use castellan_boot::{CounterId, read_security_counter};
use castellan_sim::{FaultPlan, FlashConfig, SimDevice};

use crate::check::recover_and_check;
use crate::fixture::{Images, boot};
use crate::scenario::Scenario;

/// How the second cut (during the recovery boot) is swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// No second cut.
    Off,
    /// A second cut at every operation of the recovery boot, in every phase.
    Full,
    /// A second cut at every `n`-th operation of the recovery boot, in every phase.
    Every(u64),
}

/// Results of one sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Mutating operations of the uninterrupted action.
    pub ops: u64,
    /// Power cuts injected (first cuts, and second cuts during recovery).
    pub points: u64,
    /// Runs that broke an invariant.
    pub failures: u64,
    /// The first few failures, described.
    pub examples: Vec<String>,
}

impl SweepStats {
    /// Counts a failure and keeps its description among the first few.
    pub fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }

    /// Adds another sweep's results.
    pub fn merge(&mut self, other: &SweepStats) {
        self.ops += other.ops;
        self.points += other.points;
        self.failures += other.failures;
        for e in &other.examples {
            if self.examples.len() < 10 {
                self.examples.push(e.clone());
            }
        }
    }
}

/// A short name for a geometry, as printed in progress lines.
pub struct GeometryName(pub FlashConfig);

impl fmt::Display for GeometryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write {:>2}, erased {:#04x}",
            self.0.write_size, self.0.erased_value
        )
    }
}

/// Sweeps every cut of `scenario` on a device of geometry `flash`.
///
/// `Err` when the scenario cannot even be set up or run without cuts (a harness or bootloader
/// failure that is not about power loss).
pub fn sweep(
    flash: FlashConfig,
    scenario: Scenario,
    images: &Images,
    nesting: Nesting,
) -> Result<SweepStats, String> {
    let mut dev = scenario.setup(flash, images)?;
    let start = dev.snapshot();
    let floor =
        read_security_counter(&mut dev.otp, CounterId::Application).map_err(|e| e.to_string())?;
    let mut stats = SweepStats::default();

    // The uninterrupted run: how many operations to cut, and a check that it works at all.
    scenario
        .act(&mut dev)
        .map_err(|e| format!("{scenario} without power cut: {e}"))?;
    stats.ops = dev.ops();
    dev.power_cycle();
    let expect = scenario.expectation(&mut dev).map_err(|e| e.to_string())?;
    recover_and_check(&mut dev, scenario, images, &expect, floor)
        .map_err(|e| format!("{scenario} without power cut: {e}"))?;

    let config = scenario.config();
    for first in FaultPlan::all(stats.ops) {
        restore(&mut dev, &start)?;
        dev.arm(first);
        match scenario.act(&mut dev) {
            Err(e) if e.is_power_loss() => {}
            other => {
                stats.points += 1;
                stats.fail(format!(
                    "{scenario} {first:?}: the action returned {other:?}, not a power loss"
                ));
                continue;
            }
        }
        dev.power_cycle();
        let after_cut = dev.snapshot();
        let expect = scenario.expectation(&mut dev).map_err(|e| e.to_string())?;
        stats.points += 1;
        if let Err(m) = recover_and_check(&mut dev, scenario, images, &expect, floor) {
            stats.fail(format!("{scenario} cut {first:?}: {m}"));
        }
        let every = match nesting {
            Nesting::Off => continue,
            Nesting::Full => 1,
            Nesting::Every(n) => n.max(1),
        };
        restore(&mut dev, &after_cut)?;
        // The recovery boot may fail (that is reported above); count what it does anyway.
        let _ = boot(&mut dev, &config);
        let recovery_ops = dev.ops();
        for second in FaultPlan::all(recovery_ops).filter(|p| p.at % every == 0) {
            restore(&mut dev, &after_cut)?;
            dev.arm(second);
            stats.points += 1;
            match boot(&mut dev, &config) {
                Err(e) if e.is_power_loss() => {}
                other => {
                    stats.fail(format!(
                        "{scenario} cut {first:?} then {second:?}: the recovery returned {:?}, not a power loss",
                        other.map(|r| r.upgrade)
                    ));
                    continue;
                }
            }
            dev.power_cycle();
            let expect = scenario.expectation(&mut dev).map_err(|e| e.to_string())?;
            if let Err(m) = recover_and_check(&mut dev, scenario, images, &expect, floor) {
                stats.fail(format!("{scenario} cut {first:?} then {second:?}: {m}"));
            }
        }
    }
    Ok(stats)
}

fn restore(dev: &mut SimDevice, snap: &castellan_sim::DeviceSnapshot) -> Result<(), String> {
    dev.restore(snap).map_err(|e| e.to_string())
}
