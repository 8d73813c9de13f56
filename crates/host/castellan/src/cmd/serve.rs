//! `castellan serve`: the fleet service (HTTPS operator API, mutual-TLS MQTT broker, PKI,
//! registry, onboarding, audit) in one process, on embedded defaults, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use castellan_pki::{KeyBackend, Pkcs11Token};
use castellan_server::{
    DEFAULT_API_LISTEN, DEFAULT_MQTT_LISTEN, DEFAULT_STATE_DIR, FrontDoorLimits, Server,
    ServerConfig,
};
use clap::Args;

/// Arguments of `castellan serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// State directory: the PKI handed over from the offline root (`castellan pki handover`),
    /// store, TLS files, admin token (created on first run).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Store location: a postgres:// URL, or a SQLite file (default: castellan.db in the
    /// state directory).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// MQTT listener (mutual TLS only; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_MQTT_LISTEN)]
    mqtt: SocketAddr,
    /// HTTPS operator API listener (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_API_LISTEN)]
    api: SocketAddr,
    /// DNS names and IP addresses of the service's TLS certificate (repeat the option).
    #[arg(long = "name", value_name = "NAME", default_values = ["localhost", "127.0.0.1"])]
    names: Vec<String>,
    #[command(flatten)]
    pkcs11: Pkcs11Args,
    /// Run the embedded demo PKI: create the whole hierarchy, the root CA's key included, in
    /// the state directory. For local demos only: without it the service refuses to start with
    /// the root's key in reach.
    #[arg(long)]
    embedded_demo_pki: bool,
    /// Most live MQTT connections from one peer address (raise it when many devices share a
    /// NAT address).
    #[arg(long, value_name = "N", default_value_t = FrontDoorLimits::default().mqtt_max_connections_per_address)]
    mqtt_max_per_address: usize,
    /// Most live MQTT connections presenting one client certificate.
    #[arg(long, value_name = "N", default_value_t = FrontDoorLimits::default().mqtt_max_connections_per_certificate)]
    mqtt_max_per_certificate: usize,
    /// Seconds an MQTT client has for its TLS handshake, again for its first packet and again
    /// for its CONNECT; a connection that never sends CONNECT is closed after it.
    #[arg(long, value_name = "SECONDS", default_value_t = FrontDoorLimits::default().mqtt_connect_timeout.as_secs())]
    mqtt_connect_timeout: u64,
    /// Most open API connections from one peer address.
    #[arg(long, value_name = "N", default_value_t = FrontDoorLimits::default().api_max_connections_per_address)]
    api_max_per_address: usize,
    /// Serve this TUF repository of the releases (`castellan repo init`) to devices under
    /// /tuf/, re-signing its snapshot and timestamp before they expire.
    #[arg(long, value_name = "DIR")]
    tuf_repo: Option<PathBuf>,
    /// This instance's name among several on one database (the holder of its leases; shown in
    /// the audit log). Default: host name, process id and a random suffix.
    #[arg(long, value_name = "NAME")]
    instance_name: Option<String>,
    /// Seconds a lease on once-only work (campaign ticks, TUF re-signing, the fleet's analysis)
    /// lasts unrenewed: the longest another instance on the same database waits before it
    /// takes over from one that died.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    lease_ttl: u64,
    /// POST every alert (its JSON, as the API shows it) to this https:// URL, signed with
    /// `X-Castellan-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`; up to three
    /// attempts, each delivery audited (`alert.webhook`). http:// is refused.
    #[arg(long, value_name = "URL", requires = "alert_webhook_secret_file")]
    alert_webhook: Option<String>,
    /// The file holding the webhook's shared secret (its final newline is ignored).
    #[arg(long, value_name = "FILE", requires = "alert_webhook")]
    alert_webhook_secret_file: Option<PathBuf>,
    /// Trust only this CA (PEM) for the webhook receiver's certificate (default: the
    /// platform's trust store).
    #[arg(long, value_name = "PEM", requires = "alert_webhook")]
    alert_webhook_ca: Option<PathBuf>,
    /// How the service's log is written to standard error: `text` (one line a record, for a
    /// person) or `json` (one JSON object a line, for a log shipper). The level filter is
    /// `CASTELLAN_LOG` (tracing's filter syntax), default `warn,castellan=info`.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The format of `castellan serve`'s log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line (timestamp, level, target, fields).
    Json,
}

/// Send the service's log records (its `log` and `tracing` events, and its dependencies'
/// warnings) to standard error in `format`.
fn init_logs(format: LogFormat) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CASTELLAN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,castellan=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Where CA keys live when they are in a PKCS#11 token (`castellan serve`, `castellan pki
/// request`).
#[derive(Args)]
pub(crate) struct Pkcs11Args {
    /// Keep the CA keys in a PKCS#11 token: the module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "SO", requires = "pkcs11_token")]
    pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token label.
    #[arg(long, value_name = "LABEL")]
    pkcs11_token: Option<String>,
    /// The PKCS#11 user PIN (default: the CASTELLAN_PKCS11_PIN environment variable, which
    /// keeps it out of the process list).
    #[arg(long, value_name = "PIN")]
    pkcs11_pin: Option<String>,
}

impl Pkcs11Args {
    /// The token, if one was named.
    pub(crate) fn open(&self) -> anyhow::Result<Option<std::sync::Arc<Pkcs11Token>>> {
        let (Some(module), Some(label)) = (&self.pkcs11_module, &self.pkcs11_token) else {
            return Ok(None);
        };
        let pin = match &self.pkcs11_pin {
            Some(p) => p.clone(),
            None => std::env::var("CASTELLAN_PKCS11_PIN")
                .context("--pkcs11-module needs --pkcs11-pin or CASTELLAN_PKCS11_PIN")?,
        };
        let token = Pkcs11Token::open(module, label, &pin)
            .with_context(|| format!("cannot open PKCS#11 token {label:?}"))?;
        Ok(Some(token))
    }
}

/// Run the service until Ctrl-C or SIGTERM.
pub(crate) fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logs(a.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(a))
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ServerConfig::new(&a.state_dir);
    config.database = a.database.clone();
    config.mqtt_listen = a.mqtt;
    config.api_listen = a.api;
    config.server_names = a.names.clone();
    config.embedded_demo_pki = a.embedded_demo_pki;
    config.front_door.mqtt_max_connections_per_address = a.mqtt_max_per_address;
    config.front_door.mqtt_max_connections_per_certificate = a.mqtt_max_per_certificate;
    config.front_door.mqtt_connect_timeout =
        std::time::Duration::from_secs(a.mqtt_connect_timeout.max(1));
    config.front_door.api_max_connections_per_address = a.api_max_per_address;
    config.instance_name = a.instance_name.clone();
    config.lease_ttl = std::time::Duration::from_secs(a.lease_ttl.max(1));
    if let (Some(url), Some(secret_file)) = (&a.alert_webhook, &a.alert_webhook_secret_file) {
        let secret = std::fs::read(secret_file)
            .with_context(|| format!("cannot read {}", secret_file.display()))?;
        let ca = match &a.alert_webhook_ca {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            ),
            None => None,
        };
        config.alert_webhook = Some(castellan_server::AlertWebhook::new(url, &secret, ca)?);
    }
    if let Some(dir) = &a.tuf_repo {
        castellan_tuf::repo::Repository::open(dir).with_context(|| {
            format!(
                "{} is not a TUF repository (create it with `castellan repo init`)",
                dir.display()
            )
        })?;
        config.tuf_repository = Some(dir.clone());
    }
    if let Some(token) = a.pkcs11.open()? {
        // The TUF online keys (snapshot, timestamp) live in the same token as the CA keys.
        config.tuf_online_keys = KeyBackend::Pkcs11(token.clone());
        config.key_backend = KeyBackend::Pkcs11(token);
    }
    let server = Server::start(config)
        .await
        .context("the fleet service did not start")?;
    // Listen for the stop signals before saying how to stop: a SIGTERM sent as soon as the
    // last line is read must not find the default action (immediate death) still in place.
    let stop = stop_signal();
    let paths = server.paths().clone();
    tracing::info!(
        target: "castellan::serve",
        instance = %server.instance_name(),
        api = %server.api_url(),
        mqtt = %server.mqtt_addr(),
        "fleet service running"
    );
    println!("castellan serve: fleet service running");
    println!("  instance     {}", server.instance_name());
    println!("  state        {}", paths.state_dir.display());
    println!("  store        {}", paths.database);
    println!("  operator API {}", server.api_url());
    println!("  MQTT (mTLS)  mqtts://{}", server.mqtt_addr());
    println!("  CA bundle    {}", paths.ca_bundle.display());
    if let Some(dir) = &a.tuf_repo {
        println!(
            "  TUF          {}/tuf/metadata/ (from {})",
            server.api_url(),
            dir.display()
        );
    }
    for (ca, location) in server.pki().key_locations() {
        println!("  {:<12} {location}", format!("{} key", ca.name()));
    }
    match (server.first_run(), server.admin_token()) {
        (true, Some(_)) => println!(
            "  admin token  {} (created now, mode 0600: keep it secret)",
            paths.admin_token_file.display()
        ),
        (false, Some(_)) => println!("  admin token  {}", paths.admin_token_file.display()),
        (_, None) => println!(
            "  admin token  {} is gone: create operators with a token you kept",
            paths.admin_token_file.display()
        ),
    }
    let token = paths.admin_token_file.display();
    println!();
    println!("next:");
    println!(
        "  curl --cacert {} -H \"Authorization: Bearer $(cat {token})\" {}/api/v1/devices",
        paths.ca_bundle.display(),
        server.api_url()
    );
    println!(
        "  castellan factory provision --server {} --token-file {token} --device-dir .castellan/devices/CSTL-0001 --serial CSTL-0001 --new",
        server.api_url()
    );
    println!(
        "  castellan agent --device-dir .castellan/devices/CSTL-0001 --mqtt {}",
        server.mqtt_addr()
    );
    println!(
        "  castellan audit verify --state-dir {}",
        paths.state_dir.display()
    );
    println!("Ctrl-C stops the service.");
    stop.await;
    println!("stopping: closing sessions, writing the last audit records");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// A future that completes on Ctrl-C or SIGTERM; the handlers are in place when it returns.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).ok()
    };
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
