//! The connect benchmark (issue 6, item 10): N simulated devices connect with mutual TLS, publish
//! QoS 1 telemetry, and the same run measures our broker and Mosquitto (Debian package) with the
//! same certificates, side by side.
//!
//! Both brokers run as separate processes so that their memory is measured the same way (VmRSS
//! of the broker process from `/proc/<pid>/status`, before and with the N connections open); the
//! clients run in this process ([`crate::mqtt_client`]). Our broker runs as a child of the current
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
//! patterns; ours through the hooks with an allow-all [`crate::Authorizer`]).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::auth::{AllowAllVerified, NoAudit};
use crate::broker::{Broker, BrokerConfig};
use crate::error::BrokerError;
use crate::mqtt_client::{self, MqttClient};
use crate::pki::TestPki;

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

/// Figures for one broker.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerFigures {
    /// Broker name and version.
    pub broker: String,
    /// Clients that completed TLS + CONNACK.
    pub connected: usize,
    /// Clients that failed to connect.
    pub failed: usize,
    /// Wall time to connect all clients, seconds.
    pub connect_secs: f64,
    /// Completed connections (TLS handshake + MQTT CONNECT/CONNACK) per second.
    pub handshakes_per_sec: f64,
    /// QoS 1 messages acknowledged.
    pub messages: usize,
    /// Wall time of the publish phase, seconds.
    pub publish_secs: f64,
    /// Acknowledged QoS 1 messages per second.
    pub messages_per_sec: f64,
    /// Broker VmRSS before any client, KiB.
    pub rss_idle_kib: u64,
    /// Broker VmRSS with all clients connected, KiB.
    pub rss_connected_kib: u64,
    /// (connected − idle RSS) / connected clients, KiB.
    pub kib_per_connection: f64,
}

/// Both brokers' figures from one run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Clients per broker.
    pub clients: usize,
    /// Messages per client.
    pub msgs_per_client: usize,
    /// Payload size in bytes.
    pub payload_len: usize,
    /// Our broker (rmqtt with the Castellan hooks).
    pub castellan: BrokerFigures,
    /// Mosquitto from the Debian package.
    pub mosquitto: BrokerFigures,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (c, m) = (&self.castellan, &self.mosquitto);
        writeln!(
            f,
            "connect benchmark: {} clients, mutual TLS (ECDSA P-256), MQTT 3.1.1, {} QoS 1 messages of {} bytes each, loopback",
            self.clients, self.msgs_per_client, self.payload_len
        )?;
        writeln!(
            f,
            "{:<26} {:>20} {:>20} {:>10}",
            "", c.broker, m.broker, "ratio"
        )?;
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "-".into()
            }
        };
        let mut row = |name: &str, a: f64, b: f64, prec: usize| {
            writeln!(
                f,
                "{name:<26} {a:>20.prec$} {b:>20.prec$} {:>10}",
                ratio(a, b)
            )
        };
        row(
            "handshakes/s",
            c.handshakes_per_sec,
            m.handshakes_per_sec,
            1,
        )?;
        row("connect all (s)", c.connect_secs, m.connect_secs, 3)?;
        row(
            "messages/s (QoS 1)",
            c.messages_per_sec,
            m.messages_per_sec,
            1,
        )?;
        row("publish all (s)", c.publish_secs, m.publish_secs, 3)?;
        row(
            "broker RSS idle (MiB)",
            c.rss_idle_kib as f64 / 1024.0,
            m.rss_idle_kib as f64 / 1024.0,
            1,
        )?;
        row(
            "broker RSS loaded (MiB)",
            c.rss_connected_kib as f64 / 1024.0,
            m.rss_connected_kib as f64 / 1024.0,
            1,
        )?;
        row(
            "KiB per connection",
            c.kib_per_connection,
            m.kib_per_connection,
            1,
        )?;
        row("failed connections", c.failed as f64, m.failed as f64, 0)?;
        write!(f, "ratio = castellan / mosquitto")
    }
}

/// Runs the benchmark with `clients` devices and `msgs_per_client` messages each (other options
/// default). Must not be called from inside a tokio runtime.
pub fn bench_connect(clients: usize, msgs_per_client: usize) -> Result<BenchReport, BrokerError> {
    bench_connect_with(&BenchOptions {
        clients,
        msgs_per_client,
        ..BenchOptions::default()
    })
}

/// Runs the benchmark with options. Must not be called from inside a tokio runtime.
pub fn bench_connect_with(opts: &BenchOptions) -> Result<BenchReport, BrokerError> {
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

/// In a binary that runs [`bench_connect`]: if this process was started as the benchmark's broker
/// child, serve the broker until stdin closes and return the exit code; otherwise return `None`.
pub fn run_child_if_requested() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_ARG) {
        return None;
    }
    let [_, _, cert, key, ca] = args.as_slice() else {
        eprintln!("usage: {CHILD_ARG} <server.pem> <server.key> <ca.pem>");
        return Some(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("benchmark broker: {e}");
            return Some(1);
        }
    };
    let code = rt.block_on(async {
        let config = BrokerConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            cert,
            key,
            ca,
            Arc::new(AllowAllVerified),
            Arc::new(NoAudit),
        );
        let handle = match Broker::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("benchmark broker: {e}");
                return 1;
            }
        };
        println!("LISTENING {}", handle.local_addr().port());
        let _ = std::io::stdout().flush();
        // Serve until the parent closes our stdin (or dies).
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stdin, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        handle.shutdown().await;
        0
    });
    Some(code)
}

fn bench_err(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Bench(e.to_string())
}

async fn run_clients(
    name: &str,
    addr: SocketAddr,
    pid: u32,
    tls: &[(String, Arc<tokio_rustls::rustls::ClientConfig>)],
    opts: &BenchOptions,
) -> Result<BrokerFigures, BrokerError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle_kib = vm_rss_kib(pid)?;

    // Connect phase: every client does TCP + TLS + CONNECT/CONNACK, `connect_concurrency` at once.
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(tls.len());
    for (id, config) in tls {
        let (id, config, permits) = (id.clone(), config.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(bench_err)?;
            let c = MqttClient::connect(addr, config, &id, 300).await?;
            Ok::<_, BrokerError>((id, c))
        }));
    }
    let joined = tokio::time::timeout(opts.phase_timeout, futures_join(tasks))
        .await
        .map_err(|_| {
            BrokerError::Bench(format!(
                "{name}: connect phase exceeded {:?}",
                opts.phase_timeout
            ))
        })?;
    let connect_secs = start.elapsed().as_secs_f64();
    let mut clients = Vec::new();
    let mut failed = 0usize;
    let mut first_error = None;
    for r in joined {
        match r {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    if clients.is_empty() {
        return Err(BrokerError::Bench(format!(
            "{name}: no client connected ({})",
            first_error.unwrap_or_default()
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = vm_rss_kib(pid)?;
    let connected = clients.len();

    // Publish phase: all clients publish their QoS 1 messages concurrently.
    let payload = vec![0x5au8; opts.payload_len];
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connected);
    for (id, mut c) in clients {
        let payload = payload.clone();
        let count = opts.msgs_per_client;
        tasks.push(tokio::spawn(async move {
            let topic = format!("dev/{id}/telemetry");
            c.publish_qos1(&topic, &payload, count).await?;
            Ok::<_, BrokerError>(c)
        }));
    }
    let joined = tokio::time::timeout(opts.phase_timeout, futures_join(tasks))
        .await
        .map_err(|_| {
            BrokerError::Bench(format!(
                "{name}: publish phase exceeded {:?}",
                opts.phase_timeout
            ))
        })?;
    let publish_secs = start.elapsed().as_secs_f64();
    let mut messages = 0usize;
    let mut done = Vec::new();
    for r in joined {
        if let Ok(Ok(c)) = r {
            messages += opts.msgs_per_client;
            done.push(c);
        }
    }
    for c in done {
        let _ = c.disconnect().await;
    }
    let per_sec = |n: usize, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Ok(BrokerFigures {
        broker: name.to_owned(),
        connected,
        failed,
        connect_secs,
        handshakes_per_sec: per_sec(connected, connect_secs),
        messages,
        publish_secs,
        messages_per_sec: per_sec(messages, publish_secs),
        rss_idle_kib,
        rss_connected_kib,
        kib_per_connection: rss_connected_kib.saturating_sub(rss_idle_kib) as f64
            / connected as f64,
    })
}

async fn futures_join<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await);
    }
    out
}

/// VmRSS of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn vm_rss_kib(pid: u32) -> Result<u64, BrokerError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(bench_err)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BrokerError::Bench(format!("no VmRSS for pid {pid}")))
}

fn find_mosquitto() -> Result<PathBuf, BrokerError> {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ];
    if let Some(p) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .ok_or(BrokerError::ToolMissing {
            tool: "mosquitto",
            install: "apt-get install -y mosquitto",
        })
}

fn mosquitto_version(exe: &Path) -> String {
    let out = Command::new(exe)
        .arg("-h")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    out.ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("mosquitto version "))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

fn free_loopback_port() -> Result<u16, BrokerError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(bench_err)?;
    Ok(l.local_addr().map_err(bench_err)?.port())
}

/// Writes `mosquitto.conf` and its ACL file; returns the config path and the chosen port.
fn write_mosquitto_conf(
    dir: &Path,
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<(PathBuf, u16), BrokerError> {
    let port = free_loopback_port()?;
    let acl = dir.join("mosquitto.acl");
    std::fs::write(
        &acl,
        "pattern write dev/%u/telemetry\npattern write dev/%u/events\npattern write dev/%u/status\n\
         pattern write dev/%u/up/#\npattern read dev/%u/cmd/#\npattern read dev/%u/down/#\n",
    )
    .map_err(bench_err)?;
    let conf = format!(
        "per_listener_settings false\nallow_anonymous false\npersistence false\nlog_dest stderr\nlog_type error\n\
         max_connections -1\nacl_file {}\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
         require_certificate true\nuse_identity_as_username true\n",
        acl.display(),
        ca.display(),
        cert.display(),
        key.display()
    );
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).map_err(bench_err)?;
    Ok((path, port))
}

/// A broker child process, killed when dropped.
struct BrokerProcess {
    child: Child,
    addr: SocketAddr,
}

impl BrokerProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn_ours(mut cmd: Command) -> Result<Self, BrokerError> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BrokerError::Bench(format!("cannot start the broker child: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BrokerError::Bench("no child stdout".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BrokerError::Bench(format!(
                "the broker child did not report its port (got {line:?}); does the binary call \
                 castellan_broker::bench::run_child_if_requested() at the start of main?"
            )));
        };
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn spawn_mosquitto(
        exe: &Path,
        conf: &Path,
        port: u16,
        dir: &Path,
    ) -> Result<Self, BrokerError> {
        let log = std::fs::File::create(dir.join("mosquitto.log")).map_err(bench_err)?;
        let child = Command::new(exe)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| BrokerError::Bench(format!("cannot start mosquitto: {e}")))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut process = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
                return Err(BrokerError::Bench(format!(
                    "mosquitto exited ({status}): {log}"
                )));
            }
            if Instant::now() > deadline {
                return Err(BrokerError::Bench(
                    "mosquitto did not listen within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // Closing stdin asks our child to stop; Mosquitto (no stdin) and a stuck child are killed.
        let graceful = self.child.stdin.take().is_some();
        let deadline = if graceful {
            Instant::now() + Duration::from_secs(3)
        } else {
            Instant::now()
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<Self, BrokerError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("castellan-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(bench_err)?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
