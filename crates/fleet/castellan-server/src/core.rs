//! The state every part of the running service shares: PKI, store, revocation set, broker
//! handle, auditor and the campaign engine's state.

use std::sync::Arc;

use castellan_broker::{BrokerError, BrokerHandle};
use castellan_pki::{Pki, RevocationReason, RevocationSet, RevokedCert};
use castellan_store::{Store, StoreError};
use tokio::sync::RwLock;

use crate::audit::Auditor;
use crate::config::{ServerConfig, StatePaths};

/// Shared by the operator API, the onboarding service and the [`crate::ServerHandle`].
pub(crate) struct Core {
    pub(crate) pki: Arc<Pki>,
    pub(crate) store: Store,
    pub(crate) revocations: RevocationSet,
    /// Set once the broker runs; taken at shutdown.
    pub(crate) broker: RwLock<Option<BrokerHandle>>,
    pub(crate) auditor: Auditor,
    pub(crate) config: ServerConfig,
    pub(crate) paths: StatePaths,
    /// The campaign engine's in-memory state.
    pub(crate) updates: crate::campaign::EngineState,
    /// Per-device signals counted for the fleet's analysis (`response`).
    pub(crate) signals: Arc<crate::response::signals::SignalCounters>,
    /// The once-only duties' leases this instance holds (`lease`).
    pub(crate) leases: crate::lease::Leases,
    /// The alert webhook's delivery queue, when one is configured.
    pub(crate) webhook: std::sync::OnceLock<crate::response::webhook::Deliveries>,
    /// Counts kept between scrapes of `GET /metrics` (`observe`).
    pub(crate) observed: crate::observe::Observed,
}

impl Core {
    /// Replace the in-memory revocation set with the store's list.
    pub(crate) async fn reload_revocations(&self) -> Result<usize, StoreError> {
        let entries: Vec<RevokedCert> = self
            .store
            .revocations()
            .await?
            .iter()
            .filter_map(|r| {
                RevokedCert::from_hex(
                    &r.serial,
                    RevocationReason::from_code(r.reason).unwrap_or(RevocationReason::Unspecified),
                    r.revoked_at,
                )
            })
            .collect();
        let n = entries.len();
        self.revocations.replace_all(entries);
        Ok(n)
    }

    /// The MQTT listener's bound address, while the broker runs.
    pub(crate) async fn mqtt_addr(&self) -> Option<std::net::SocketAddr> {
        self.broker.read().await.as_ref().map(|b| b.local_addr())
    }

    /// Whether `client_id` has a live MQTT connection.
    pub(crate) async fn is_connected(&self, client_id: &str) -> bool {
        match self.broker.read().await.as_ref() {
            Some(b) => b.is_connected(client_id).await,
            None => false,
        }
    }

    /// Whether `client_id` has a live MQTT connection subscribed to a filter matching `topic`
    /// (a message published on it now is delivered).
    pub(crate) async fn is_subscribed(&self, client_id: &str, topic: &str) -> bool {
        match self.broker.read().await.as_ref() {
            Some(b) => b.is_subscribed(client_id, topic).await,
            None => false,
        }
    }

    /// Publish from the server (QoS 1).
    pub(crate) async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), BrokerError> {
        match self.broker.read().await.as_ref() {
            Some(b) => b.publish(topic, payload, 1).await,
            None => Err(BrokerError::NotRunning),
        }
    }
}
