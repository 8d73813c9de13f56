//! Castellan's device side for the fleet: the factory station that gives a device its identity,
//! and the agent that onboards it with an attestation token and keeps it connected. It
//! implements the device half of `docs/fleet-protocol.md` exactly.
//!
//! ```text
//!  FirmwareKit / build_device        a simulated MCU built from scratch (root key, images)
//!        │
//!  SecureWorld (one thread)          boot chain + secure services; keys never leave it
//!        │ sign_hash · attest_token · provision_identity_key · its
//!        ├── factory::provision_sim_device ── HTTPS (FleetApi) ──▶ IDevID      (castellan factory)
//!        └── agent::run ── MQTT over mutual TLS (tls + mqtt) ──▶ onboarding ──▶ LDevID
//!                                                              ──▶ telemetry, status, commands
//!                                                              ──▶ updates (update: offer, chunks
//!                                                                  or HTTPS ranges → update_*)
//! ```
//!
//! Private keys: TLS client authentication goes through a rustls signer that calls the crypto
//! service ([`tls::client_config`] with a [`identity::ServiceKey`]), so neither the IDevID key
//! nor the LDevID key is ever exported. A PEM-file backend ([`identity::PemKey`]) exists for
//! Linux-class devices and interop tests.

#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod backoff;
pub mod compromise;
pub mod decommission;
pub mod device;
mod error;
pub mod factory;
pub mod identity;
pub mod mqtt;
pub mod onboard;
pub mod reattest;
pub mod secure;
pub mod tls;
pub mod update;

pub use agent::{AgentConfig, AgentReport, Logger, connect_operational, run, stdout_logger};
pub use api::FleetApi;
pub use backoff::Backoff;
pub use device::{FirmwareKit, build_device};
pub use error::AgentError;
pub use factory::{KeyChoice, ProvisionRequest, ProvisionedDevice, provision_sim_device};
pub use identity::{DeviceKey, IdentityFiles, PemKey, ServiceKey};
pub use mqtt::Endpoint;
pub use secure::{BootInfo, Refused, SecureWorld, WorldGate};
