//! `castellan`: one command for every Castellan tool, from key generation to the fleet service.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only parses the command line
//! and maps failures to exit codes: 0 success, 1 refused or failed (with a one-line reason on
//! stderr), 2 usage error (from clap).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Castellan: a chain of trust for connected devices, from the factory to the fleet.
#[derive(Parser)]
#[command(name = "castellan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Castellan's main job end to end on embedded defaults, and show where to look next.
    Demo(cmd::demo::DemoArgs),
    /// Generate a signing key (PKCS#8 PEM, readable by imgtool and openssl).
    Keygen(cmd::keys::KeygenArgs),
    /// Print the public key of a key file as PEM.
    Getpub(cmd::keys::GetpubArgs),
    /// Sign, verify and inspect MCUboot-compatible firmware images.
    #[command(subcommand)]
    Image(cmd::image::ImageCommand),
    /// Show and verify PSA attestation tokens (RFC 9783).
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Drive a simulated device: create, provision, flash, boot, upgrade, confirm.
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
    /// Show SUIT update manifests.
    #[command(subcommand)]
    Suit(cmd::suit::SuitCommand),
    /// Factory station: give simulated devices their identity (IDevID) and register them.
    #[command(subcommand)]
    Factory(cmd::factory::FactoryCommand),
    /// Run a simulated device as a fleet member: onboard, telemetry, reconnect with backoff.
    Agent(cmd::agent::AgentArgs),
    /// Run the fleet service: HTTPS operator API, mutual-TLS MQTT broker, PKI, registry, audit.
    Serve(cmd::serve::ServeArgs),
    /// The offline root and the issuing CAs: create, hand over to the service, rotate, retire.
    #[command(subcommand)]
    Pki(cmd::pki::PkiCommand),
    /// Releases: register the release key, build and sign a release, list and show releases.
    #[command(subcommand)]
    Release(cmd::release::ReleaseCommand),
    /// The TUF repository of the releases: keys, offline signing, delegations, status.
    #[command(subcommand)]
    Repo(cmd::repo::RepoCommand),
    /// Update campaigns: canary and waves, health gates, pause, resume, abort, rollback.
    #[command(subcommand)]
    Campaign(cmd::campaign::CampaignCommand),
    /// Alerts of the fleet's analysis: list, acknowledge, resolve.
    #[command(subcommand)]
    Alerts(cmd::alerts::AlertsCommand),
    /// Response policies per device class: automatic quarantine and its hourly cap.
    #[command(subcommand)]
    Policy(cmd::alerts::PolicyCommand),
    /// An operator's containment of one device: quarantine, release.
    #[command(subcommand)]
    Device(cmd::alerts::DeviceCommand),
    /// Operator accounts of the web console: create one, set a password.
    #[command(subcommand)]
    Operator(cmd::operator::OperatorCommand),
    /// Verify the fleet service's hash-chained audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Anomaly detection over event traces: train a model from normal traces, score, evaluate.
    #[command(subcommand)]
    Detect(cmd::detect::DetectCommand),
    /// Benchmarks: our MQTT broker against Mosquitto, same certificates, same run.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    // `castellan bench connect` runs our broker as a child of this executable.
    if let Some(code) = castellan_connect_bench::run_child_if_requested() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Keygen(a) => cmd::keys::keygen(a),
        Command::Getpub(a) => cmd::keys::getpub(a),
        Command::Image(c) => cmd::image::run(c),
        Command::Token(c) => cmd::token::run(c),
        Command::Suit(c) => cmd::suit::run(c),
        Command::Sim(c) => cmd::sim::run(c),
        Command::Factory(c) => cmd::factory::run(c),
        Command::Agent(a) => cmd::agent::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Pki(c) => cmd::pki::run(c),
        Command::Release(c) => cmd::release::run(c),
        Command::Repo(c) => cmd::repo::run(c),
        Command::Campaign(c) => cmd::campaign::run(c),
        Command::Alerts(c) => cmd::alerts::run_alerts(c),
        Command::Policy(c) => cmd::alerts::run_policy(c),
        Command::Device(c) => cmd::alerts::run_device(c),
        Command::Operator(c) => cmd::operator::run(c),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Detect(c) => cmd::detect::run(c),
        Command::Bench(c) => cmd::bench::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("castellan: {e:#}");
            ExitCode::FAILURE
        }
    }
}
