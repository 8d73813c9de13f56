//! Starting and stopping the whole service: state directory, PKI, store, service certificate,
//! broker, inbound router (onboarding, telemetry), campaign engine, HTTPS API, first admin token.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use castellan_broker::{Broker, BrokerConfig, RefusalLog};
use castellan_pki::{CaKind, Pki, RevocationSet};
use castellan_store::{Role, Store, StoreOptions, unix_now};
use tokio::sync::{RwLock, watch};
use tokio::task::JoinHandle;

use crate::audit::Auditor;
use crate::authz::StoreAuthorizer;
use crate::config::{ServerConfig, StatePaths};
use crate::core::Core;
use crate::response::signals::{SignalCounters, Tap};
use crate::{ServerError, api, campaign, front_door, https, router};

/// The fleet service.
#[derive(Debug)]
pub struct Server;

/// A running service: its addresses, state, and [`ServerHandle::shutdown`].
pub struct ServerHandle {
    core: Arc<Core>,
    api_addr: SocketAddr,
    mqtt_addr: SocketAddr,
    admin_token: Option<String>,
    first_run: bool,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    audit_task: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("api_addr", &self.api_addr)
            .field("mqtt_addr", &self.mqtt_addr)
            .field("state_dir", &self.core.paths.state_dir)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Start the service on the current tokio runtime (multi-threaded: the broker's
    /// authorization runs on blocking threads). Creates the state directory, the store and the
    /// first admin token on first run; opens the PKI handed over from the offline root (or
    /// creates the embedded demo PKI, [`ServerConfig::embedded_demo_pki`]) and refuses to start
    /// with the root CA's key in reach; reissues the service's TLS certificate.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let (paths, location) = StatePaths::resolve(&config);
        // Connection floods must meet the front-door caps, not the descriptor limit.
        front_door::raise_fd_limit();
        create_private_dir(&paths.state_dir)?;
        create_private_dir(paths.server_cert.parent().unwrap_or(&paths.state_dir))?;
        let store = Store::open_with(
            &location,
            StoreOptions {
                anchor_path: Some(paths.audit_anchor.clone()),
                ..StoreOptions::default()
            },
        )
        .await?;
        let pki = Arc::new(crate::custody::open_pki(&config, &paths.pki_dir, &store).await?);
        write_tls_files(&pki, &config, &paths)?;

        let (auditor, audit_task) = Auditor::start(store.clone());
        let signals = Arc::new(SignalCounters::default());
        let revocations = RevocationSet::new();
        let authorizer = Arc::new(StoreAuthorizer {
            pki: pki.clone(),
            store: store.clone(),
            revocations: revocations.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let mut broker_config = BrokerConfig::new(
            config.mqtt_listen,
            &paths.server_cert,
            &paths.server_key,
            &paths.client_ca,
            authorizer,
            Arc::new(Tap {
                auditor: auditor.clone(),
                counters: signals.clone(),
            }),
        );
        broker_config.max_handshaking = config.mqtt_max_handshaking.max(1);
        let limits = &config.front_door;
        broker_config.handshake_timeout = limits.mqtt_connect_timeout;
        broker_config.max_connections_per_address = limits.mqtt_max_connections_per_address;
        broker_config.max_connections_per_certificate = limits.mqtt_max_connections_per_certificate;
        broker_config.refusal_window = limits.refusal_window;
        let broker = Broker::start(broker_config).await?;
        let mqtt_addr = broker.local_addr();
        let events = broker.subscribe_events();
        let leases = crate::lease::Leases::new(config.instance_name.clone(), config.lease_ttl);
        let core = Arc::new(Core {
            pki,
            store,
            revocations,
            broker: RwLock::new(Some(broker)),
            auditor,
            config,
            paths,
            updates: crate::campaign::EngineState::default(),
            signals,
            leases,
            webhook: std::sync::OnceLock::new(),
            observed: crate::observe::Observed::default(),
        });
        core.reload_revocations().await?;

        let (admin_token, first_run) = first_admin(&core).await?;
        let listener = https::bind(core.config.api_listen).await?;
        let api_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: core.config.api_listen,
            source,
        })?;
        let acceptor = https::acceptor(&core.paths.server_cert, &core.paths.server_key)?;
        core.updates
            .set_api_base(match &core.config.public_api_url {
                Some(url) => url.trim_end_matches('/').to_string(),
                None => format!(
                    "https://{}:{}",
                    core.config
                        .server_names
                        .first()
                        .map_or("localhost", String::as_str),
                    api_addr.port()
                ),
            });
        let api_refusals = RefusalLog::new(
            Arc::new(core.auditor.clone()),
            core.config.front_door.refusal_window,
        );
        RefusalLog::spawn_flusher(&api_refusals);
        // Take the once-only duties this instance can have before they first run.
        crate::lease::refresh(&core).await;
        let (stop, stop_rx) = watch::channel(false);
        let (update_tx, update_rx) = tokio::sync::mpsc::channel(4096);
        let mut tasks = Vec::new();
        if let Some(hook) = core.config.alert_webhook.clone() {
            let (deliveries, task) =
                crate::response::webhook::start(hook, core.auditor.clone(), stop_rx.clone());
            let _ = core.webhook.set(deliveries);
            tasks.push(task);
        }
        tasks.extend([
            tokio::spawn(https::serve(
                listener,
                acceptor,
                api::router(core.clone())
                    .merge(castellan_console::router(
                        Arc::new(crate::console_fleet::ConsoleFleet(core.clone())),
                        core.config.console.clone(),
                    ))
                    .layer(axum::middleware::from_fn_with_state(
                        core.clone(),
                        crate::observe::observe,
                    )),
                core.config.front_door.clone(),
                api_refusals,
                stop_rx.clone(),
            )),
            tokio::spawn(router::run(core.clone(), events, update_tx)),
            tokio::spawn(campaign::run_messages(core.clone(), update_rx)),
            tokio::spawn(campaign::run(core.clone(), stop_rx.clone())),
            tokio::spawn(crate::tuf_online::resign(core.clone(), stop_rx.clone())),
            tokio::spawn(crate::response::run(core.clone(), stop_rx.clone())),
            tokio::spawn(crate::response::run_pending(core.clone(), stop_rx.clone())),
            tokio::spawn(refresh_revocations(core.clone(), stop_rx.clone())),
            tokio::spawn(crate::cluster::run(core.clone(), stop_rx.clone())),
            tokio::spawn(crate::lease::keep(core.clone(), stop_rx)),
        ]);
        core.auditor
            .append(
                "system",
                "server.start",
                &core.paths.state_dir.display().to_string(),
                true,
                &format!(
                    "instance {}, API https://{api_addr}, MQTT mqtts://{mqtt_addr}, store {}",
                    core.leases.instance(),
                    core.paths.database
                ),
            )
            .await;
        Ok(ServerHandle {
            core,
            api_addr,
            mqtt_addr,
            admin_token,
            first_run,
            stop,
            tasks,
            audit_task: Some(audit_task),
        })
    }
}

impl ServerHandle {
    /// The HTTPS API's bound address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The API's base URL (`https://127.0.0.1:8443`).
    pub fn api_url(&self) -> String {
        format!("https://{}", self.api_addr)
    }

    /// The MQTT (mutual TLS) listener's bound address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The first admin's API token, when `<state dir>/admin.token` exists.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Whether this start created the state (CAs, store, first admin).
    pub fn first_run(&self) -> bool {
        self.first_run
    }

    /// Where the state lives (PKI, store, TLS files, CA bundle, admin token).
    pub fn paths(&self) -> &StatePaths {
        &self.core.paths
    }

    /// The PKI (to issue certificates in tools and tests).
    pub fn pki(&self) -> &Pki {
        &self.core.pki
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// Whether `device_id` (or `svc:<name>`) has a live MQTT connection.
    pub async fn is_connected(&self, device_id: &str) -> bool {
        self.core.is_connected(device_id).await
    }

    /// Wait until every broker decision recorded so far is in the audit log.
    pub async fn flush_audit(&self) {
        self.core.auditor.flush().await;
    }

    /// Stop: close the API and every MQTT session, write the last audit records, release the
    /// store.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let broker = self.core.broker.write().await.take();
        if let Some(b) = broker {
            b.shutdown().await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        // Given up, so another instance (or this one restarted) takes them at once.
        crate::lease::release_all(&self.core).await;
        // Its devices reconnect elsewhere: nothing is to be queued for this instance any more.
        if let Err(e) = self
            .core
            .store
            .clear_instance_presence(self.core.leases.instance())
            .await
        {
            log::warn!("presence: cannot clear at stop: {e}");
        }
        self.core
            .auditor
            .append(
                "system",
                "server.stop",
                &self.core.paths.state_dir.display().to_string(),
                true,
                "shutdown",
            )
            .await;
        self.core.auditor.flush().await;
        if let Some(t) = self.audit_task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl ServerHandle {
    /// This instance's name among the instances on one database (the holder of its leases).
    pub fn instance_name(&self) -> &str {
        self.core.leases.instance()
    }

    /// Stop at once, as a process killed with SIGKILL would: the tasks end and the listeners
    /// close, nothing is flushed, and the leases are not given up (another instance takes them
    /// over only once they expire). For failover tests.
    pub async fn abandon(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let broker = self.core.broker.write().await.take();
        if let Some(b) = broker {
            b.shutdown().await;
        }
        if let Some(t) = self.audit_task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Root, manufacturer, operational and service CA certificates, PEM: what a client of the
/// service (device, operator tool) needs to trust.
pub(crate) fn ca_bundle_pem(pki: &Pki) -> String {
    let mut s = pki.root_pem();
    for kind in [CaKind::Manufacturer, CaKind::Operational, CaKind::Service] {
        s.push_str(&pki.ca_pem(kind));
    }
    s
}

fn write_tls_files(
    pki: &Pki,
    config: &ServerConfig,
    paths: &StatePaths,
) -> Result<(), ServerError> {
    let names: Vec<&str> = config.server_names.iter().map(String::as_str).collect();
    let creds = pki.issue_server_cert(&names)?;
    let mut chain = creds.certificate.pem.clone();
    chain.push_str(&creds.chain_pem);
    write_file(&paths.server_cert, chain.as_bytes(), 0o644)?;
    write_file(&paths.server_key, creds.key_pem.as_bytes(), 0o600)?;
    write_file(
        &paths.client_ca,
        pki.client_ca_bundle_pem().as_bytes(),
        0o644,
    )?;
    write_file(&paths.ca_bundle, ca_bundle_pem(pki).as_bytes(), 0o644)?;
    Ok(())
}

/// On first start (no operator yet), create `admin` and write its token to `admin.token`
/// (0600). Later starts read the file if it is still there.
async fn first_admin(core: &Core) -> Result<(Option<String>, bool), ServerError> {
    let path = &core.paths.admin_token_file;
    if core.store.list_operators().await?.is_empty() {
        let now = unix_now();
        core.store
            .create_operator("admin", Role::Admin, now)
            .await?;
        let token = core
            .store
            .issue_token("admin", "first-run", now, None)
            .await?;
        write_file(path, format!("{token}\n").as_bytes(), 0o600)?;
        core.auditor
            .append(
                "system",
                "operator.create",
                "admin",
                true,
                &format!("first run: admin token written to {}", path.display()),
            )
            .await;
        return Ok((Some(token), true));
    }
    let token = std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    Ok((token, false))
}

/// Every `revocation_refresh`: reload the revocation set (revocations by other instances) and
/// delete expired onboarding nonces.
async fn refresh_revocations(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(core.config.revocation_refresh);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = core.reload_revocations().await {
                    log::warn!("revocation refresh: {e}");
                }
                // Unanswered challenges would otherwise pile up in the store.
                if let Err(e) = core.store.purge_expired_nonces(unix_now()).await {
                    log::warn!("nonce purge: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir).map_err(ServerError::io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(ServerError::io(dir))?;
    }
    Ok(())
}

/// Write a file atomically with `mode` (set before the content is written).
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), ServerError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(ServerError::io(&tmp))?;
    f.write_all(data).map_err(ServerError::io(&tmp))?;
    f.sync_all().map_err(ServerError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(ServerError::io(path))?;
    Ok(())
}
