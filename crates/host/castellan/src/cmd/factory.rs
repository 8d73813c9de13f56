//! `castellan factory provision`: the factory station. Boots a simulated device, has its crypto
//! service generate the identity key, sends the CSR, the attestation key and the reference
//! measurements to the fleet server, and stores the IDevID it gets back beside the device.
//!
//! ```text
//! castellan factory provision --server https://127.0.0.1:8443 --token-file STATE/admin.token \
//!     --device-dir dev1 --serial CSTL-0001 --class sensor-v1 [--new]
//! castellan factory provision ... --device-dir fleet --count 100 --prefix CSTL-   (bulk, --new)
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use castellan_agent::factory::validate_serial;
use castellan_agent::{FirmwareKit, FleetApi, KeyChoice, ProvisionRequest, build_device};
use castellan_image::Version;
use clap::{Args, Subcommand};

use super::read_text;

/// `castellan factory …`
#[derive(Subcommand)]
pub(crate) enum FactoryCommand {
    /// Give simulated devices their factory identity (IDevID) and register them.
    Provision(ProvisionArgs),
}

/// Arguments of `castellan factory provision`.
#[derive(Args)]
pub(crate) struct ProvisionArgs {
    /// The fleet server's API.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    server: String,
    /// File holding an operator token (role admin or operator), e.g. STATE/admin.token.
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// CA bundle that signs the server's certificate (default: `tls/ca-bundle.pem` beside the
    /// token file, where `castellan serve` writes it).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// The device directory (with --count: the directory that receives one device per serial).
    #[arg(long, value_name = "DIR")]
    device_dir: PathBuf,
    /// Serial number = device id (`[A-Za-z0-9._-]{1,64}`).
    #[arg(long, required_unless_present = "count")]
    serial: Option<String>,
    /// Device class.
    #[arg(long = "class", default_value = "sensor-v1")]
    device_class: String,
    /// Build the simulated device from scratch first (signing key, bootloader and application
    /// from the firmware kit, fuses programmed, images flashed).
    #[arg(long)]
    new: bool,
    /// Firmware kit directory used with --new (created on first use; devices built from one kit
    /// share their reference measurements).
    #[arg(long, value_name = "DIR", default_value = ".castellan/factory-kit")]
    kit: PathBuf,
    /// Keep the identity key in this PEM file instead of the crypto service (Linux-class
    /// devices, interop tests). Created if missing.
    #[arg(long, value_name = "FILE", conflicts_with = "count")]
    identity_pem: Option<PathBuf>,
    /// Bulk mode: build and provision this many new devices (implies --new).
    #[arg(long, value_name = "N")]
    count: Option<u32>,
    /// Bulk mode: serial prefix (serials are PREFIX0001, PREFIX0002, ...).
    #[arg(long, default_value = "CSTL-")]
    prefix: String,
}

/// Run a factory subcommand.
pub(crate) fn run(c: FactoryCommand) -> anyhow::Result<ExitCode> {
    match c {
        FactoryCommand::Provision(a) => provision(a),
    }
}

/// The CA bundle to trust for the server: `--ca`, or `tls/ca-bundle.pem` in the state
/// directory that holds the token file.
pub(crate) fn server_ca(ca: Option<&Path>, token_file: &Path) -> anyhow::Result<String> {
    let path = match ca {
        Some(p) => p.to_path_buf(),
        None => token_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("tls")
            .join("ca-bundle.pem"),
    };
    read_text(&path).with_context(|| {
        format!(
            "no CA bundle to verify the server with: pass --ca (the server's `{}`)",
            path.display()
        )
    })
}

fn provision(a: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let token = read_text(&a.token_file)?;
    let ca = server_ca(a.ca.as_deref(), &a.token_file)?;
    let api = FleetApi::new(&a.server, &token, &ca)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        match a.count {
            None => single(&api, &a).await,
            Some(n) => bulk(&api, &a, n).await,
        }
    })
}

fn kit(a: &ProvisionArgs) -> anyhow::Result<FirmwareKit> {
    FirmwareKit::load_or_create(&a.kit, Version::new(1, 0, 0, 0))
        .with_context(|| format!("firmware kit in {}", a.kit.display()))
}

async fn single(api: &FleetApi, a: &ProvisionArgs) -> anyhow::Result<ExitCode> {
    let serial = a.serial.clone().context("--serial is required")?;
    validate_serial(&serial)?;
    if a.new {
        let kit = kit(a)?;
        build_device(&a.device_dir, &kit)?;
        println!(
            "built device {} from the kit in {} (root key programmed, fuses locked, lifecycle secured)",
            a.device_dir.display(),
            a.kit.display()
        );
    }
    let keys = match &a.identity_pem {
        Some(p) => KeyChoice::PemFile(p.clone()),
        None => KeyChoice::CryptoService,
    };
    let req = ProvisionRequest {
        serial,
        device_class: a.device_class.clone(),
        keys,
    };
    let done = castellan_agent::provision_sim_device(api, &a.device_dir, &req).await?;
    if done.secured_now {
        println!("lifecycle moved to secured (key fuses locked) and the device rebooted");
    }
    println!(
        "identity key generated in the {}; public key {}",
        match req.keys {
            KeyChoice::CryptoService => "crypto service (never exported)",
            KeyChoice::PemFile(_) => "PEM file",
        },
        hex::encode(done.identity_public_key)
    );
    println!(
        "registered {} ({}) with {} reference measurement(s):",
        done.device_id,
        req.device_class,
        done.measurements.len()
    );
    for m in &done.measurements {
        println!("  {} {} digest {}", m.sw_type, m.version, m.digest);
    }
    let files = castellan_agent::IdentityFiles::of(&a.device_dir);
    println!("IDevID stored in {}", files.idevid().display());
    println!(
        "next: castellan agent --device-dir {} --mqtt {}",
        a.device_dir.display(),
        done.mqtt
            .as_deref()
            .unwrap_or(castellan_server::DEFAULT_MQTT_LISTEN)
    );
    Ok(ExitCode::SUCCESS)
}

async fn bulk(api: &FleetApi, a: &ProvisionArgs, n: u32) -> anyhow::Result<ExitCode> {
    if n == 0 {
        bail!("--count must be at least 1");
    }
    let kit = kit(a)?;
    std::fs::create_dir_all(&a.device_dir)
        .with_context(|| format!("cannot create {}", a.device_dir.display()))?;
    let width = n.to_string().len().max(4);
    let start = Instant::now();
    let mut failed = Vec::new();
    for i in 1..=n {
        let serial = format!("{}{i:0width$}", a.prefix);
        validate_serial(&serial)?;
        let dir = a.device_dir.join(&serial);
        let result = async {
            build_device(&dir, &kit)?;
            let req = ProvisionRequest {
                serial: serial.clone(),
                device_class: a.device_class.clone(),
                keys: KeyChoice::CryptoService,
            };
            castellan_agent::provision_sim_device(api, &dir, &req).await
        }
        .await;
        if let Err(e) = result {
            failed.push(format!("{serial}: {e}"));
        }
        progress(i, n, failed.len(), start);
    }
    println!();
    for f in &failed {
        eprintln!("failed {f}");
    }
    println!(
        "provisioned {} of {n} device(s) in {} in {:.1} s",
        n as usize - failed.len(),
        a.device_dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One-line progress: a bar, counts, rate and time left.
fn progress(done: u32, total: u32, failed: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let rate = f64::from(done) / secs;
    let left = f64::from(total - done) / rate.max(1e-9);
    let width = 30usize;
    let filled = (done as usize * width) / total as usize;
    print!(
        "\r[{}{}] {done}/{total} devices, {failed} failed, {rate:.1}/s, {left:.0} s left ",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stdout().flush();
}
