//! `castellan bench connect`: N simulated devices connect with mutual TLS and publish QoS 1
//! telemetry, against Castellan's embedded broker and against Mosquitto (Debian package) with
//! the same certificates, in the same run; handshakes per second, messages per second and memory
//! per connection side by side, with ratios.

use std::process::ExitCode;
use std::time::Duration;

use castellan_connect_bench::{BenchOptions, bench_connect_with};
use clap::{Args, Subcommand};

/// `castellan bench …`
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Connect benchmark: our broker vs Mosquitto, same certificates, same run (loopback).
    Connect(ConnectArgs),
    /// Rollout benchmark: a release to N simulated devices, time to 100 % updated and attested,
    /// server CPU and peak memory, against the hashing and signature floor of the same bytes.
    Rollout(super::bench_rollout::RolloutArgs),
    /// Response benchmark: a healthy soak, then two compromised devices; time to alert and to
    /// containment, alerts on healthy peers (none expected).
    Response(super::bench_response::ResponseArgs),
}

/// Arguments of `castellan bench connect`.
#[derive(Args)]
pub(crate) struct ConnectArgs {
    /// Simulated devices (concurrent mutual-TLS connections) per broker.
    #[arg(long, default_value = "500")]
    clients: usize,
    /// QoS 1 messages each device publishes once all are connected.
    #[arg(long, default_value = "20")]
    messages: usize,
    /// Payload size in bytes.
    #[arg(long, default_value = "64")]
    payload: usize,
    /// Most TLS handshakes in flight at once.
    #[arg(long, default_value = "64")]
    concurrency: usize,
    /// Time limit of each phase (connect, publish) per broker, in seconds.
    #[arg(long, default_value = "120")]
    timeout: u64,
}

/// Run a bench subcommand.
pub(crate) fn run(c: BenchCommand) -> anyhow::Result<ExitCode> {
    match c {
        BenchCommand::Connect(a) => connect(a),
        BenchCommand::Rollout(a) => super::bench_rollout::rollout(a),
        BenchCommand::Response(a) => super::bench_response::response(a),
    }
}

fn connect(a: ConnectArgs) -> anyhow::Result<ExitCode> {
    let opts = BenchOptions {
        clients: a.clients,
        msgs_per_client: a.messages,
        payload_len: a.payload,
        connect_concurrency: a.concurrency.max(1),
        phase_timeout: Duration::from_secs(a.timeout.max(1)),
        broker_exe: None,
    };
    println!(
        "connecting {} devices to each broker (mutual TLS, loopback), then {} QoS 1 messages each...",
        opts.clients, opts.msgs_per_client
    );
    let report = bench_connect_with(&opts).map_err(|e| anyhow::anyhow!("benchmark failed: {e}"))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
