//! `castellan-bridge`: the QEMU device's network link as a command.
//!
//! ```text
//!  castellan-bridge register --rom R --device D --api URL --token-file T --ca CA --serial S
//!  castellan-bridge onboard  --rom R --device D --mqtt HOST:PORT
//!  castellan-bridge run      --rom R --device D --mqtt HOST:PORT      (until Ctrl-C)
//! ```
//!
//! `--rom` is the firmware's ROM stage ELF (`firmware/target/thumbv8m.main-none-eabi/release/
//! castellan-rom`), `--device` the device directory with its flash, OTP and entropy files (as
//! `cargo xtask qemu-test` provisions them). The bridge keeps its state (identity files, keys,
//! staged downloads) in `<device>/bridge/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use castellan_agent::identity::IdentityFiles;
use castellan_agent::{Endpoint, FleetApi};
use castellan_bridge::{
    BridgeError, DEVICE_CLASS, Qemu, QemuDevice, SessionConfig, onboard, register, stdout_logger,
};
use clap::{Parser, Subcommand};

/// The QEMU mps2-an505 device's network link: factory registration, attested onboarding and
/// over-the-air updates decided in the device's secure partition.
#[derive(Parser)]
#[command(name = "castellan-bridge", version)]
struct Cli {
    /// The firmware's ROM stage ELF (QEMU's -kernel).
    #[arg(
        long,
        global = true,
        default_value = "firmware/target/thumbv8m.main-none-eabi/release/castellan-rom"
    )]
    rom: PathBuf,
    /// The device directory (castellan-flash.bin, castellan-otp.bin, castellan-entropy.bin).
    #[arg(long, global = true, default_value = ".")]
    device: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Register the device at the factory and store the release trust anchor in it.
    Register {
        /// The operator API (https://host:port).
        #[arg(long)]
        api: String,
        /// A file holding an admin or operator API token.
        #[arg(long)]
        token_file: PathBuf,
        /// The CA bundle the server's certificate chains to (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// The device serial (= device id).
        #[arg(long)]
        serial: String,
        /// The device class.
        #[arg(long, default_value = DEVICE_CLASS)]
        class: String,
    },
    /// Onboard the registered device (attestation token from the secure partition).
    Onboard {
        /// The broker (host:port).
        #[arg(long)]
        mqtt: String,
    },
    /// Serve the device's update link until interrupted.
    Run {
        /// The broker (host:port).
        #[arg(long)]
        mqtt: String,
    },
}

fn read(path: &PathBuf) -> Result<String, BridgeError> {
    std::fs::read_to_string(path).map_err(|source| BridgeError::Io {
        path: path.clone(),
        source,
    })
}

async fn run(cli: Cli) -> Result<(), BridgeError> {
    let device = QemuDevice::new(Qemu::new(&cli.rom, &cli.device));
    let state = cli.device.join("bridge");
    let log = stdout_logger("");
    match cli.command {
        Cmd::Register {
            api,
            token_file,
            ca,
            serial,
            class,
        } => {
            // The device first: a clear message beats a failed QEMU run after the network.
            device.qemu().check()?;
            let api = FleetApi::new(&api, read(&token_file)?.trim(), &read(&ca)?)?;
            let r = register(&api, &device, &state, &serial, &class, &log).await?;
            println!(
                "registered {} ({} measurements, firmware {}, release trust anchor {})",
                r.device_id,
                r.measurements.len(),
                r.firmware_version,
                if r.trust_anchor_stored {
                    "stored"
                } else {
                    "not set on the server"
                }
            );
        }
        Cmd::Onboard { mqtt } => {
            device.qemu().check()?;
            let endpoint = Endpoint::parse(&mqtt)?;
            let files = IdentityFiles::of(&state);
            onboard(&endpoint, &files, &device, Duration::from_secs(120), &log).await?;
        }
        Cmd::Run { mqtt } => {
            device.qemu().check()?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    flag.store(true, Ordering::SeqCst);
                }
            });
            let cfg = SessionConfig {
                mqtt: Endpoint::parse(&mqtt)?,
                state_dir: state,
                log,
                stop,
            };
            let report = castellan_bridge::run(&cfg, &device).await?;
            println!(
                "stopped: {} offer(s), {} report(s), {} post-update token(s)",
                report.offers,
                report.statuses.len(),
                report.evidence_sent
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("castellan-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
