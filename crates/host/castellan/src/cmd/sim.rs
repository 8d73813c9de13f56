//! `castellan sim …`: a simulated device on the host, kept in a directory (flash.bin, otp.bin,
//! device.json), driven through the same boot code the firmware runs.
//!
//! ```text
//! castellan sim create dev                       blank device: flash layout, fresh UDS, empty OTP
//! castellan sim provision dev --root-key k.pem   root-key hash into OTP, lifecycle → secured
//! castellan sim flash dev bootloader bl.bin      write an image into a partition
//! castellan sim boot dev                         power on: ROM stage, bootloader, report
//! castellan sim upgrade dev new.bin              the application stages an update
//! castellan sim confirm dev                      the application confirms the running image
//! castellan sim status dev                       OTP, lifecycle, counters, slot trailers
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_boot::{
    BootConfig, CounterId, FlashLayout, Lifecycle, UpgradeMode, advance_lifecycle, boot,
    confirm_image, lock_key_regions, program_app_key_hash, program_root_key_hash, read_journal,
    read_lifecycle, read_root_key_hash, read_security_counter, read_slot_trailer, request_upgrade,
};
use castellan_devkit::ReferenceOptions;
use castellan_hal::{Flash as _, Partition};
use castellan_image::{public_spki_from_pem, signer_id};
use castellan_sim::{FaultPhase, FaultPlan, SimDevice};
use clap::{Args, Subcommand, ValueEnum};

use super::args::parse_u32;
use super::{read_file, read_text};

/// `castellan sim …`
#[derive(Subcommand)]
pub(crate) enum SimCommand {
    /// Create a blank simulated device in a directory.
    Create(CreateArgs),
    /// Program the root-key hash (and optionally an application-key hash) into OTP and move the
    /// lifecycle forward.
    Provision(ProvisionArgs),
    /// Write an image into a partition (bootloader, primary or secondary).
    Flash(FlashArgs),
    /// Power the device on: ROM stage, bootloader, and print each stage's verdict.
    Boot(BootArgs),
    /// Stage an update as the application would: write it to the secondary slot and request it.
    Upgrade(UpgradeArgs),
    /// Confirm the running image as the application would (keeps a test image).
    Confirm(DirArg),
    /// Show OTP, lifecycle, anti-rollback counters and slot trailers.
    Status(DirArg),
    /// Ask the attestation service for a PSA token over a nonce.
    Attest(super::sim_services::AttestArgs),
    /// Use the trusted storage service (encrypted, replay-protected assets).
    #[command(subcommand)]
    Its(super::sim_services::ItsCommand),
    /// Generate the device identity key inside the crypto service; print its public key.
    Identity(DirArg),
    /// Install a candidate through the firmware-update service, or accept the trial image.
    Fwu(super::sim_services::FwuArgs),
    /// Decommission: crypto-erase every key and asset, then blow the lifecycle fuse.
    Decommission(DirArg),
}

/// Run a sim subcommand.
pub(crate) fn run(c: SimCommand) -> anyhow::Result<ExitCode> {
    match c {
        SimCommand::Create(a) => create(a),
        SimCommand::Provision(a) => provision(a),
        SimCommand::Flash(a) => flash(a),
        SimCommand::Boot(a) => boot_cmd(a),
        SimCommand::Upgrade(a) => upgrade(a),
        SimCommand::Confirm(a) => confirm(a),
        SimCommand::Status(a) => status(a),
        SimCommand::Attest(a) => super::sim_services::attest(a),
        SimCommand::Its(c) => super::sim_services::its(c),
        SimCommand::Identity(a) => super::sim_services::identity(&a.dir),
        SimCommand::Fwu(a) => super::sim_services::fwu(a),
        SimCommand::Decommission(a) => super::sim_services::decommission(&a.dir),
    }
}

/// Just the device directory.
#[derive(Args)]
pub(crate) struct DirArg {
    /// Device directory.
    pub(crate) dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Swap with scratch: test, confirm, revert.
    Swap,
    /// Overwrite the primary slot: no revert, no scratch.
    Overwrite,
}

/// Arguments of `castellan sim create`.
#[derive(Args)]
pub(crate) struct CreateArgs {
    /// Device directory (created; must not hold a device yet).
    dir: PathBuf,
    /// Size of each image slot.
    #[arg(long, value_parser = parse_u32, default_value = "0x20000")]
    slot_size: u32,
    /// Size of the bootloader partition.
    #[arg(long, value_parser = parse_u32, default_value = "0x10000")]
    bootloader_size: u32,
    /// Flash erase sector size.
    #[arg(long, value_parser = parse_u32, default_value = "0x1000")]
    sector_size: u32,
    /// Flash write size: 1, 4, 8 or 16.
    #[arg(long, value_parser = parse_u32, default_value = "4")]
    write_size: u32,
    /// Value of erased flash: 0xff or 0.
    #[arg(long, value_parser = parse_u32, default_value = "0xff")]
    erased: u32,
    /// Upgrade strategy.
    #[arg(long, value_enum, default_value = "swap")]
    mode: ModeArg,
}

fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    let erased = u8::try_from(a.erased)
        .ok()
        .filter(|e| *e == 0 || *e == 0xff);
    let erased = erased.context("--erased must be 0 or 0xff")?;
    let cfg = ReferenceOptions {
        slot_size: a.slot_size,
        bootloader_size: a.bootloader_size,
        sector_size: a.sector_size,
        write_size: a.write_size,
        erased_value: erased,
        swap: a.mode == ModeArg::Swap,
    }
    .device_config();
    let total = cfg.flash.size;
    let dev = SimDevice::create(&a.dir, cfg)
        .with_context(|| format!("cannot create a device in {}", a.dir.display()))?;
    println!(
        "created device in {} ({} KiB flash, write size {}, erased {:#04x})",
        a.dir.display(),
        total / 1024,
        a.write_size,
        erased
    );
    for p in &dev.config().partitions {
        println!(
            "  {:<10} {:#08x}..{:#08x}",
            p.name,
            p.offset,
            p.offset + p.size
        );
    }
    println!(
        "next: castellan sim provision {} --root-key KEY.pem",
        a.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Open the device in `dir` and its flash layout.
pub(crate) fn open(dir: &Path) -> anyhow::Result<(SimDevice, FlashLayout)> {
    let dev = SimDevice::open(dir).with_context(|| {
        format!(
            "{}: no simulated device here (create one with `castellan sim create`)",
            dir.display()
        )
    })?;
    let layout = FlashLayout::from_table(|n| dev.partition(n))
        .map_err(|e| anyhow::anyhow!("{}: bad partition table: {e}", dir.display()))?;
    Ok((dev, layout))
}

/// The upgrade strategy a layout allows (overwrite-only without a scratch partition).
pub(crate) fn mode(layout: &FlashLayout) -> UpgradeMode {
    if layout.scratch.is_some() {
        UpgradeMode::Swap
    } else {
        UpgradeMode::OverwriteOnly
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LifecycleArg {
    /// Stay in PSA RoT provisioning (keys programmed, fuses not locked).
    Provisioning,
    /// Lock the key fuses and move to secured (the field state).
    Secured,
}

/// Arguments of `castellan sim provision`.
#[derive(Args)]
pub(crate) struct ProvisionArgs {
    /// Device directory.
    dir: PathBuf,
    /// Root key (public or private PEM): the ROM stage verifies the bootloader with it.
    #[arg(long, value_name = "FILE")]
    root_key: PathBuf,
    /// Application key (public or private PEM), if applications are signed with another key.
    #[arg(long, value_name = "FILE")]
    app_key: Option<PathBuf>,
    /// Lifecycle to move to.
    #[arg(long, value_enum, default_value = "secured")]
    lifecycle: LifecycleArg,
}

fn key_hash(path: &Path) -> anyhow::Result<[u8; 32]> {
    let spki =
        public_spki_from_pem(&read_text(path)?).with_context(|| format!("{}", path.display()))?;
    Ok(signer_id(&spki))
}

fn provision(a: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let (mut dev, _) = open(&a.dir)?;
    let root = key_hash(&a.root_key)?;
    let boot_err = |e: castellan_boot::BootError| anyhow::anyhow!("{e}");
    program_root_key_hash(&mut dev.otp, &root).map_err(boot_err)?;
    if let Some(k) = &a.app_key {
        program_app_key_hash(&mut dev.otp, &key_hash(k)?).map_err(boot_err)?;
    }
    advance_lifecycle(&mut dev.otp, Lifecycle::PsaRotProvisioning).map_err(boot_err)?;
    if matches!(a.lifecycle, LifecycleArg::Secured) {
        lock_key_regions(&mut dev.otp).map_err(boot_err)?;
        advance_lifecycle(&mut dev.otp, Lifecycle::Secured).map_err(boot_err)?;
    }
    dev.save()?;
    let lc = read_lifecycle(&mut dev.otp).map_err(boot_err)?;
    println!(
        "root-key hash {} programmed; lifecycle {lc:?}",
        hex::encode(root)
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PartArg {
    /// The bootloader partition (verified by the ROM stage with the root key).
    Bootloader,
    /// The primary slot (the image that runs).
    Primary,
    /// The secondary slot (an update candidate).
    Secondary,
}

/// Arguments of `castellan sim flash`.
#[derive(Args)]
pub(crate) struct FlashArgs {
    /// Device directory.
    dir: PathBuf,
    /// Partition to write.
    #[arg(value_enum)]
    partition: PartArg,
    /// Image file (MCUboot format; written as is, padded to the write size).
    image: PathBuf,
}

/// Erase a partition and write `data` at its start.
fn write_partition(dev: &mut SimDevice, part: Partition, data: &[u8]) -> anyhow::Result<()> {
    if data.len() > part.size as usize {
        bail!(
            "the image ({} bytes) is larger than the partition ({} bytes)",
            data.len(),
            part.size
        );
    }
    let w = dev.flash.write_size();
    let mut buf = data.to_vec();
    buf.resize(data.len().div_ceil(w) * w, dev.flash.erased_value());
    part.erase_all(&mut dev.flash)?;
    part.write(&mut dev.flash, 0, &buf)?;
    Ok(())
}

fn flash(a: FlashArgs) -> anyhow::Result<ExitCode> {
    let (mut dev, layout) = open(&a.dir)?;
    let part = match a.partition {
        PartArg::Bootloader => layout.bootloader,
        PartArg::Primary => layout.primary,
        PartArg::Secondary => layout.secondary,
    };
    let data = read_file(&a.image)?;
    write_partition(&mut dev, part, &data)?;
    dev.save()?;
    println!(
        "wrote {} ({} bytes) to {:?}",
        a.image.display(),
        data.len(),
        a.partition
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `castellan sim boot`.
#[derive(Args)]
pub(crate) struct BootArgs {
    /// Device directory.
    dir: PathBuf,
    /// Cut the power at this flash/OTP operation of the boot (0-based) and save the state the
    /// cut leaves, to see the next boot recover.
    #[arg(long, value_name = "N")]
    cut_at: Option<u64>,
    /// Where the cut falls in that operation.
    #[arg(long, value_enum, default_value = "torn", requires = "cut_at")]
    phase: PhaseArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PhaseArg {
    /// Before the operation starts.
    Before,
    /// In the middle: part written, one unit garbage.
    Torn,
    /// Just after it completes.
    After,
}

fn boot_cmd(a: BootArgs) -> anyhow::Result<ExitCode> {
    let (mut dev, layout) = open(&a.dir)?;
    dev.power_cycle();
    if let Some(at) = a.cut_at {
        let phase = match a.phase {
            PhaseArg::Before => FaultPhase::Before,
            PhaseArg::Torn => FaultPhase::Torn,
            PhaseArg::After => FaultPhase::After,
        };
        dev.arm(FaultPlan::new(at, phase));
    }
    let config = BootConfig {
        upgrade: mode(&layout),
        ..BootConfig::default()
    };
    let result = boot(&mut dev.flash, &mut dev.otp, &mut dev.uds, &layout, &config);
    dev.save()?;
    match result {
        Ok(report) => {
            println!("{report}");
            println!("boot record:");
            for m in report.boot_record.iter() {
                println!("  {m}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(castellan_boot::BootError::PowerLoss) => {
            println!(
                "power cut at operation {} ({:?}); state saved: boot again to see the recovery",
                a.cut_at.unwrap_or(0),
                a.phase
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("boot refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Arguments of `castellan sim upgrade`.
#[derive(Args)]
pub(crate) struct UpgradeArgs {
    /// Device directory.
    dir: PathBuf,
    /// The new image (MCUboot format, signed with the application key).
    image: PathBuf,
    /// Install permanently (confirmed at once) instead of for a test run.
    #[arg(long)]
    permanent: bool,
}

fn upgrade(a: UpgradeArgs) -> anyhow::Result<ExitCode> {
    let (mut dev, layout) = open(&a.dir)?;
    let data = read_file(&a.image)?;
    write_partition(&mut dev, layout.secondary, &data)?;
    request_upgrade(&mut dev.flash, &layout, a.permanent).map_err(|e| anyhow::anyhow!("{e}"))?;
    dev.save()?;
    println!(
        "staged {} in the secondary slot ({}); the bootloader verifies and installs it at the next boot",
        a.image.display(),
        if a.permanent {
            "permanent"
        } else {
            "test: confirm after boot or it reverts"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn confirm(a: DirArg) -> anyhow::Result<ExitCode> {
    let (mut dev, layout) = open(&a.dir)?;
    confirm_image(&mut dev.flash, &layout).map_err(|e| anyhow::anyhow!("{e}"))?;
    dev.save()?;
    println!("running image confirmed; the anti-rollback counter follows it at the next boot");
    Ok(ExitCode::SUCCESS)
}

fn status(a: DirArg) -> anyhow::Result<ExitCode> {
    let (mut dev, layout) = open(&a.dir)?;
    let e = |e: castellan_boot::BootError| anyhow::anyhow!("{e}");
    let lc = read_lifecycle(&mut dev.otp).map_err(e)?;
    println!("lifecycle:       {lc:?}");
    match read_root_key_hash(&dev.otp).map_err(e)? {
        Some(h) => println!("root-key hash:   {}", hex::encode(h)),
        None => println!("root-key hash:   not programmed"),
    }
    let app = read_security_counter(&mut dev.otp, CounterId::Application).map_err(e)?;
    let bl = read_security_counter(&mut dev.otp, CounterId::Bootloader).map_err(e)?;
    println!("anti-rollback:   application {app}, bootloader {bl}");
    println!("upgrade mode:    {:?}", mode(&layout));
    let g = castellan_boot::Geometry::of(&dev.flash).map_err(e)?;
    for (name, part) in [("primary", layout.primary), ("secondary", layout.secondary)] {
        let t = read_slot_trailer(&mut dev.flash, &g, part).map_err(e)?;
        println!(
            "{name:<10} trailer: magic {:?}, image_ok {:?}, copy_done {:?}, swap type {:?}",
            t.magic, t.image_ok, t.copy_done, t.swap_type
        );
    }
    if layout.status.is_some() {
        println!(
            "swap journal:    {:?}",
            read_journal(&mut dev.flash, &layout).map_err(e)?
        );
    }
    Ok(ExitCode::SUCCESS)
}
