//! `castellan agent`: runs a provisioned simulated device as a fleet member. It boots the device
//! (boot chain and secure services), onboards it when it has no LDevID (attestation token over
//! the server's nonce), then publishes telemetry with its LDevID and reconnects with backoff when
//! the server or the network goes away.
//!
//! ```text
//! castellan agent --device-dir dev1 --mqtt 127.0.0.1:8883 [--interval 5] [--detect-interval 60] [--count N | --once]
//! castellan agent --device-dir dev1 --mqtt 10.0.0.1:8883,10.0.0.2:8883   (several instances)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use castellan_agent::{AgentConfig, AgentError, Backoff, Endpoint, stdout_logger};
use clap::Args;

/// Arguments of `castellan agent`.
#[derive(Args)]
pub(crate) struct AgentArgs {
    /// The device directory (provisioned with `castellan factory provision`).
    #[arg(long, value_name = "DIR")]
    device_dir: PathBuf,
    /// The fleet server's MQTT broker (mutual TLS). Several instances of one fleet: a
    /// comma-separated list, or the option repeated; the agent moves to the next one when a
    /// connection fails or is lost, and stays where it works.
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8883",
        value_delimiter = ','
    )]
    mqtt: Vec<String>,
    /// Seconds between telemetry messages.
    #[arg(long, value_name = "SECONDS", default_value = "5")]
    interval: f64,
    /// Seconds between signed detection reports (one also goes out when the detector's alarm
    /// threshold is crossed); 0: no reports.
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    detect_interval: f64,
    /// Stop after this many telemetry messages.
    #[arg(long, value_name = "N", conflicts_with = "once")]
    count: Option<u64>,
    /// Onboard if needed, send one telemetry message, stop.
    #[arg(long)]
    once: bool,
    /// Longest wait between reconnection attempts, in seconds (the protocol's default: 60).
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    backoff_max: f64,
    /// First wait between reconnection attempts, in seconds (doubles up to --backoff-max).
    #[arg(long, value_name = "SECONDS", default_value = "1")]
    backoff_initial: f64,
    /// Stop after this many consecutive failed connection attempts (default: never).
    #[arg(long, value_name = "N")]
    max_failures: Option<u32>,
    /// The fleet's TUF metadata URL (`https://host:port/tuf/metadata`): offers are checked
    /// against it before the secure services see them. Without it, a device given a TUF root
    /// (by the factory, or `--tuf-root`) fetches the metadata over its MQTT connection.
    #[arg(long, value_name = "URL")]
    tuf_url: Option<String>,
    /// The TUF root to trust on first use (the repository's `1.root.json`), when the factory
    /// did not install one.
    #[arg(long, value_name = "FILE")]
    tuf_root: Option<PathBuf>,
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{what} must be a positive number"))
}

/// Run the agent.
pub(crate) fn run(a: AgentArgs) -> anyhow::Result<ExitCode> {
    let mut endpoints = a
        .mqtt
        .iter()
        .map(|m| Endpoint::parse(m))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let first = endpoints
        .next()
        .context("--mqtt needs at least one HOST:PORT")?;
    let mut cfg = AgentConfig::new(&a.device_dir, first, stdout_logger(""));
    cfg.mqtt_fallbacks = endpoints.collect();
    cfg.interval = seconds(a.interval, "interval")?;
    cfg.count = if a.once { Some(1) } else { a.count };
    cfg.detect_interval = if a.detect_interval == 0.0 {
        None
    } else {
        Some(seconds(a.detect_interval, "detect-interval")?)
    };
    cfg.backoff = Backoff::new(
        seconds(a.backoff_initial, "backoff-initial")?,
        seconds(a.backoff_max, "backoff-max")?,
    );
    cfg.max_failures = a.max_failures;
    cfg.tuf = (a.tuf_url.is_some() || a.tuf_root.is_some()).then(|| {
        castellan_agent::update::tuf::TufSettings {
            metadata_url: a.tuf_url.clone(),
            root: a.tuf_root.clone(),
            ..Default::default()
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match rt.block_on(castellan_agent::run(cfg)) {
        Ok(report) => {
            println!(
                "{}: {} telemetry message(s), {} connection(s), {} reconnect(s){}",
                report.device_id,
                report.messages_sent,
                report.connections,
                report.reconnects,
                if report.onboarded_now {
                    ", onboarded in this run"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(AgentError::OnboardingRefused { reason, .. }) => {
            eprintln!("castellan: onboarding refused by the server: {reason}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
