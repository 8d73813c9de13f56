//! The connect benchmark of `castellan bench connect` and `castellan-broker-bench`: N simulated devices connect with mutual TLS, publish
//! QoS 1 telemetry, and the same run measures our broker and Mosquitto (Debian package) with the
//! same certificates, side by side.
//!
//! Both brokers run as separate processes so that their memory is measured the same way (VmRSS
//! of the broker process from `/proc/<pid>/status`, before and with the N connections open); the
//! clients run in this process (castellan-testkit's `mqtt_client`). Our broker runs as a child of the current
//! executable started with [`CHILD_ARG`]: a binary that calls [`bench_connect`] must call
//! [`run_child_if_requested`] first thing in `main`. Loopback only, every phase time-bounded.
//!
//! What is measured: "handshakes/s" counts complete connections (TCP + TLS handshake with client
//! certificate + MQTT CONNECT/CONNACK, `connect_concurrency` in flight); "messages/s" counts QoS 1
//! publishes acknowledged by the broker (ingest, ACL check, PUBACK; no subscriber, so no fan-out);
//! memory is the broker's RSS growth divided by the open connections. The clients share the
//! machine with the broker under test, so on a small machine the figures are a lower bound and
//! vary with whatever else runs: compare the two columns of one run, not runs of different days.
//!
//! Fairness: both brokers get the same CA, server certificate (ECDSA P-256) and client
//! certificates, both require a client certificate and map its CN to the username, and both
//! enforce a per-device ACL of the same shape (Mosquitto through an `acl_file` with `%u`
//! patterns; ours through the hooks with an allow-all `castellan_broker::Authorizer`).

#![forbid(unsafe_code)]

mod child;
mod clients;
mod error;
mod process;
mod report;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use castellan_testkit::mqtt_client;
use castellan_testkit::test_pki::TestPki;

pub use child::run_child_if_requested;
pub use error::BenchError;
pub use process::vm_rss_kib;
pub use report::{BenchReport, BrokerFigures};

use clients::run_clients;
use process::{BrokerProcess, WorkDir, find_mosquitto, mosquitto_version, write_mosquitto_conf};

/// First argument that makes a binary serve our broker as a benchmark child
/// (`<exe> __castellan-broker-bench-child <server.pem> <server.key> <ca.pem>`).
pub const CHILD_ARG: &str = "__castellan-broker-bench-child";

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Number of concurrent clients (devices).
    pub clients: usize,
    /// QoS 1 messages each client publishes after all are connected.
    pub msgs_per_client: usize,
    /// Payload size in bytes.
    pub payload_len: usize,
    /// Most TLS handshakes in flight at once.
    pub connect_concurrency: usize,
    /// Limit for each phase (connect, publish) of each broker.
    pub phase_timeout: Duration,
    /// Executable that serves our broker when given [`CHILD_ARG`] (default: the current one).
    pub broker_exe: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            clients: 500,
            msgs_per_client: 20,
            payload_len: 64,
            connect_concurrency: 64,
            phase_timeout: Duration::from_secs(120),
            broker_exe: None,
        }
    }
}

/// Runs the benchmark with `clients` devices and `msgs_per_client` messages each (other options
/// default). Must not be called from inside a tokio runtime.
pub fn bench_connect(clients: usize, msgs_per_client: usize) -> Result<BenchReport, BenchError> {
    bench_connect_with(&BenchOptions {
        clients,
        msgs_per_client,
        ..BenchOptions::default()
    })
}

/// Runs the benchmark with options. Must not be called from inside a tokio runtime.
pub fn bench_connect_with(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let mosquitto = find_mosquitto()?;
    let work = WorkDir::new()?;
    let pki = TestPki::new(work.path(), "bench")?;
    let server = pki.issue_server("server")?;
    let ids: Vec<String> = (0..opts.clients).map(|i| format!("bench-{i:05}")).collect();
    let mut tls = Vec::with_capacity(ids.len());
    for id in &ids {
        let files = pki.issue_client(id)?;
        tls.push((
            id.clone(),
            mqtt_client::tls_config(pki.ca_pem(), &files.cert, &files.key)?,
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(bench_err)?;

    let exe = match &opts.broker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(bench_err)?,
    };
    let mut ours = Command::new(exe);
    ours.arg(CHILD_ARG)
        .arg(&server.cert)
        .arg(&server.key)
        .arg(pki.ca_pem());
    let ours = BrokerProcess::spawn_ours(ours)?;
    let castellan = rt.block_on(run_clients(
        "castellan (rmqtt 0.24)",
        ours.addr,
        ours.pid(),
        &tls,
        opts,
    ));
    drop(ours);
    let castellan = castellan?;

    let conf = write_mosquitto_conf(work.path(), &server.cert, &server.key, pki.ca_pem())?;
    let theirs = BrokerProcess::spawn_mosquitto(&mosquitto, &conf.0, conf.1, work.path())?;
    let name = format!("mosquitto {}", mosquitto_version(&mosquitto));
    let theirs_figures = rt.block_on(run_clients(&name, theirs.addr, theirs.pid(), &tls, opts));
    drop(theirs);
    Ok(BenchReport {
        clients: opts.clients,
        msgs_per_client: opts.msgs_per_client,
        payload_len: opts.payload_len,
        castellan,
        mosquitto: theirs_figures?,
    })
}

pub(crate) fn bench_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Bench(e.to_string())
}
