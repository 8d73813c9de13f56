//! The rmqtt hook handler that enforces identity and least privilege: `ClientAuthenticate`
//! (certificate CN = client id, the server's [`Authorizer`], last-will topic), and the
//! `ClientSubscribeCheckAcl` / `MessagePublishCheckAcl` checks against the session's
//! [`TopicPolicy`]. Every hook it registers is always answered: rmqtt allows a publish that no
//! handler answers.
//!
//! ```text
//!  TLS (rustls in rmqtt-net, the gate's verifier): chain → client CA bundle, TLS 1.2/1.3 AEAD
//!   │  CertInfo {CN, subject, O}; gate: this connection's certificate {SHA-256, issuer, serial}
//!  ClientAuthenticate ── CN valid? client id == CN? username == CN? ──▶ Authorizer (server)
//!   │                     policy confined to dev/<id>/? last-will topic allowed?
//!   │  refused: aggregated audit naming the certificate; no other session is touched
//!   │  sessions[client id] = (remote addr, identity, policy)
//!  Subscribe / Publish ACL ── TopicPolicy::may_subscribe / may_publish ──▶ events channel
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::session::Session;
use rmqtt::types::{
    AuthResult, ClientId, ConnectInfo, Id, LastWill, Publish, PublishAclResult, Subscribe,
    SubscribeAclResult,
};
use tokio::sync::mpsc;

use crate::auth::{AuditSink, Authorizer, Decision, PeerCert};
use crate::gate::{Gate, VerifiedCert};
use crate::refusals::RefusalLog;
use crate::topic::{Identity, TopicPolicy};

/// A message a device published and the broker accepted, delivered to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceMessage {
    /// The publishing device (its certificate CN).
    pub device_id: String,
    /// The topic it published to (inside its own `dev/<id>/` namespace).
    pub topic: String,
    /// The payload, as received.
    pub payload: Bytes,
    /// QoS of the publish (0, 1 or 2).
    pub qos: u8,
}

/// Audit action names.
pub(crate) const ACTION_CONNECT: &str = "mqtt.connect";
pub(crate) const ACTION_PUBLISH: &str = "mqtt.publish";
pub(crate) const ACTION_SUBSCRIBE: &str = "mqtt.subscribe";
pub(crate) const ACTION_KICK: &str = "mqtt.kick";

/// What the broker remembers about one authenticated connection.
struct SessionAuth {
    remote: Option<SocketAddr>,
    identity: Identity,
    policy: Arc<TopicPolicy>,
}

/// State shared by the hook handler and the [`crate::BrokerHandle`].
pub(crate) struct Shared {
    pub(crate) authorizer: Arc<dyn Authorizer>,
    pub(crate) audit: Arc<dyn AuditSink>,
    sessions: RwLock<HashMap<String, SessionAuth>>,
    events: Mutex<Vec<mpsc::Sender<DeviceMessage>>>,
    pub(crate) event_capacity: usize,
    pub(crate) dropped_events: AtomicU64,
    disconnect_on_refused_publish: bool,
    /// The listener's admission control: the certificate each connection verified.
    pub(crate) gate: Arc<Gate>,
    /// Connection refusals, aggregated per source, certificate and reason.
    pub(crate) refusals: Arc<RefusalLog>,
    /// The broker's context, set once started and taken back at shutdown (the hook manager inside
    /// it holds these hooks: keeping it here unconditionally would be a reference cycle).
    pub(crate) scx: RwLock<Option<ServerContext>>,
}

impl Shared {
    pub(crate) fn new(
        authorizer: Arc<dyn Authorizer>,
        audit: Arc<dyn AuditSink>,
        event_capacity: usize,
        disconnect_on_refused_publish: bool,
        gate: Arc<Gate>,
        refusals: Arc<RefusalLog>,
    ) -> Self {
        Self {
            authorizer,
            audit,
            sessions: RwLock::new(HashMap::new()),
            events: Mutex::new(Vec::new()),
            event_capacity,
            dropped_events: AtomicU64::new(0),
            disconnect_on_refused_publish,
            gate,
            refusals,
            scx: RwLock::new(None),
        }
    }

    /// Adds a receiver of device messages.
    pub(crate) fn subscribe_events(&self) -> mpsc::Receiver<DeviceMessage> {
        let (tx, rx) = mpsc::channel(self.event_capacity.max(1));
        lock_mutex(&self.events).push(tx);
        rx
    }

    /// Forgets the authorization of `client_id`, whichever connection holds it: its ACL checks
    /// fail closed from now on.
    pub(crate) fn forget(&self, client_id: &str) {
        write_lock(&self.sessions).remove(client_id);
    }

    fn policy_of(&self, session: &Session) -> Option<(Identity, Arc<TopicPolicy>)> {
        let sessions = read_lock(&self.sessions);
        let entry = sessions.get(session.id.client_id.as_ref() as &str)?;
        // The entry must belong to this very connection (same remote address): a stale entry of
        // an older connection never authorizes a newer one and vice versa.
        if entry.remote != session.id.remote_addr {
            return None;
        }
        Some((entry.identity.clone(), entry.policy.clone()))
    }

    fn emit(&self, msg: DeviceMessage) {
        let mut senders = lock_mutex(&self.events);
        senders.retain(|tx| !tx.is_closed());
        for tx in senders.iter() {
            if tx.try_send(msg.clone()).is_err() {
                // Never block the broker on a slow consumer: count and drop.
                self.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn record(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str) {
        if allowed {
            log::info!("{action} {actor} -> {target}: allowed ({reason})");
        } else {
            log::warn!("{action} {actor} -> {target}: refused ({reason})");
        }
        self.audit.record(actor, action, target, allowed, reason);
    }
}

/// The handler registered for every hook type the broker enforces.
#[derive(Clone)]
pub(crate) struct CastellanHooks {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl Handler for CastellanHooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(ci) => {
                let result = self.authenticate(ci).await;
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, sub) => (
                false,
                Some(HookResult::SubscribeAclResult(
                    self.check_subscribe(session, sub),
                )),
            ),
            Parameter::MessagePublishCheckAcl(session, publish) => (
                false,
                Some(HookResult::PublishAclResult(
                    self.check_publish(session, publish),
                )),
            ),
            Parameter::SessionTerminated(session, _) => {
                let mut sessions = write_lock(&self.shared.sessions);
                let key: &str = session.id.client_id.as_ref();
                if sessions
                    .get(key)
                    .is_some_and(|e| e.remote == session.id.remote_addr)
                {
                    sessions.remove(key);
                }
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}

impl CastellanHooks {
    async fn authenticate(&self, ci: &ConnectInfo) -> AuthResult {
        let client_id: String = ci.client_id().to_string();
        let remote = ci.id().remote_addr;
        // The certificate this very connection's TLS handshake verified (the gate recorded it).
        let verified = remote.and_then(|r| self.shared.gate.verified_cert(r));
        let refuse = |actor: &str, reason: &str| {
            self.refuse_connect(actor, &client_id, remote, verified.as_ref(), reason)
        };
        let Some(cert) = ci.cert() else {
            return refuse("-", "no client certificate");
        };
        let Some(cn) = cert.common_name.clone() else {
            return refuse("-", "certificate has no CN");
        };
        let identity = match Identity::from_common_name(&cn) {
            Ok(i) => i,
            Err(e) => return refuse(&cn, &e.to_string()),
        };
        if client_id != cn {
            let reason = format!("client id {client_id:?} differs from certificate CN {cn:?}");
            return refuse(&cn, &reason);
        }
        if ci.username().is_some_and(|u| u.as_ref() as &str != cn) {
            return refuse(&cn, "username differs from certificate CN");
        }
        let Some(verified) = verified.clone() else {
            return refuse(&cn, "no verified certificate recorded for this connection");
        };
        let peer = PeerCert {
            common_name: cn.clone(),
            subject: cert.subject.clone(),
            organization: cert.organization.clone(),
            serial_hex: verified.serial_hex.clone(),
            issuer: Some(verified.issuer.clone()),
            sha256: Some(verified.sha256.clone()),
            client_id: client_id.clone(),
            remote_addr: remote,
            protocol_level: ci.proto_ver(),
            der: cert.der.clone().unwrap_or_default(),
        };
        let authorizer = self.shared.authorizer.clone();
        let decision =
            match tokio::task::spawn_blocking(move || authorizer.authenticate(&peer)).await {
                Ok(d) => d,
                Err(_) => Decision::refuse("authorizer failed"),
            };
        let policy = match decision {
            // A refusal concerns this connection only: the live session of the identity it
            // claims (another connection, another certificate) is left exactly as it is.
            Decision::Refuse { reason } => return refuse(&cn, &reason),
            Decision::Allow { policy } => policy,
        };
        if let Identity::Device(id) = &identity
            && !policy.confined_to_device(id)
        {
            return refuse(&cn, "policy escapes the device namespace");
        }
        if let Some(lw) = ci.last_will() {
            let topic: &str = match &lw {
                LastWill::V3(w) => w.topic.as_ref(),
                LastWill::V5(w) => w.topic.as_ref(),
            };
            if !policy.may_publish(topic) {
                return refuse(&cn, &format!("last-will topic {topic:?} not allowed"));
            }
        }
        self.drop_session_beyond_policy(&cn, &policy).await;
        write_lock(&self.shared.sessions).insert(
            cn.clone(),
            SessionAuth {
                remote,
                identity,
                policy: Arc::new(policy),
            },
        );
        self.shared.record(
            &cn,
            ACTION_CONNECT,
            &client_id,
            true,
            &format!(
                "certificate verified, authorizer allowed; {}",
                verified.describe()
            ),
        );
        AuthResult::Allow(false, None)
    }

    /// Refuses this connection: audited through the aggregating refusal log, naming the
    /// certificate and the source; nothing else changes.
    fn refuse_connect(
        &self,
        actor: &str,
        client_id: &str,
        remote: Option<SocketAddr>,
        cert: Option<&VerifiedCert>,
        reason: &str,
    ) -> AuthResult {
        let source = remote.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |r| r.ip());
        self.shared
            .refusals
            .note_as(ACTION_CONNECT, source, cert, reason, actor, client_id);
        AuthResult::NotAuthorized
    }

    /// A persisted session (clean session = false) keeps its subscriptions across connections and
    /// rmqtt restores them without an ACL check. If any of them is outside the policy granted now
    /// (the device was quarantined while away, say), the old session is discarded with its
    /// subscriptions and queued messages before the new connection takes over.
    async fn drop_session_beyond_policy(&self, client_id: &str, policy: &TopicPolicy) {
        let Some(scx) = read_lock(&self.shared.scx).clone() else {
            return;
        };
        let id = Id::from(scx.node.id(), ClientId::from(client_id.to_owned()));
        let entry = scx.extends.shared().await.entry(id);
        let Some(old) = entry.session() else { return };
        let Ok(subs) = old.subscriptions().await else {
            return;
        };
        let outside: Vec<String> = subs
            .read()
            .await
            .keys()
            .filter(|f| !policy.may_subscribe(f))
            .map(|f| f.to_string())
            .collect();
        if outside.is_empty() {
            return;
        }
        let dropped = match entry.try_lock().await {
            Ok(mut locked) => locked.kick(true, true, true).await.is_ok(),
            Err(_) => false,
        };
        let reason = if dropped {
            "persisted subscription outside the current policy: old session discarded"
        } else {
            "persisted subscription outside the current policy: discarding the old session failed"
        };
        for filter in outside {
            self.shared
                .record(client_id, ACTION_SUBSCRIBE, &filter, false, reason);
        }
    }

    fn check_subscribe(&self, session: &Session, sub: &Subscribe) -> SubscribeAclResult {
        let actor: &str = session.id.client_id.as_ref();
        let filter: &str = sub.topic_filter.as_ref();
        match self.shared.policy_of(session) {
            Some((_, policy)) if policy.may_subscribe(filter) => {
                SubscribeAclResult::new_success(sub.opts.qos(), None)
            }
            Some(_) => {
                self.shared.record(
                    actor,
                    ACTION_SUBSCRIBE,
                    filter,
                    false,
                    "filter outside the topic policy",
                );
                SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
            }
            None => {
                self.shared.record(
                    actor,
                    ACTION_SUBSCRIBE,
                    filter,
                    false,
                    "no authorization for this session",
                );
                SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
            }
        }
    }

    fn check_publish(&self, session: &Session, publish: &Publish) -> PublishAclResult {
        let actor: &str = session.id.client_id.as_ref();
        let topic: &str = publish.topic.as_ref();
        let reason = match self.shared.policy_of(session) {
            Some((identity, policy)) if policy.may_publish(topic) => {
                if let Identity::Device(id) = identity {
                    self.shared.emit(DeviceMessage {
                        device_id: id,
                        topic: topic.to_owned(),
                        payload: publish.payload.clone(),
                        qos: publish.qos.value(),
                    });
                }
                return PublishAclResult::allow();
            }
            Some(_) => "topic outside the topic policy",
            None => "no authorization for this session",
        };
        self.shared
            .record(actor, ACTION_PUBLISH, topic, false, reason);
        PublishAclResult::rejected(
            self.shared.disconnect_on_refused_publish,
            Some(reason.into()),
        )
    }
}

fn lock_mutex<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
