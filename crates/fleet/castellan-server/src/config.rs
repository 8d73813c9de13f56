//! How to run the fleet service, and where its state lives.
//!
//! ```text
//!  <state dir>/                    (default .castellan/server, created on first run, 0700)
//!  ├── pki/                        CAs handed over from the offline root (docs/pki.md): root and
//!  │                               service CA certificates, operational CA with its key (0600, or
//!  │                               PKCS#11), manufacturer CA (its key only if the factory is here)
//!  ├── tls/server.pem, server.key  the service's certificate (reissued at every start)
//!  ├── tls/client-ca.pem           issuing CAs a client certificate may come from (broker; no root)
//!  ├── tls/ca-bundle.pem           root + manufacturer + operational: what clients trust
//!  ├── castellan.db                SQLite store (unless --database postgres://…)
//!  ├── castellan.db.audit-head     audit anchor (audit-head with PostgreSQL)
//!  └── admin.token                 first admin's API token (0600), written on first run
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use castellan_pki::KeyBackend;

pub use crate::front_door::FrontDoorLimits;

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = ".castellan/server";
/// The default MQTT (mutual TLS) listen address.
pub const DEFAULT_MQTT_LISTEN: &str = "127.0.0.1:8883";
/// The default HTTPS API listen address.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8443";

/// Settings of [`crate::Server::start`].
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The state directory (created on first run).
    pub state_dir: PathBuf,
    /// The store: `None` for SQLite in `<state dir>/castellan.db`, or a `postgres://` URL (or
    /// another SQLite path).
    pub database: Option<String>,
    /// The MQTT listener (port 0: any free port, see [`crate::ServerHandle::mqtt_addr`]).
    pub mqtt_listen: SocketAddr,
    /// The HTTPS API listener (port 0: any free port).
    pub api_listen: SocketAddr,
    /// DNS names and IP addresses of the service's TLS certificate.
    pub server_names: Vec<String>,
    /// Where the CA keys live.
    pub key_backend: KeyBackend,
    /// Run the embedded demo PKI: create the whole hierarchy, the root's key included, in the
    /// state directory (`castellan demo`, `castellan serve --embedded-demo-pki`). Off by
    /// default: the service then opens the PKI handed over from the offline root and refuses to
    /// start with the root's key in reach.
    pub embedded_demo_pki: bool,
    /// How long an onboarding nonce is valid.
    pub nonce_ttl: Duration,
    /// Most MQTT connections being authenticated at once. Each one holds a blocking thread
    /// while the registry is asked (and SQLite needs another): keep it well under the runtime's
    /// blocking pool (512 threads by default) so that connection storms queue instead of
    /// exhausting it.
    pub mqtt_max_handshaking: usize,
    /// How often the in-memory revocation set is reloaded from the store (revocations made by
    /// another service instance on the same database; this instance's revocations apply at
    /// once), and expired onboarding nonces are deleted.
    pub revocation_refresh: Duration,
    /// How often the campaign engine evaluates cohorts, waves, timeouts and thresholds (it
    /// also runs at once after a device finishes or an operator acts).
    pub campaign_tick: Duration,
    /// Largest image chunk sent on MQTT (the offer's `chunk_size`).
    pub update_chunk_size: u32,
    /// The vendor name the SUIT vendor and class ids derive from.
    pub vendor: String,
    /// The API base URL devices use for HTTPS downloads (`https://host:port`). `None`: the
    /// first server name and the bound API port.
    pub public_api_url: Option<String>,
    /// Limits of the MQTT listener and the API against connection floods and slow clients.
    pub front_door: FrontDoorLimits,
    /// The TUF repository of the releases (`castellan repo init`): served to devices under
    /// `/tuf/metadata/` and `/tuf/targets/`, its snapshot and timestamp re-signed before they
    /// expire. `None`: no TUF.
    pub tuf_repository: Option<PathBuf>,
    /// How often the TUF repository's online roles are checked for re-signing.
    pub tuf_resign_check: Duration,
    /// Where the TUF online keys (snapshot, timestamp) live: key files under the repository's
    /// `online/` (the default), or a PKCS#11 token (`castellan serve --pkcs11-…` puts them in
    /// the CA keys' token), see `tuf_online`.
    pub tuf_online_keys: KeyBackend,
    /// How long one window of the fleet's analysis is (signals counted over it, then every
    /// cohort compared; see `response`).
    pub analysis_window: Duration,
    /// The analysis's thresholds.
    pub analysis_policy: castellan_analysis::Policy,
    /// How long a healed device stays quarantined on probation before it is released.
    pub heal_probation: Duration,
    /// How long a device sent the reboot-and-reattest command has to send its fresh token;
    /// after it the reattest failed and the device goes on to a heal campaign.
    pub reattest_timeout: Duration,
    /// How long a decommissioned device has to send its proof of erasure (the final token);
    /// after it the device is recorded as "decommission unconfirmed" (revoked all the same).
    pub decommission_timeout: Duration,
    /// Whether a decommission needs a second operator's approval (default: yes).
    pub decommission_approval: bool,
    /// Where every alert is also POSTed, signed (`None`: MQTT `fleet/alerts` only).
    pub alert_webhook: Option<crate::response::AlertWebhook>,
    /// The operator console's sessions, lockout and login rate limit (`docs/console.md`).
    pub console: castellan_console::ConsoleConfig,
    /// This instance's name among the instances on one database (the holder of its leases).
    /// `None`: the host name, the process id and a random suffix, new at every start.
    pub instance_name: Option<String>,
    /// How long a lease on once-only work (campaign ticks, TUF re-signing, the analysis) lasts
    /// unrenewed: the longest another instance waits to take over from one that died
    /// (renewed every third of it; see `docs/scale.md`).
    pub lease_ttl: Duration,
    /// Instances on one database: how often each records the devices connected to its broker,
    /// renews its presence heartbeat and polls the device outbox and the session events (PostgreSQL
    /// also wakes them at once with NOTIFY). See `docs/scale.md`.
    pub cluster_poll: Duration,
    /// A presence row whose instance's heartbeat is older than this (the instance died) is
    /// ignored.
    pub presence_ttl: Duration,
    /// Outbox messages and session events older than this are dropped undelivered.
    pub outbox_ttl: Duration,
}

impl ServerConfig {
    /// The defaults with state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            state_dir: state_dir.into(),
            database: None,
            mqtt_listen: parse_addr(DEFAULT_MQTT_LISTEN),
            api_listen: parse_addr(DEFAULT_API_LISTEN),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            key_backend: KeyBackend::Files,
            embedded_demo_pki: false,
            nonce_ttl: Duration::from_secs(300),
            mqtt_max_handshaking: 128,
            revocation_refresh: Duration::from_secs(30),
            campaign_tick: Duration::from_millis(500),
            update_chunk_size: 4096,
            vendor: castellan_suit::ids::DEFAULT_VENDOR.to_string(),
            public_api_url: None,
            front_door: FrontDoorLimits::default(),
            tuf_repository: None,
            tuf_resign_check: Duration::from_secs(60),
            tuf_online_keys: KeyBackend::Files,
            analysis_window: Duration::from_secs(60),
            analysis_policy: castellan_analysis::Policy::default(),
            heal_probation: Duration::from_secs(600),
            alert_webhook: None,
            decommission_timeout: Duration::from_secs(300),
            reattest_timeout: Duration::from_secs(120),
            decommission_approval: true,
            console: castellan_console::ConsoleConfig::default(),
            instance_name: None,
            lease_ttl: Duration::from_secs(15),
            cluster_poll: Duration::from_secs(1),
            presence_ttl: Duration::from_secs(10),
            outbox_ttl: Duration::from_secs(600),
        }
    }

    /// The same configuration listening on free loopback ports (tests, demos).
    pub fn with_ephemeral_ports(mut self) -> ServerConfig {
        self.mqtt_listen = parse_addr("127.0.0.1:0");
        self.api_listen = parse_addr("127.0.0.1:0");
        self
    }

    /// The same configuration running the embedded demo PKI (root key in the state directory).
    pub fn with_embedded_demo_pki(mut self) -> ServerConfig {
        self.embedded_demo_pki = true;
        self
    }

    /// The same configuration with the store at `database` (URL or SQLite path).
    pub fn with_database(mut self, database: impl Into<String>) -> ServerConfig {
        self.database = Some(database.into());
        self
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::new(DEFAULT_STATE_DIR)
    }
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Where a running service keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatePaths {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The PKI directory (CA certificates; CA keys with file keys).
    pub pki_dir: PathBuf,
    /// The store's location (SQLite path, or the URL without its password).
    pub database: String,
    /// The audit anchor file.
    pub audit_anchor: PathBuf,
    /// The first admin's API token (written on first run only).
    pub admin_token_file: PathBuf,
    /// The service's certificate chain (leaf, operational CA, root), PEM.
    pub server_cert: PathBuf,
    /// The service's private key, PEM (0600).
    pub server_key: PathBuf,
    /// The issuing CAs a client certificate may come from (manufacturer, operational and those
    /// rotated out, service; not the root), PEM.
    pub client_ca: PathBuf,
    /// Everything a client needs to trust (root, manufacturer, operational), PEM: pass it as
    /// `--cafile` / `--cacert` to mosquitto clients and curl.
    pub ca_bundle: PathBuf,
}

impl StatePaths {
    /// The layout of `config`'s state directory, and the store location to open.
    pub fn resolve(config: &ServerConfig) -> (StatePaths, String) {
        let dir = &config.state_dir;
        let (location, postgres) = database_location(dir, config.database.as_deref());
        let tls = dir.join("tls");
        let paths = StatePaths {
            state_dir: dir.clone(),
            pki_dir: dir.join("pki"),
            audit_anchor: audit_anchor(dir, &location, postgres),
            database: if postgres {
                castellan_store::redact_url(&location)
            } else {
                location.clone()
            },
            admin_token_file: dir.join("admin.token"),
            server_cert: tls.join("server.pem"),
            server_key: tls.join("server.key"),
            client_ca: tls.join("client-ca.pem"),
            ca_bundle: tls.join("ca-bundle.pem"),
        };
        (paths, location)
    }
}

/// The store location for a state directory and an optional `--database`: the URL or path
/// given, else `<state dir>/castellan.db`; and whether it is PostgreSQL.
pub fn database_location(state_dir: &Path, database: Option<&str>) -> (String, bool) {
    match database {
        Some(d) if d.starts_with("postgres://") || d.starts_with("postgresql://") => {
            (d.to_string(), true)
        }
        Some(d) => (d.strip_prefix("sqlite:").unwrap_or(d).to_string(), false),
        None => (
            state_dir
                .join("castellan.db")
                .to_string_lossy()
                .into_owned(),
            false,
        ),
    }
}

/// Where the audit head anchor lives: beside a SQLite file (`<file>.audit-head`), or in the
/// state directory (`audit-head`) for PostgreSQL, out of reach of the database's writers.
pub fn audit_anchor(state_dir: &Path, location: &str, postgres: bool) -> PathBuf {
    if postgres {
        state_dir.join("audit-head")
    } else {
        PathBuf::from(format!("{location}.audit-head"))
    }
}
