//! The whole over-the-air update path under power loss: the update client in the secure
//! services (`update_begin` → `update_write`… → `update_finish`), the reboot into the trial
//! image (the bootloader's test swap), the acceptance (`fwu_accept`, sequence number stored) and
//! the boot that raises the counter. The power is cut at every flash and fuse operation of that
//! path (before, torn, after); then the device is powered up and driven the way the agent
//! drives it until it settles.
//!
//! ```text
//!  start: A running (v1.0.0, counter 1), release trust anchor stored, release B offered
//!  action: boot · status · begin · write… · finish ─ reboot ─ boot (swap) · accept ─ reboot ─ boot
//!            ✂ cut at operation i (phase p), counted across the reboots of the action
//!  recovery: power on, then as the agent: Downloading → begin (resume) · write the rest ·
//!            finish; Staged → reboot; Trial → accept; Reverted/Failed → cancel, start again
//!  checks:   every boot succeeds and runs A or B, the counter never goes down nor above the
//!            running image's; the device settles within a few boots with B confirmed in the
//!            primary slot, counter 2, installed sequence number 1, nothing pending
//! ```

use castellan_boot::{
    BootConfig, BootReport, CounterId, DowngradePolicy, FlashLayout, Lifecycle, UpgradeMode,
    advance_lifecycle, program_root_key_hash, read_security_counter,
};
use castellan_devkit::DeviceSpec;
use castellan_devkit::sim_services::sim_platform;
use castellan_image::{TrustedKey, signer_id};
use castellan_services::update::COMPONENT;
use castellan_services::{
    FwuConfig, ItsConfig, SecureServices, ServiceError, ServicesConfig, UpdateConfig, UpdateState,
};
use castellan_sim::{DeviceConfig, FaultPlan, FlashConfig, SimDevice};
use castellan_suit::builder::{ImageSpec, ManifestBuilder, Parameters, Sequence, Signer};
use castellan_suit::{Directive, Section};

use crate::fixture::{Images, root_key, write_partition};
use crate::sweep::{Nesting, SweepStats};

/// The device of the update sweep: the catalog's `update-matrix` (the boot harness's
/// partitions, then the storage key (1 sector) and trusted storage (8 sectors: two banks of
/// 2 KiB) in 12 KiB of 512-byte sectors).
pub const UPDATE_DEVICE: DeviceSpec = castellan_devkit::UPDATE_MATRIX;
/// Sequence number of the offered release.
pub const SEQUENCE: u64 = 1;
/// The device's clock during the sweep (the release expires later).
pub const NOW: u64 = 1_800_000_000;
/// Bytes per `update_write` (a download chunk).
pub const CHUNK: usize = 200;
/// Boots after a cut within which the device must settle.
const MAX_BOOTS: usize = 8;

/// The 8 geometries of the update sweep (write size 1, 4, 8, 16 × erased 0xFF, 0x00).
pub fn update_geometries() -> Vec<FlashConfig> {
    UPDATE_DEVICE.geometries().collect()
}

/// The device description: the boot harness's partitions plus trusted storage.
pub fn update_device_config(flash: FlashConfig) -> DeviceConfig {
    UPDATE_DEVICE.config(flash)
}

/// Everything the sweep needs besides the device: images, the release and its key.
#[derive(Debug, Clone)]
pub struct UpdateFixture {
    /// A (factory, running) and B (the update).
    pub images: Images,
    /// The release key's public key (SEC1), the trust anchor the factory stores.
    pub anchor: Vec<u8>,
    /// The signed SUIT envelope of release B.
    pub envelope: Vec<u8>,
    /// The device's vendor and class identifiers.
    pub ids: UpdateConfig,
}

impl UpdateFixture {
    /// Signs the release of image B with a fixed P-256 release key (deterministic ECDSA).
    pub fn new(images: &Images) -> Self {
        let release_key =
            p256::ecdsa::SigningKey::from_slice(&[0x5A; 32]).expect("a valid fixed P-256 scalar");
        let ids = UpdateConfig::for_class("castellan", "sensor-v1");
        let fetch = Sequence::new()
            .override_parameters(&Parameters::new().uri("castellan:release/b"))
            .directive(Directive::Fetch);
        let envelope = ManifestBuilder::new(SEQUENCE, &ids.vendor_id, &ids.class_id)
            .image(ImageSpec::new(&COMPONENT, &images.b.bytes))
            .sequence(Section::PayloadFetch, fetch)
            .sequence(Section::Install, Sequence::new())
            .expires(NOW + 86_400)
            .build(&Signer::Es256(&release_key))
            .unwrap_or_default();
        UpdateFixture {
            images: images.clone(),
            anchor: release_key
                .verifying_key()
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
            envelope,
            ids,
        }
    }
}

/// The bootloader configuration of a fleet device (swap, the security counter decides).
pub fn boot_config() -> BootConfig<'static> {
    BootConfig {
        upgrade: UpgradeMode::Swap,
        downgrade: DowngradePolicy::SecurityCounter,
        ..BootConfig::default()
    }
}

fn layout(dev: &SimDevice) -> Result<FlashLayout, String> {
    FlashLayout::from_table(|n| dev.partition(n)).map_err(|e| e.to_string())
}

fn services_config(dev: &SimDevice, fx: &UpdateFixture) -> Result<ServicesConfig, String> {
    let l = layout(dev)?;
    let part = |n: &str| dev.partition(n).ok_or(format!("no {n} partition"));
    let root = signer_id(&root_key().public_spki_der());
    let fwu = FwuConfig::new(l, TrustedKey::Sha256OfSpki(root), true)
        .with_downgrade(DowngradePolicy::SecurityCounter);
    Ok(
        ServicesConfig::new(ItsConfig::new(part("its")?, part("its-key")?), [0xC5; 32])
            .with_fwu(fwu)
            .with_update(fx.ids),
    )
}

/// A secured device running A (counter 1) whose factory stored the release trust anchor.
pub fn update_setup(flash: FlashConfig, fx: &UpdateFixture) -> Result<SimDevice, String> {
    let mut dev = SimDevice::new(update_device_config(flash), 7).map_err(|e| e.to_string())?;
    let l = layout(&dev)?;
    let root_hash = signer_id(&root_key().public_spki_der());
    let e = |e: castellan_boot::BootError| e.to_string();
    program_root_key_hash(&mut dev.otp, &root_hash).map_err(e)?;
    advance_lifecycle(&mut dev.otp, Lifecycle::Secured).map_err(e)?;
    write_partition(&mut dev.flash, l.bootloader, &fx.images.bootloader).map_err(e)?;
    write_partition(&mut dev.flash, l.primary, &fx.images.a.bytes).map_err(e)?;
    l.secondary
        .erase_all(&mut dev.flash)
        .map_err(|e| e.to_string())?;
    let report = boot(&mut dev).map_err(|f| f.to_string())?;
    let config = services_config(&dev, fx)?;
    let p = sim_platform(&mut dev).map_err(|e| e.to_string())?;
    let mut svc =
        SecureServices::from_boot_report(p, config, &report).map_err(|e| e.to_string())?;
    svc.update_provision_trust_anchor(&fx.anchor)
        .map_err(|e| format!("trust anchor: {e}"))?;
    drop(svc);
    dev.power_cycle();
    Ok(dev)
}

/// Why a drive stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The power went (the injected cut).
    PowerLoss,
    /// An invariant broke, or a step failed for another reason than a cut.
    Broken(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::PowerLoss => f.write_str("power loss"),
            Stop::Broken(m) => f.write_str(m),
        }
    }
}

fn svc_err(what: &str) -> impl Fn(ServiceError) -> Stop + '_ {
    move |e| {
        if e.is_power_loss() {
            Stop::PowerLoss
        } else {
            Stop::Broken(format!("{what}: {e}"))
        }
    }
}

fn boot(dev: &mut SimDevice) -> Result<BootReport, Stop> {
    let l = layout(dev).map_err(Stop::Broken)?;
    castellan_boot::boot(
        &mut dev.flash,
        &mut dev.otp,
        &mut dev.uds,
        &l,
        &boot_config(),
    )
    .map_err(|e| {
        if e.is_power_loss() {
            Stop::PowerLoss
        } else {
            Stop::Broken(format!("the device does not boot: {e}"))
        }
    })
}

/// Reboots inside an action without disarming its cut: the plan's operation index keeps
/// counting across the reboot. Returns the operations done before it.
fn reboot_keeping_plan(dev: &mut SimDevice) -> u64 {
    let plan = dev.rail().plan();
    let used = dev.ops();
    dev.power_cycle();
    if let Some(p) = plan {
        let at = p.at.saturating_sub(used);
        dev.arm(FaultPlan::new(at, p.phase).with_seed(p.seed));
    }
    used
}

/// What one boot of the agent's loop ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Reboot,
    Done,
}

/// What the recoveries went through, counted over a sweep (proves the sweep reaches each path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paths {
    /// Downloads resumed from a stored offset above 0.
    pub resumed: u64,
    /// Downloads started again from the first byte while one was pending.
    pub restarted: u64,
    /// Boots that found the new image on trial and accepted it.
    pub trials: u64,
    /// Boots that found the trial image reverted (or the install failed) and retried.
    pub retried: u64,
    /// Boots that found the install staged and rebooted.
    pub staged: u64,
}

/// One power-on as the agent runs it: boot, check the image, look at the update state and
/// take the next step.
fn agent_boot(
    dev: &mut SimDevice,
    fx: &UpdateFixture,
    floor: &mut u32,
    paths: &mut Paths,
) -> Result<Next, Stop> {
    let report = boot(dev)?;
    check_boot(dev, fx, &report, floor)?;
    let config = services_config(dev, fx).map_err(Stop::Broken)?;
    let p = sim_platform(dev).map_err(svc_err("platform"))?;
    let mut svc = SecureServices::from_boot_report(p, config, &report)
        .map_err(svc_err("the services do not start"))?;
    let status = svc.update_status().map_err(svc_err("update_status"))?;
    match status.state {
        UpdateState::Idle if status.installed_sequence >= SEQUENCE => return Ok(Next::Done),
        UpdateState::Staged => {
            paths.staged += 1;
            return Ok(Next::Reboot);
        }
        UpdateState::Trial => {
            paths.trials += 1;
            svc.fwu_accept().map_err(svc_err("fwu_accept"))?;
            return Ok(Next::Reboot);
        }
        UpdateState::Reverted | UpdateState::Failed { .. } | UpdateState::Rejected => {
            paths.retried += 1;
            svc.update_cancel().map_err(svc_err("update_cancel"))?;
        }
        UpdateState::Idle | UpdateState::Downloading { .. } => {}
    }
    let plan = svc
        .update_begin(&fx.envelope, Some(NOW))
        .map_err(svc_err("update_begin"))?;
    if let UpdateState::Downloading { .. } = status.state {
        if plan.resume_offset > 0 {
            paths.resumed += 1;
        } else {
            paths.restarted += 1;
        }
    }
    let image = &fx.images.b.bytes;
    let mut at = plan.resume_offset as usize;
    while at < image.len() {
        let end = (at + CHUNK).min(image.len());
        let block = image.get(at..end).unwrap_or_default();
        svc.update_write(at as u64, block)
            .map_err(svc_err("update_write"))?;
        at = end;
    }
    svc.update_finish().map_err(svc_err("update_finish"))?;
    Ok(Next::Reboot)
}

/// Every boot runs A or B, signed by the root key, never below the counter, which never goes
/// down.
fn check_boot(
    dev: &mut SimDevice,
    fx: &UpdateFixture,
    r: &BootReport,
    floor: &mut u32,
) -> Result<(), Stop> {
    let img = fx
        .images
        .by_digest(&r.application.digest)
        .ok_or_else(|| Stop::Broken("a boot ran an image that is neither A nor B".into()))?;
    let counter = read_security_counter(&mut dev.otp, CounterId::Application)
        .map_err(|e| Stop::Broken(e.to_string()))?;
    if counter < *floor {
        return Err(Stop::Broken(format!(
            "anti-rollback counter went down: {floor} -> {counter}"
        )));
    }
    if img.counter < counter {
        return Err(Stop::Broken(format!(
            "{} (counter {}) runs below the counter {counter}",
            img.name, img.counter
        )));
    }
    *floor = counter;
    Ok(())
}

/// The action of the sweep: the agent's loop from the start state until B is installed,
/// reboots included; returns the operations it did (all boots together).
pub fn update_action(dev: &mut SimDevice, fx: &UpdateFixture) -> Result<u64, Stop> {
    drive(dev, fx, 1, &mut Paths::default())
}

/// The agent's loop until the update is installed, an armed cut counting across reboots;
/// returns the operations done. `floor`: the counter before.
fn drive(
    dev: &mut SimDevice,
    fx: &UpdateFixture,
    mut floor: u32,
    paths: &mut Paths,
) -> Result<u64, Stop> {
    let mut ops = 0;
    for _ in 0..MAX_BOOTS {
        let next = agent_boot(dev, fx, &mut floor, paths)?;
        if next == Next::Done {
            return Ok(ops + dev.ops());
        }
        ops += reboot_keeping_plan(dev);
    }
    Err(Stop::Broken(format!(
        "the update did not complete within {MAX_BOOTS} boots"
    )))
}

fn counter(dev: &mut SimDevice) -> Result<u32, String> {
    read_security_counter(&mut dev.otp, CounterId::Application).map_err(|e| e.to_string())
}

/// After a cut: power up and drive the device until it settles, then check the settled state.
/// `paths` counts what the recovery went through.
pub fn recover_and_check_update(
    dev: &mut SimDevice,
    fx: &UpdateFixture,
    paths: &mut Paths,
) -> Result<(), String> {
    dev.power_cycle();
    let mut floor =
        read_security_counter(&mut dev.otp, CounterId::Application).map_err(|e| e.to_string())?;
    for n in 0..MAX_BOOTS {
        match agent_boot(dev, fx, &mut floor, paths) {
            Ok(Next::Done) => return check_settled(dev, fx),
            Ok(Next::Reboot) => dev.power_cycle(),
            Err(e) => return Err(format!("boot #{n} after the cut: {e}")),
        }
    }
    Err(format!(
        "the device did not settle within {MAX_BOOTS} boots"
    ))
}

fn check_settled(dev: &mut SimDevice, fx: &UpdateFixture) -> Result<(), String> {
    dev.power_cycle();
    let r = boot(dev).map_err(|e| e.to_string())?;
    if r.application.digest != fx.images.b.digest || !r.confirmed {
        return Err(format!(
            "settled without B confirmed (runs {:?}, confirmed {})",
            fx.images.by_digest(&r.application.digest).map(|i| i.name),
            r.confirmed
        ));
    }
    let counter =
        read_security_counter(&mut dev.otp, CounterId::Application).map_err(|e| e.to_string())?;
    if counter != fx.images.b.counter {
        return Err(format!("settled with counter {counter}, expected 2"));
    }
    let config = services_config(dev, fx)?;
    let p = sim_platform(dev).map_err(|e| e.to_string())?;
    let mut svc = SecureServices::from_boot_report(p, config, &r).map_err(|e| e.to_string())?;
    let status = svc.update_status().map_err(|e| e.to_string())?;
    if status.state != UpdateState::Idle || status.installed_sequence != SEQUENCE {
        return Err(format!("settled with update status {status:?}"));
    }
    // The installed sequence number protects the device: the same offer again is refused.
    match svc.update_begin(&fx.envelope, Some(NOW)) {
        Err(ServiceError::UpdateRefused(_)) => {}
        other => {
            return Err(format!(
                "the installed release's offer again gave {other:?}"
            ));
        }
    }
    let l = layout(dev)?;
    let start = l.primary.offset as usize;
    let b = &fx.images.b.bytes;
    if dev.flash.contents().get(start..start + b.len()) != Some(b.as_slice()) {
        return Err("the primary slot does not hold B byte for byte".into());
    }
    Ok(())
}

/// Sweeps a cut at every operation (every `every`-th, for a quicker run) of the update path
/// on a device of geometry `flash`, and per `nesting` a second cut during the recovery (which
/// resumes downloads, accepts trial images, retries reverted ones); returns the counts and the
/// paths the recoveries took.
pub fn update_sweep(
    flash: FlashConfig,
    fx: &UpdateFixture,
    every: u64,
    nesting: Nesting,
) -> Result<(SweepStats, Paths), String> {
    let mut dev = update_setup(flash, fx)?;
    let start = dev.snapshot();
    let mut stats = SweepStats::default();
    let mut paths = Paths::default();
    let ops = update_action(&mut dev, fx).map_err(|e| format!("without power cut: {e}"))?;
    check_settled(&mut dev, fx).map_err(|e| format!("without power cut: {e}"))?;
    stats.ops = ops;
    for plan in FaultPlan::all(ops).filter(|p| p.at % every.max(1) == 0) {
        dev.restore(&start).map_err(|e| e.to_string())?;
        dev.arm(plan);
        stats.points += 1;
        match update_action(&mut dev, fx) {
            Err(Stop::PowerLoss) => {}
            other => {
                stats.fail(format!(
                    "update cut {plan:?}: the action returned {other:?}, not a power loss"
                ));
                continue;
            }
        }
        dev.power_cycle();
        let after_cut = dev.snapshot();
        if let Err(m) = recover_and_check_update(&mut dev, fx, &mut paths) {
            stats.fail(format!("update cut {plan:?}: {m}"));
        }
        let second_every = match nesting {
            Nesting::Off => continue,
            Nesting::Full => 1,
            Nesting::Every(n) => n.max(1),
        };
        // The recovery's own operations, then a second cut at each of them.
        dev.restore(&after_cut).map_err(|e| e.to_string())?;
        let floor = counter(&mut dev)?;
        let Ok(recovery_ops) = drive(&mut dev, fx, floor, &mut Paths::default()) else {
            continue; // reported above
        };
        for second in FaultPlan::all(recovery_ops).filter(|p| p.at % second_every == 0) {
            dev.restore(&after_cut).map_err(|e| e.to_string())?;
            dev.arm(second);
            stats.points += 1;
            match drive(&mut dev, fx, floor, &mut paths) {
                Err(Stop::PowerLoss) => {}
                other => {
                    stats.fail(format!(
                        "update cut {plan:?} then {second:?}: the recovery returned {other:?}, \
                         not a power loss"
                    ));
                    continue;
                }
            }
            if let Err(m) = recover_and_check_update(&mut dev, fx, &mut paths) {
                stats.fail(format!("update cut {plan:?} then {second:?}: {m}"));
            }
        }
    }
    Ok((stats, paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_fits_one_storage_asset() {
        let fx = UpdateFixture::new(&Images::new());
        assert!(fx.envelope.len() <= 512, "{}", fx.envelope.len());
    }
}
