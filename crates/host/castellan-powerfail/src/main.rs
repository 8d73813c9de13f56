//! `castellan-powerfail` (run by `cargo xtask powerfail`): sweeps every scenario on every flash
//! geometry, two threads, progress on stderr, and prints as its last line
//! `power-loss: <P> injection points, <F> failures`. Exits with 1 when F > 0. Before the boot
//! chain it runs the trusted-storage campaign of `castellan-services` (every set and remove of
//! its scenario, every cut, on every geometry), which prints `its power-loss: …`, and the
//! over-the-air update path (update client, trial reboot, acceptance: [`update`]; a cut at every
//! operation, then a second cut at every 7th operation of each recovery, or every N-th with
//! `--update-stride N` or a larger `--every N`), which prints `update power-loss: …`.
//!
//! [`update`]: castellan_powerfail::update
//!
//! Options: `--threads N` (default 2), `--quick` (one geometry, no second cuts),
//! `--every N` (second cuts at every N-th operation of the recovery boot only; default 1),
//! `--update-stride N` (second cuts of the update sweep at every N-th operation of the
//! recovery; default 7, 1 for all of them: about 7 times longer).

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use castellan_powerfail::fixture::{Images, geometries};
use castellan_powerfail::sweep::GeometryName;
use castellan_powerfail::update::{Paths, UpdateFixture, update_geometries, update_sweep};
use castellan_powerfail::{Nesting, Scenario, SweepStats, sweep};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 2usize;
    let mut quick = false;
    let mut every = 1u64;
    let mut update_stride = UPDATE_SECOND_CUT_STRIDE;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => threads = n,
                _ => return usage(),
            },
            "--quick" => quick = true,
            "--every" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => every = n,
                _ => return usage(),
            },
            "--update-stride" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => update_stride = n,
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    // Trusted storage first (its line is informative); the boot chain's line comes last.
    let its = if quick {
        None
    } else {
        eprintln!("trusted storage (castellan-services ITS): every set and remove, every cut");
        Some(castellan_powerfail::its::its_power_loss_campaign())
    };
    let its_failures = its.as_ref().map_or(0, |r| r.failures);
    let mut geoms = geometries();
    let nesting = if quick {
        geoms.truncate(1);
        Nesting::Off
    } else if every == 1 {
        Nesting::Full
    } else {
        Nesting::Every(every)
    };
    let jobs: Vec<_> = geoms
        .iter()
        .flat_map(|g| Scenario::ALL.iter().map(move |s| (*g, *s)))
        .collect();
    let images = Images::new();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(SweepStats::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some((g, s)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = Instant::now();
                    let stats = sweep(*g, *s, &images, nesting).unwrap_or_else(|e| SweepStats {
                        points: 0,
                        failures: 1,
                        examples: vec![e],
                        ops: 0,
                    });
                    eprintln!(
                        "[{}] {:<18} {:>3} ops, {:>6} injection points, {} failures ({:.1} s)",
                        GeometryName(*g),
                        s.to_string(),
                        stats.ops,
                        stats.points,
                        stats.failures,
                        t.elapsed().as_secs_f64()
                    );
                    for e in &stats.examples {
                        eprintln!("    FAIL {e}");
                    }
                    if let Ok(mut t) = total.lock() {
                        t.merge(&stats);
                    }
                }
            });
        }
    });
    let update = if quick {
        None
    } else {
        Some(update_campaign(threads, every.max(update_stride)))
    };
    let update_failures = update.map_or(0, |u| u.failures);
    let total = total.into_inner().unwrap_or_default();
    eprintln!(
        "{} geometries x {} scenarios in {:.1} s on {threads} threads",
        geoms.len(),
        Scenario::ALL.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "power-loss: {} injection points, {} failures",
        total.points, total.failures
    );
    if total.failures > 0 || its_failures > 0 || update_failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The over-the-air update path (update client, reboot into the trial image, acceptance) on
/// every geometry; prints `update power-loss: <P> injection points, <F> failures`.
fn update_campaign(threads: usize, stride: u64) -> SweepStats {
    // First cuts at every operation; second cuts (during the recovery) at every n-th.
    let nesting = Nesting::Every(stride);
    eprintln!(
        "over-the-air update (castellan-services update client + boot chain): every cut of \
         download, finish, install, trial reboot, accept; second cuts at every {}th operation \
         of each recovery",
        stride
    );
    let fx = UpdateFixture::new(&Images::new());
    let geoms = update_geometries();
    let next = AtomicUsize::new(0);
    let total = Mutex::new(SweepStats::default());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(g) = geoms.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = Instant::now();
                    let (stats, paths) = update_sweep(*g, &fx, 1, nesting).unwrap_or_else(|e| {
                        let stats = SweepStats {
                            points: 0,
                            failures: 1,
                            examples: vec![e],
                            ops: 0,
                        };
                        (stats, Paths::default())
                    });
                    eprintln!(
                        "[{}] {:<18} {:>3} ops, {:>6} injection points, {} failures ({:.1} s; \
                         {} resumed, {} restarted, {} trials accepted, {} retried)",
                        GeometryName(*g),
                        "ota-update",
                        stats.ops,
                        stats.points,
                        stats.failures,
                        t.elapsed().as_secs_f64(),
                        paths.resumed,
                        paths.restarted,
                        paths.trials,
                        paths.retried
                    );
                    for e in &stats.examples {
                        eprintln!("    FAIL {e}");
                    }
                    if let Ok(mut t) = total.lock() {
                        t.merge(&stats);
                    }
                }
            });
        }
    });
    let total = total.into_inner().unwrap_or_default();
    println!(
        "update power-loss: {} injection points, {} failures",
        total.points, total.failures
    );
    total
}

/// Second cuts of the update sweep at every n-th operation of the recovery (at least), which
/// keeps the whole run within a few minutes on two cores.
const UPDATE_SECOND_CUT_STRIDE: u64 = 7;

fn usage() -> ExitCode {
    eprintln!("usage: castellan-powerfail [--threads N] [--quick] [--every N] [--update-stride N]");
    ExitCode::from(2)
}
