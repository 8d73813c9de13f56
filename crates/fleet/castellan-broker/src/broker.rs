//! Starting the embedded broker (one mutual-TLS listener) and controlling it from the server:
//! kick a session, publish a command, receive device messages, shut down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rmqtt::codec::types::QoS;
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::session::SessionState;
use rmqtt::types::{ClientId, CodecPublish, From, Id, Publish};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::{AuditSink, Authorizer};
use crate::error::BrokerError;
use crate::gate::{Caps, Gate, GateRef};
use crate::hooks::{ACTION_KICK, CastellanHooks, DeviceMessage, Shared};
use crate::refusals::RefusalLog;
use crate::topic::{MAX_ID_LEN, MAX_LEVELS, SERVICE_PREFIX, filter_matches, validate_topic_name};

/// Client id the server uses as the sender of its own publishes.
const SERVER_SENDER: &str = "castellan-server";

/// How to run the broker.
pub struct BrokerConfig {
    /// Address of the TLS listener (port 0: the system picks one, see
    /// [`BrokerHandle::local_addr`]). It is the only listener: there is no plain-TCP port.
    pub listen: SocketAddr,
    /// PEM file with the server certificate chain (leaf first).
    pub server_cert_pem: PathBuf,
    /// PEM file with the server private key (PKCS#8, SEC1 or PKCS#1).
    pub server_key_pem: PathBuf,
    /// PEM bundle of the CAs whose certificates a client may present: the operational CA (LDevIDs)
    /// and/or the manufacturer CA (IDevIDs, for onboarding) and the CA of service identities.
    pub client_ca_pem: PathBuf,
    /// The server's connect-time decision for each verified certificate.
    pub authorizer: Arc<dyn Authorizer>,
    /// Where every refusal (and each accepted connection and kick) is recorded.
    pub audit: Arc<dyn AuditSink>,
    /// Time allowed for the TLS handshake, again for the first MQTT packet, and again for the
    /// whole CONNECT (default 10 s): a connection that never sends CONNECT is closed after it.
    pub handshake_timeout: Duration,
    /// Most live connections from one peer address, handshaking or established (default 1,000;
    /// raise it when many devices share a NAT address). Beyond it a connection is closed at
    /// once, before any TLS work.
    pub max_connections_per_address: usize,
    /// Most live connections presenting the same client certificate (default 4: a device that
    /// reconnects before its old connection times out needs more than one).
    pub max_connections_per_certificate: usize,
    /// Window of the refusal audit aggregation: the first refusal per (source, certificate,
    /// reason) is recorded at once, repeats are counted into one entry per window (default 60 s).
    pub refusal_window: Duration,
    /// Most connections allowed in the handshake phase at once (default 1,000).
    pub max_handshaking: usize,
    /// Most open connections (default 100,000).
    pub max_connections: usize,
    /// Largest MQTT packet accepted, in bytes (default 256 KiB).
    pub max_packet_size: u32,
    /// Close the connection of a client that publishes outside its policy (default true, as AWS
    /// IoT does); when false the publish is only dropped (MQTT 5 clients get NotAuthorized).
    pub disconnect_on_refused_publish: bool,
    /// Capacity of each device-message channel; when full, messages are dropped and counted
    /// ([`BrokerHandle::dropped_events`]) rather than slowing the broker (default 4,096).
    pub event_capacity: usize,
}

impl BrokerConfig {
    /// A configuration with the defaults above.
    pub fn new(
        listen: SocketAddr,
        server_cert_pem: impl Into<PathBuf>,
        server_key_pem: impl Into<PathBuf>,
        client_ca_pem: impl Into<PathBuf>,
        authorizer: Arc<dyn Authorizer>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            listen,
            server_cert_pem: server_cert_pem.into(),
            server_key_pem: server_key_pem.into(),
            client_ca_pem: client_ca_pem.into(),
            authorizer,
            audit,
            handshake_timeout: Duration::from_secs(10),
            max_connections_per_address: 1_000,
            max_connections_per_certificate: 4,
            refusal_window: Duration::from_secs(60),
            max_handshaking: 1_000,
            max_connections: 100_000,
            max_packet_size: 256 * 1024,
            disconnect_on_refused_publish: true,
            event_capacity: 4_096,
        }
    }
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("listen", &self.listen)
            .field("server_cert_pem", &self.server_cert_pem)
            .field("server_key_pem", &self.server_key_pem)
            .field("client_ca_pem", &self.client_ca_pem)
            .field("handshake_timeout", &self.handshake_timeout)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field(
                "max_connections_per_certificate",
                &self.max_connections_per_certificate,
            )
            .field("refusal_window", &self.refusal_window)
            .field("max_handshaking", &self.max_handshaking)
            .field("max_connections", &self.max_connections)
            .field("max_packet_size", &self.max_packet_size)
            .field(
                "disconnect_on_refused_publish",
                &self.disconnect_on_refused_publish,
            )
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

/// The embedded broker.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Binds the TLS listener and starts serving on the current tokio runtime.
    ///
    /// TLS is set up by rmqtt-net with rustls: protocol versions TLS 1.3 and TLS 1.2 only (TLS 1.0
    /// and 1.1 are refused by construction: rustls implements neither), AEAD cipher suites only,
    /// client certificate required and verified against `client_ca_pem`. MQTT 3.1.1 and 5.
    pub async fn start(config: BrokerConfig) -> Result<BrokerHandle, BrokerError> {
        check_pem(&config.server_cert_pem, "CERTIFICATE")?;
        check_pem(&config.server_key_pem, "PRIVATE KEY")?;
        check_pem(&config.client_ca_pem, "CERTIFICATE")?;

        // The busy check refuses connections when the machine's load average is high, whatever
        // loads it: an embedded broker sheds load with `max_handshaking` and `max_connections`.
        let scx = ServerContext::new().busy_check_enable(false).build().await;
        let refusals = RefusalLog::new(config.audit.clone(), config.refusal_window);
        RefusalLog::spawn_flusher(&refusals);
        let gate = Gate::new(
            Caps {
                per_address: config.max_connections_per_address.max(1),
                per_certificate: config.max_connections_per_certificate.max(1),
            },
            read_certs(&config.server_cert_pem)?,
            read_key(&config.server_key_pem)?,
            read_certs(&config.client_ca_pem)?,
            refusals.clone(),
        )?;
        let shared = Arc::new(Shared::new(
            config.authorizer.clone(),
            config.audit.clone(),
            config.event_capacity,
            config.disconnect_on_refused_publish,
            gate.clone(),
            refusals,
        ));
        *shared.scx.write().unwrap_or_else(|p| p.into_inner()) = Some(scx.clone());
        let hooks = CastellanHooks {
            shared: shared.clone(),
        };
        let register = scx.extends.hook_mgr().register();
        for typ in [
            Type::ClientAuthenticate,
            Type::ClientSubscribeCheckAcl,
            Type::MessagePublishCheckAcl,
            Type::SessionTerminated,
        ] {
            register.add(typ, Box::new(hooks.clone())).await;
        }
        // Handlers are disabled until the register is started.
        register.start().await;

        let listener = Builder::new()
            .name("castellan/mqtts")
            .laddr(config.listen)
            .reuseaddr(Some(true))
            .nodelay(true)
            .allow_anonymous(false)
            .tls_cross_certificate(true)
            .tls_cert(Some(path_str(&config.server_cert_pem)?))
            .tls_key(Some(path_str(&config.server_key_pem)?))
            .tls_client_ca_certs(Some(path_str(&config.client_ca_pem)?))
            .cert_cn_as_username(true)
            .collect_cert_info(true)
            .handshake_timeout(config.handshake_timeout)
            .max_handshaking_limit(config.max_handshaking)
            .max_connections(config.max_connections)
            .max_packet_size(config.max_packet_size)
            .max_topic_levels(MAX_LEVELS)
            .max_clientid_len(MAX_ID_LEN + SERVICE_PREFIX.len())
            .gate(Arc::new(GateRef(gate)))
            .bind()
            .map_err(|e| BrokerError::Bind(format!("{}: {e}", config.listen)))?
            .tls()
            .map_err(|e| BrokerError::Tls(format!("{e:#}")))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| BrokerError::Bind(e.to_string()))?;

        let server = MqttServer::new(scx.clone())
            .listener_by_id(listener, 1)
            .build();
        let task = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                log::error!("MQTT broker stopped: {e}");
            }
        });
        log::info!("castellan broker listening on {local_addr} (mutual TLS)");
        Ok(BrokerHandle {
            scx,
            shared,
            local_addr,
            task,
        })
    }
}

/// Control of a running broker. Dropping it stops accepting connections (like
/// [`BrokerHandle::shutdown`] without closing the open sessions).
pub struct BrokerHandle {
    scx: ServerContext,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BrokerHandle {
    /// The address the TLS listener is bound to (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes the session of `client_id` (a device id or `svc:<name>`) now, live or persisted,
    /// with its subscriptions, and forgets its authorization. The client is disconnected within a
    /// second; when it reconnects the [`Authorizer`] decides again (refuses a revoked device,
    /// gives a quarantined one the quarantine policy). Returns whether a session existed.
    pub async fn kick(&self, client_id: &str) -> Result<bool, BrokerError> {
        self.ensure_running()?;
        self.shared.forget(client_id);
        let id = Id::from(self.scx.node.id(), ClientId::from(client_id.to_owned()));
        let entry = self.scx.extends.shared().await.entry(id);
        let mut entry = entry
            .try_lock()
            .await
            .map_err(|e| BrokerError::Kick(e.to_string()))?;
        let existed = entry.exist();
        entry
            .kick(true, true, true)
            .await
            .map_err(|e| BrokerError::Kick(e.to_string()))?;
        self.shared.record_kick(client_id, existed);
        Ok(existed)
    }

    /// Whether `client_id` currently has a live connection.
    pub async fn is_connected(&self, client_id: &str) -> bool {
        let id = Id::from(self.scx.node.id(), ClientId::from(client_id.to_owned()));
        self.scx
            .extends
            .shared()
            .await
            .entry(id)
            .is_connected()
            .await
    }

    /// The client ids with a live connection now (devices and `svc:` identities): what the
    /// server records as this broker's presence when several instances share a database.
    pub async fn connected_clients(&self) -> Vec<String> {
        let ids: Vec<Id> = self
            .scx
            .extends
            .shared()
            .await
            .iter()
            .map(|e| e.id())
            .collect();
        let mut live = Vec::with_capacity(ids.len());
        for id in ids {
            let entry = self.scx.extends.shared().await.entry(id.clone());
            if entry.is_connected().await {
                live.push(id.client_id.to_string());
            }
        }
        live
    }

    /// Whether `client_id` has a live connection that is subscribed to a filter matching
    /// `topic`: a message published on `topic` now reaches it. (A connection alone is not
    /// enough: between CONNACK and SUBACK, or in a device's onboarding session, a message on
    /// `topic` would be lost.)
    pub async fn is_subscribed(&self, client_id: &str, topic: &str) -> bool {
        let id = Id::from(self.scx.node.id(), ClientId::from(client_id.to_owned()));
        let entry = self.scx.extends.shared().await.entry(id);
        if !entry.is_connected().await {
            return false;
        }
        let Some(session) = entry.session() else {
            return false;
        };
        let Ok(subs) = session.subscriptions().await else {
            return false;
        };
        subs.read()
            .await
            .keys()
            .any(|filter| filter_matches(filter, topic))
    }

    /// Live TCP connections from `ip` (handshaking or established), as the per-address cap
    /// counts them.
    pub fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        self.shared.gate.connections_from(ip)
    }

    /// Writes the summaries of the refusals counted in the current aggregation window now
    /// (otherwise written when the window closes; see [`BrokerConfig::refusal_window`]).
    pub fn flush_refusals(&self) {
        self.shared.refusals.flush();
    }

    /// Number of sessions the broker holds (live or persisted).
    pub fn session_count(&self) -> usize {
        self.scx.sessions.count().max(0) as usize
    }

    /// Publishes from the server (commands, downlink messages) to every matching subscriber.
    /// `topic` must be a concrete, valid topic (no wildcards, no `$`); `qos` 0, 1 or 2.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: u8,
    ) -> Result<(), BrokerError> {
        self.ensure_running()?;
        validate_topic_name(topic)?;
        let qos =
            QoS::try_from(qos).map_err(|_| BrokerError::Publish(format!("invalid QoS {qos}")))?;
        let codec = CodecPublish {
            dup: false,
            retain: false,
            qos,
            topic: topic.to_owned().into(),
            packet_id: None,
            payload: payload.into(),
            properties: Some(Default::default()),
        };
        let from = From::from_system(Id::from(self.scx.node.id(), ClientId::from(SERVER_SENDER)));
        SessionState::forwards(&self.scx, from, Publish::from(codec), false, None)
            .await
            .map_err(|e| BrokerError::Publish(e.to_string()))
    }

    /// A new channel of the messages devices publish (accepted by their policy). Each call makes
    /// an independent receiver; a full channel drops messages instead of slowing the broker.
    pub fn subscribe_events(&self) -> mpsc::Receiver<DeviceMessage> {
        self.shared.subscribe_events()
    }

    /// How many device messages were dropped because a receiver was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// Stops accepting connections and closes every session.
    pub async fn shutdown(self) {
        self.task.abort();
        let ids: Vec<Id> = self
            .scx
            .extends
            .shared()
            .await
            .iter()
            .map(|e| e.id())
            .collect();
        for id in ids {
            if let Ok(mut entry) = self.scx.extends.shared().await.entry(id).try_lock().await {
                let _ = entry.kick(true, true, true).await;
            }
        }
    }

    fn ensure_running(&self) -> Result<(), BrokerError> {
        if self.task.is_finished() {
            Err(BrokerError::NotRunning)
        } else {
            Ok(())
        }
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        self.task.abort();
        self.shared
            .scx
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Shared {
    fn record_kick(&self, client_id: &str, existed: bool) {
        let reason = if existed {
            "session closed by the server"
        } else {
            "no session to close"
        };
        self.audit
            .record("server", ACTION_KICK, client_id, true, reason);
    }
}

fn path_str(p: &Path) -> Result<String, BrokerError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| BrokerError::Config(format!("path is not UTF-8: {}", p.display())))
}

fn check_pem(p: &Path, label: &str) -> Result<(), BrokerError> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| BrokerError::Config(format!("{}: {e}", p.display())))?;
    if text.contains("-----BEGIN ") && text.contains(label) {
        Ok(())
    } else {
        Err(BrokerError::Config(format!(
            "{}: no PEM {label} block",
            p.display()
        )))
    }
}

fn read_certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, BrokerError> {
    CertificateDer::pem_file_iter(p)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| BrokerError::Config(format!("{}: {e}", p.display())))
}

fn read_key(p: &Path) -> Result<PrivateKeyDer<'static>, BrokerError> {
    PrivateKeyDer::from_pem_file(p)
        .map_err(|e| BrokerError::Config(format!("{}: {e}", p.display())))
}
