//! Exhaustive power-loss injection over trusted storage (castellan-services' ITS): for every set and remove of a
//! scenario, cut the power at every flash and counter operation (before, torn, after), on every
//! flash geometry of the matrix (write sizes 1/4/8/16 × erased 0xFF/0x00), then remount and
//! check atomicity, isolation, the absence of false replay errors and that the store still
//! accepts writes. Cuts during the recovery mount (roll-forward, resync) are injected too, and
//! after recovery and one more protected write, the flash images from before the step and from
//! the moment of the cut must both be refused (no replay window opened by the cut).
//!
//! ```text
//!  for geometry in FlashConfig::matrix:            for step i of the scenario:
//!    state S(i-1) ── dry run ──▶ n operations        for cut in FaultPlan::all(n):
//!                                                       restore S(i-1) · mount · arm(cut) · step
//!                                                       power cycle · mount (may cut again)
//!                                                       state == S(i-1) or S(i) · probe write ok
//!                                                       put back image S(i-1) / crashed: refused
//! ```
//!
//! [`its_power_loss_campaign`] runs the default scenario and prints
//! `its power-loss: <P> injection points, <F> failures`; the `castellan-powerfail` command runs
//! it before the boot chain's sweep.

use std::collections::BTreeMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, println, vec};

use castellan_devkit::{DeviceSpec, PARTITION_ITS, PARTITION_ITS_KEY};
use castellan_sim::{DeviceSnapshot, FaultPlan, FlashConfig, SimDevice};

use castellan_devkit::sim_services::sim_platform;
use castellan_hal::{Flash, NorFlash, ReadNorFlash};

use castellan_services::{Its, ItsConfig, ItsFlags, ServiceError};

/// One change of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `psa_its_set(uid, data, flags)`.
    Set {
        /// Asset id.
        uid: u64,
        /// New value.
        data: Vec<u8>,
        /// Creation flags.
        flags: ItsFlags,
    },
    /// `psa_its_remove(uid)`.
    Remove {
        /// Asset id.
        uid: u64,
    },
}

/// Result of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerLossReport {
    /// Power cuts injected (steps and recovery mounts, all geometries).
    pub injection_points: u64,
    /// Of those, cuts injected into the recovery mount after a first cut.
    pub recovery_injection_points: u64,
    /// Cuts after which a check failed.
    pub failures: u64,
    /// Geometries covered.
    pub geometries: usize,
    /// Transactions made by compaction in the dry runs (proves the scenario covers it).
    pub compactions: u64,
    /// The first failures, described (at most 20).
    pub failure_details: Vec<String>,
}

impl fmt::Display for PowerLossReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its power-loss: {} injection points, {} failures",
            self.injection_points, self.failures
        )
    }
}

/// The campaign's device: the catalog's `services-its` (8 KiB of flash in 512-byte sectors, the
/// key area in sector 0, the log in sectors 1..5), in every write size and erased value.
pub const DEVICE: DeviceSpec = castellan_devkit::SERVICES_ITS;
/// Uid of the write that checks the store still works after a cut.
const PROBE_UID: u64 = 0xF00D;
/// Sealing CDI of the campaign's device.
const CDI_SEAL: [u8; 32] = [0x5E; 32];

/// The store layout of the campaign: key area in sector 0, a 2 KiB log (two 1 KiB banks, two
/// sectors each) in sectors 1..5 of an 8 KiB flash.
pub fn campaign_config() -> ItsConfig {
    let part = |name| {
        DEVICE
            .partition(name)
            .expect("the services-its device has its storage partitions")
    };
    ItsConfig::new(part(PARTITION_ITS), part(PARTITION_ITS_KEY))
}

/// The default scenario: protected, unprotected and write-once assets, overwrites, removes,
/// appends and compactions (the banks are small), the first protected write after a mount.
pub fn default_scenario() -> Vec<Step> {
    let set = |uid, len: usize, fill: u8, flags| Step::Set {
        uid,
        data: (0..len).map(|i| fill ^ i as u8).collect(),
        flags,
    };
    vec![
        set(1, 100, 0x11, ItsFlags::NONE),
        set(2, 200, 0x22, ItsFlags::NO_REPLAY_PROTECTION),
        set(3, 64, 0x33, ItsFlags::WRITE_ONCE),
        set(1, 250, 0x44, ItsFlags::NONE),
        Step::Remove { uid: 2 },
        set(
            4,
            40,
            0x55,
            ItsFlags::NO_REPLAY_PROTECTION.union(ItsFlags::NO_CONFIDENTIALITY),
        ),
        set(2, 250, 0x66, ItsFlags::NONE),
        Step::Remove { uid: 1 },
        set(5, 1, 0x77, ItsFlags::NONE),
        set(4, 0, 0x88, ItsFlags::NO_REPLAY_PROTECTION),
        set(2, 260, 0x99, ItsFlags::NONE),
        Step::Remove { uid: 4 },
    ]
}

/// Runs the default scenario over the whole geometry matrix, prints the summary line and
/// returns the report.
pub fn its_power_loss_campaign() -> PowerLossReport {
    let report = run_campaign(
        FlashConfig::matrix(DEVICE.flash_size, DEVICE.sector_size),
        &default_scenario(),
    );
    println!("{report}");
    report
}

type Model = BTreeMap<u64, (Vec<u8>, ItsFlags)>;

/// Runs `scenario` with every power cut on every geometry of `geometries`.
pub fn run_campaign(
    geometries: impl IntoIterator<Item = FlashConfig>,
    scenario: &[Step],
) -> PowerLossReport {
    let mut report = PowerLossReport::default();
    for geometry in geometries {
        report.geometries += 1;
        if let Err(e) = run_geometry(geometry, scenario, &mut report) {
            report.failures += 1;
            note(&mut report, format!("{geometry:?}: setup failed: {e}"));
        }
    }
    report
}

fn run_geometry(
    geometry: FlashConfig,
    scenario: &[Step],
    report: &mut PowerLossReport,
) -> Result<(), String> {
    let mut dev = SimDevice::new(DEVICE.config(geometry), 7).map_err(|e| e.to_string())?;
    mount(&mut dev).map_err(|e| e.to_string())?;
    let mut model = Model::new();
    for (i, step) in scenario.iter().enumerate() {
        let start = dev.snapshot();
        let mut next = model.clone();
        apply_model(&mut next, step);
        // Dry run: count the step's operations and check it does what the model says.
        let mut its = mount(&mut dev).map_err(|e| e.to_string())?;
        let bank_before = its.status().active_bank;
        dev.rail().reset_ops();
        run_step(&mut its, &mut dev, step).map_err(|e| format!("step {i} dry run: {e}"))?;
        let ops = dev.ops();
        if its.status().active_bank != bank_before {
            report.compactions += 1;
        }
        for plan in FaultPlan::all(ops) {
            report.injection_points += 1;
            if let Err(why) = inject(&mut dev, &start, plan, step, &model, &next, report) {
                report.failures += 1;
                note(
                    report,
                    format!("{geometry:?} step {i} {step:?} cut {plan:?}: {why}"),
                );
            }
        }
        dev.restore(&start).map_err(|e| e.to_string())?;
        let mut its = mount(&mut dev).map_err(|e| e.to_string())?;
        run_step(&mut its, &mut dev, step).map_err(|e| format!("step {i}: {e}"))?;
        model = next;
    }
    Ok(())
}

/// One cut during `step` from state `start`, then recovery (with every cut of the recovery
/// mount too) and the checks.
fn inject(
    dev: &mut SimDevice,
    start: &DeviceSnapshot,
    plan: FaultPlan,
    step: &Step,
    before: &Model,
    after: &Model,
    report: &mut PowerLossReport,
) -> Result<(), String> {
    dev.restore(start).map_err(|e| e.to_string())?;
    let start_image = dev.flash.contents().to_vec();
    let mut its = mount(dev).map_err(|e| format!("mount before the cut: {e}"))?;
    dev.arm(plan);
    match run_step(&mut its, dev, step) {
        Err(e) if e.is_power_loss() => {}
        Err(e) => return Err(format!("step failed with {e} instead of a power loss")),
        Ok(()) => return Err("the cut did not happen".into()),
    }
    drop(its);
    dev.power_cycle();
    let crashed = dev.snapshot();
    let crashed_image = dev.flash.contents().to_vec();
    // Cuts during the recovery mount (it raises the counter after a cut commit).
    dev.rail().reset_ops();
    mount(dev).map_err(|e| format!("recovery mount: {e}"))?;
    let recovery_ops = dev.ops();
    for rplan in FaultPlan::all(recovery_ops) {
        report.injection_points += 1;
        report.recovery_injection_points += 1;
        dev.restore(&crashed).map_err(|e| e.to_string())?;
        dev.arm(rplan);
        match mount(dev) {
            Err(e) if e.is_power_loss() => {}
            Err(e) => return Err(format!("recovery mount cut at {rplan:?} failed with {e}")),
            Ok(_) => return Err(format!("recovery cut {rplan:?} did not happen")),
        }
        dev.power_cycle();
        check_recovered(dev, before, after)
            .map_err(|e| format!("after recovery cut {rplan:?}: {e}"))?;
    }
    dev.restore(&crashed).map_err(|e| e.to_string())?;
    check_recovered(dev, before, after)?;
    // The probe was a protected write: neither older image may mount any more.
    for (name, image) in [("pre-step", &start_image), ("crashed", &crashed_image)] {
        put_back_flash(dev, image).map_err(|e| e.to_string())?;
        dev.power_cycle();
        match mount(dev) {
            Err(ServiceError::StorageRollback { .. } | ServiceError::StorageCorrupt(_)) => {}
            Err(e) => return Err(format!("{name} image put back: unexpected error {e}")),
            Ok(_) => return Err(format!("{name} image put back after a later write mounts")),
        }
    }
    Ok(())
}

/// Puts a whole flash image back the way an attacker with a programmer does (erase, program).
fn put_back_flash(dev: &mut SimDevice, image: &[u8]) -> Result<(), castellan_hal::HalError> {
    let size = dev.flash.capacity() as u32;
    let ws = dev.flash.write_size();
    let erased = dev.flash.erased_value();
    dev.flash.erase(0, size)?;
    for (i, unit) in image.chunks(ws).enumerate() {
        if unit.iter().any(|b| *b != erased) {
            dev.flash.write((i * ws) as u32, unit)?;
        }
    }
    Ok(())
}

/// Mounts, checks the state is `before` or `after`, writes a probe, remounts, checks again.
fn check_recovered(dev: &mut SimDevice, before: &Model, after: &Model) -> Result<(), String> {
    let mut its = mount(dev).map_err(|e| format!("remount: {e}"))?;
    let seen = observe(&mut its, dev, before, after)?;
    if seen != *before && seen != *after {
        return Err(format!(
            "state is neither the old nor the new one: uids {:?}",
            seen.keys().collect::<Vec<_>>()
        ));
    }
    let mut p = sim_platform(dev).map_err(|e| e.to_string())?;
    its.set(&mut p, PROBE_UID, b"probe", ItsFlags::NONE)
        .map_err(|e| format!("store refuses writes after recovery: {e}"))?;
    drop(its);
    dev.power_cycle();
    let mut its = mount(dev).map_err(|e| format!("remount after probe: {e}"))?;
    let again = observe(&mut its, dev, before, after)?;
    if again != seen {
        return Err("the probe write changed other assets".into());
    }
    let mut buf = [0u8; 8];
    let mut p = sim_platform(dev).map_err(|e| e.to_string())?;
    match its.get(&mut p, PROBE_UID, 0, &mut buf) {
        Ok(5) if &buf[..5] == b"probe" => Ok(()),
        other => Err(format!("probe reads back as {other:?}")),
    }
}

/// The store's content for every uid either model knows.
fn observe(
    its: &mut Its,
    dev: &mut SimDevice,
    before: &Model,
    after: &Model,
) -> Result<Model, String> {
    let mut p = sim_platform(dev).map_err(|e| e.to_string())?;
    let mut seen = Model::new();
    for uid in before.keys().chain(after.keys()) {
        match its.get_info(&mut p, *uid) {
            Err(ServiceError::DoesNotExist) => continue,
            Err(e) => return Err(format!("get_info({uid}): {e}")),
            Ok(info) => {
                let mut buf = vec![0u8; info.size];
                let n = its
                    .get(&mut p, *uid, 0, &mut buf)
                    .map_err(|e| format!("get({uid}): {e}"))?;
                buf.truncate(n);
                seen.insert(*uid, (buf, info.flags));
            }
        }
    }
    Ok(seen)
}

fn mount(dev: &mut SimDevice) -> Result<Its, ServiceError> {
    let mut p = sim_platform(dev)?;
    Its::mount(campaign_config(), &CDI_SEAL, &mut p)
}

fn run_step(its: &mut Its, dev: &mut SimDevice, step: &Step) -> Result<(), ServiceError> {
    let mut p = sim_platform(dev)?;
    match step {
        Step::Set { uid, data, flags } => its.set(&mut p, *uid, data, *flags),
        Step::Remove { uid } => its.remove(&mut p, *uid),
    }
}

fn apply_model(model: &mut Model, step: &Step) {
    match step {
        Step::Set { uid, data, flags } => {
            model.insert(*uid, (data.clone(), *flags));
        }
        Step::Remove { uid } => {
            model.remove(uid);
        }
    }
}

fn note(report: &mut PowerLossReport, what: String) {
    if report.failure_details.len() < 20 {
        report.failure_details.push(what);
    }
}
