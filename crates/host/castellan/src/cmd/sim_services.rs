//! `castellan sim attest | its | identity | fwu | decommission`: call the secure services of a
//! simulated device. Each command powers the device on (ROM stage and bootloader run, so the
//! services get the CDIs and boot record they would get on hardware), makes its calls, and saves
//! the device.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use castellan_agent::device;
use castellan_boot::{BootReport, FlashLayout};
use castellan_devkit::sim_services::sim_platform;
use castellan_services::{
    InstallStatus, ItsFlags, OtpCounterMap, SecureServices, ServiceError,
    fwu::COMPONENT_APPLICATION,
};
use castellan_sim::{SimDevice, SimFlash, SimOtp, SimRng};
use clap::{Args, Subcommand};
use p256::pkcs8::EncodePublicKey as _;

use super::sim::open;
use super::{read_file, write_file};

/// Arguments of `castellan sim attest`.
#[derive(Args)]
pub(crate) struct AttestArgs {
    /// Device directory.
    dir: PathBuf,
    /// Challenge (hex, 32, 48 or 64 bytes).
    #[arg(long)]
    nonce: String,
    /// Where to write the token (COSE_Sign1, CBOR).
    #[arg(short, long, default_value = "token.cbor")]
    output: PathBuf,
    /// Where to write the attestation public key (PEM), for `castellan token verify -k`.
    #[arg(long, default_value = "iak.pem")]
    key_output: PathBuf,
}

/// `castellan sim its …`
#[derive(Subcommand)]
pub(crate) enum ItsCommand {
    /// Store an asset.
    Set {
        /// Device directory.
        dir: PathBuf,
        /// Asset uid.
        uid: u64,
        /// Value (text).
        value: String,
        /// Refuse later overwrites and removal.
        #[arg(long)]
        write_once: bool,
    },
    /// Print an asset.
    Get {
        /// Device directory.
        dir: PathBuf,
        /// Asset uid.
        uid: u64,
    },
    /// Remove an asset.
    Remove {
        /// Device directory.
        dir: PathBuf,
        /// Asset uid.
        uid: u64,
    },
}

/// Arguments of `castellan sim fwu`.
#[derive(Args)]
pub(crate) struct FwuArgs {
    /// Device directory.
    dir: PathBuf,
    /// The candidate image; omit with --accept to accept the trial image that runs.
    image: Option<PathBuf>,
    /// Power on (which installs a staged candidate for its trial run) and accept the trial
    /// image in that same run (`psa_fwu_accept`). A power-on without acceptance reverts it.
    #[arg(long, conflicts_with = "image")]
    accept: bool,
}

/// The secure services of a simulated device, borrowing its flash, fuses and RNG.
type SimServices<'a> =
    SecureServices<&'a mut SimFlash, OtpCounterMap<&'a mut SimOtp>, &'a mut SimRng>;

/// The device's secure services, started as the bootloader hands over.
struct Session {
    dev: SimDevice,
    layout: FlashLayout,
    report: BootReport,
}

impl Session {
    fn start(dir: &Path) -> anyhow::Result<Session> {
        let (mut dev, layout) = open(dir)?;
        let report = device::boot_device(&mut dev, &layout)?;
        Ok(Session {
            dev,
            layout,
            report,
        })
    }

    fn services(&mut self) -> anyhow::Result<SimServices<'_>> {
        let config = device::services_config(&self.dev, &self.layout)?;
        let platform = sim_platform(&mut self.dev).map_err(service_err)?;
        SecureServices::from_boot_report(platform, config, &self.report).map_err(service_err)
    }

    fn save(&self) -> anyhow::Result<()> {
        self.dev.save().context("cannot save the device")
    }
}

fn service_err(e: ServiceError) -> anyhow::Error {
    anyhow!("{e} (PSA status {})", e.psa_status())
}

/// `castellan sim attest`.
pub(crate) fn attest(a: AttestArgs) -> anyhow::Result<ExitCode> {
    let nonce = hex::decode(&a.nonce).context("--nonce is not hex")?;
    let mut s = Session::start(&a.dir)?;
    let mut svc = s.services()?;
    let mut token = vec![0u8; svc.attest_token_size(nonce.len()).map_err(service_err)?];
    let n = svc
        .attest_token(&nonce, -1, &mut token)
        .map_err(service_err)?;
    token.truncate(n);
    let key = p256::PublicKey::from_sec1_bytes(&svc.attestation_public_key())
        .map_err(|_| anyhow!("the attestation key is not a P-256 point"))?;
    let pem = key
        .to_public_key_pem(Default::default())
        .map_err(|e| anyhow!("{e}"))?;
    drop(svc);
    s.save()?;
    write_file(&a.output, &token)?;
    write_file(&a.key_output, pem.as_bytes())?;
    println!(
        "token ({n} bytes) -> {}; attestation key -> {}",
        a.output.display(),
        a.key_output.display()
    );
    println!(
        "verify: castellan token verify -k {} --nonce {} {}",
        a.key_output.display(),
        a.nonce,
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `castellan sim its …`.
pub(crate) fn its(c: ItsCommand) -> anyhow::Result<ExitCode> {
    let dir = match &c {
        ItsCommand::Set { dir, .. }
        | ItsCommand::Get { dir, .. }
        | ItsCommand::Remove { dir, .. } => dir,
    };
    let mut s = Session::start(dir)?;
    let mut svc = s.services()?;
    match &c {
        ItsCommand::Set {
            uid,
            value,
            write_once,
            ..
        } => {
            let flags = if *write_once {
                ItsFlags::WRITE_ONCE
            } else {
                ItsFlags::NONE
            };
            svc.its_set(*uid, value.as_bytes(), flags)
                .map_err(service_err)?;
            println!(
                "asset {uid} stored ({} bytes, encrypted, replay-protected)",
                value.len()
            );
        }
        ItsCommand::Get { uid, .. } => {
            let info = svc.its_get_info(*uid).map_err(service_err)?;
            let mut buf = vec![0u8; info.size];
            let n = svc.its_get(*uid, 0, &mut buf).map_err(service_err)?;
            println!("{}", String::from_utf8_lossy(&buf[..n]));
        }
        ItsCommand::Remove { uid, .. } => {
            svc.its_remove(*uid).map_err(service_err)?;
            println!("asset {uid} removed");
        }
    }
    drop(svc);
    s.save()?;
    Ok(ExitCode::SUCCESS)
}

/// `castellan sim identity`: generate (once) the device identity key inside the crypto service
/// and print its public key; the private key never leaves the service.
pub(crate) fn identity(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut s = Session::start(dir)?;
    let mut svc = s.services()?;
    let public = svc.provision_identity_key().map_err(service_err)?;
    drop(svc);
    s.save()?;
    println!("device identity public key (SEC1): {}", hex::encode(public));
    Ok(ExitCode::SUCCESS)
}

/// `castellan sim fwu`: write a candidate through the firmware-update service and install it
/// for a trial at the next boot, or accept the trial image that runs.
pub(crate) fn fwu(a: FwuArgs) -> anyhow::Result<ExitCode> {
    let mut s = Session::start(&a.dir)?;
    let mut svc = s.services()?;
    if a.accept {
        svc.fwu_accept().map_err(service_err)?;
        drop(svc);
        s.save()?;
        println!("trial image accepted");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = &a.image else {
        bail!("give an image to install, or --accept")
    };
    let image = read_file(path)?;
    svc.fwu_start(COMPONENT_APPLICATION, &[])
        .map_err(service_err)?;
    for (i, block) in image.chunks(1024).enumerate() {
        svc.fwu_write(COMPONENT_APPLICATION, i * 1024, block)
            .map_err(service_err)?;
    }
    svc.fwu_finish(COMPONENT_APPLICATION).map_err(service_err)?;
    let status = svc.fwu_install().map_err(service_err)?;
    if status == InstallStatus::RebootRequired {
        svc.fwu_request_reboot().map_err(service_err)?;
    }
    drop(svc);
    s.save()?;
    println!(
        "candidate verified and staged ({status:?}); the next power-on installs it for a trial: \
         accept it in that run (`castellan sim fwu {} --accept`) or it reverts",
        a.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `castellan sim decommission`: crypto-erase every key and asset, then the lifecycle fuse.
pub(crate) fn decommission(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut s = Session::start(dir)?;
    let mut svc = s.services()?;
    svc.decommission().map_err(service_err)?;
    drop(svc);
    s.save()?;
    println!("decommissioned: keys and trusted storage crypto-erased; the device no longer boots");
    Ok(ExitCode::SUCCESS)
}
