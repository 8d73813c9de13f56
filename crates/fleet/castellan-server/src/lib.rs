//! The Castellan fleet service (`castellan serve`): one process that composes the PKI
//! (`castellan-pki`), the registry and audit log (`castellan-store`, SQLite or PostgreSQL), the
//! embedded mutual-TLS MQTT broker (`castellan-broker`) and attestation appraisal
//! (`castellan-attest`) behind an HTTPS operator API. The wire contract with devices is
//! `docs/fleet-protocol.md`; [`protocol`] holds its message types.
//!
//! ```text
//!                 ┌──────────────────────────── castellan serve ─────────────────────────────┐
//!  operator ─HTTPS─▶ api (axum): guard(role per route) ─▶ handlers ─▶ Store ◀─┐                │
//!                 │                                          │  revoke: RevocationSet + kick  │
//!  device ──mTLS──▶ broker (rmqtt) ─▶ authz (registry, revocation) ─▶ TopicPolicy            │
//!   IDevID/LDevID │        └─ DeviceMessage ─▶ router (Topic) ─┬▶ onboarding ─▶ appraisal    │
//!                 │                                              ├▶ telemetry, status ─▶ Store │
//!                 │                                              └▶ campaign engine ─▶ appraisal│
//!                 │  every decision ─▶ Auditor ─▶ hash-chained audit log (+ anchor file)      │
//!                 └───────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Embedding (tests, `castellan demo`, the agent's tests):
//!
//! ```no_run
//! # async fn f() -> Result<(), castellan_server::ServerError> {
//! use castellan_server::{Server, ServerConfig};
//! let config = ServerConfig::new("/tmp/state").with_ephemeral_ports().with_embedded_demo_pki();
//! let server = Server::start(config).await?;
//! println!("API {} MQTT {}", server.api_url(), server.mqtt_addr());
//! let token = server.admin_token(); // admin's API token (first run)
//! let ca = &server.paths().ca_bundle; // what clients trust
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Decisions: the device id is the certificate serial/CN; an IDevID session may only onboard,
//! an LDevID session gets its device policy (or the quarantine policy); revocation is checked
//! in memory at every connection and a revoke closes the open session; operator reads are not
//! audited, every change and every refusal is (who, what, why, and a refusal's stable code:
//! [`AttestationRefusal`], [`OnboardRefusal`], [`ReportRefusal`], [`ReleaseRefusal`],
//! [`CampaignError`]). TLS-level refusals (no certificate, unknown CA, TLS < 1.2) happen inside
//! rustls before any hook and are only logged.

#![forbid(unsafe_code)]

pub mod api;
mod appraisal;
mod audit;
mod authz;
mod ca_roles;
mod campaign;
mod cert_binding;
mod cluster;
pub mod config;
mod console_evidence;
mod console_fleet;
mod core;
mod custody;
mod detection;
mod error;
mod front_door;
mod https;
mod lease;
mod names;
mod observe;
mod onboarding;
pub mod protocol;
mod release_check;
mod response;
mod router;
mod server;
mod telemetry;
mod tuf_mqtt;
pub mod tuf_online;
mod tuf_oplog;
mod tuf_published;

pub use api::{
    ApiError, PUBLIC_ROUTES, ROUTES, RoutePolicy, openapi_document, openapi_document_json,
};
pub use appraisal::Refusal as AttestationRefusal;
pub use audit::Auditor;
pub use campaign::{
    ACTION_CAMPAIGN, ACTION_DEVICE, ACTION_DOWNLOAD, ACTION_FETCH, ACTION_REPORT, CampaignError,
    ReportRefusal, SpecError,
};
pub use config::{
    DEFAULT_API_LISTEN, DEFAULT_MQTT_LISTEN, DEFAULT_STATE_DIR, FrontDoorLimits, ServerConfig,
    StatePaths,
};
pub use custody::CODE_ROOT_KEY_ONLINE;
pub use error::ServerError;
pub use onboarding::{ACTION_ONBOARD, OnboardRefusal};
pub use release_check::ReleaseRefusal;
pub use response::webhook as alert_webhook;
pub use response::{
    AlertWebhook, DecommissionError, DecommissionRequested, DecommissionStarted, ReattestError,
    ReattestStarted, WebhookError,
};
pub use server::{Server, ServerHandle};
