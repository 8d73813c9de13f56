//! Castellan's embedded MQTT broker: [rmqtt](https://crates.io/crates/rmqtt) 0.24.0 behind a single
//! mutual-TLS listener, with the device identity taken from the client certificate and per-device
//! least-privilege topics. The fleet server (`castellan serve`) starts it and talks to it through a
//! [`BrokerHandle`]. The connect benchmark against Mosquitto is `castellan-connect-bench`; the test MQTT
//! client and throwaway PKI are in `castellan-testkit`.
//!
//! ```text
//!  device (IDevID / LDevID)            castellan serve
//!     │ TLS 1.3/1.2, client cert          │ Authorizer: registry, revocation, quarantine
//!     ▼                                   ▼
//!  rustls (rmqtt-net) ─▶ hooks::ClientAuthenticate ─▶ Decision{policy} ─▶ AuditSink
//!                        hooks::Subscribe/Publish ACL ─▶ TopicPolicy ─▶ DeviceMessage channel
//!  BrokerHandle: kick(id) · publish(topic, payload, qos) · subscribe_events() · shutdown()
//!               connected_clients() (the presence the server records for other instances)
//! ```
//!
//! # Decisions
//!
//! * **Identity** is the certificate CN (`cert_cn_as_username` + `collect_cert_info`). The MQTT
//!   client id must equal the CN, so a device cannot pose as another by choosing a client id. A
//!   CN `svc:<name>` is a service/operator identity.
//! * **Authentication** is the TLS chain check (client CA bundle: the issuing CAs, not the root)
//!   and then, at every connection, the server's [`Authorizer`] (revocation is enforced there:
//!   rmqtt-net takes no CRL). The [`PeerCert`] it decides on carries the verified leaf
//!   ([`PeerCert::der`], to check which CA issued it and whether that CA may issue the role it
//!   claims) and the SHA-256 and issuer of the certificate this very connection's handshake
//!   verified (recorded by the connection gate), so the server binds the session to the exact
//!   certificate it issued. A refusal affects only the refused connection: the live session of
//!   the identity it claims is left as it is (closing a session is the server's explicit
//!   [`BrokerHandle::kick`], at revocation or quarantine).
//! * **Admission** (the `gate` module, through a small patch of rmqtt-net, see
//!   `vendor/rmqtt-net/CASTELLAN.md`): caps per peer address and per client certificate, and the
//!   handshake timeout applies to the TLS handshake, the first MQTT packet and the CONNECT, so a
//!   connection that never sends CONNECT is closed.
//! * **Authorization**: every publish and subscribe is checked against the session's
//!   [`TopicPolicy`] (see [`topic`] for the layout). A device's policy must stay inside
//!   `dev/<id>/`, and its last-will topic must be one it may publish to (rmqtt publishes wills
//!   without an ACL check). Each hook is always answered: rmqtt allows an unanswered publish.
//! * **TLS**: rmqtt-net builds its own rustls `ServerConfig` (aws-lc-rs provider,
//!   `with_safe_default_protocol_versions`): TLS 1.3 and TLS 1.2 with AEAD suites only; TLS 1.0/1.1
//!   are refused by construction (rustls implements neither). It accepts no caller-supplied config,
//!   so a TLS-1.3-only policy would need a patched rmqtt-net.
//! * **Audit**: connect, publish and subscribe refusals decided in the hooks, accepted connections
//!   and kicks go to the [`AuditSink`]. Refusals inside the TLS handshake (no certificate, unknown
//!   CA, expired certificate, over a cap, TLS < 1.2) and CONNECT refusals go through the `refusals`
//!   aggregation: the first per (source address, certificate SHA-256, reason) in a window is
//!   recorded at once, naming the certificate (serial, issuer, SHA-256) and the source; repeats
//!   become one summary entry with their count when the window closes.
//!
//! # Known exception to "one RustCrypto generation"
//!
//! rmqtt 0.24.0 pulls `rand` 0.8 (through `rust-box`/`mpsc`) and 0.9 (itself, `governor`), hence
//! `rand_core` 0.6 and 0.9 beside the workspace's 0.10, and `getrandom` 0.2/0.3/0.4. No other
//! RustCrypto crate (digest, sha2, signature, elliptic-curve, p256, pkcs8, der, spki) is pulled:
//! TLS crypto is aws-lc-rs (rustls) and ring (quinn). Only rmqtt's internals use those `rand`
//! versions; nothing in this crate does.

#![forbid(unsafe_code)]

pub mod auth;
mod broker;
pub mod error;
mod gate;
mod hooks;
mod refusals;
pub mod topic;

pub use auth::{AllowAllVerified, AuditSink, Authorizer, Decision, NoAudit, PeerCert};
pub use broker::{Broker, BrokerConfig, BrokerHandle};
pub use error::BrokerError;
pub use gate::VerifiedCert;
pub use hooks::DeviceMessage;
pub use refusals::{ACTION_TLS, MAX_KEYS_PER_WINDOW, RefusalLog};
pub use topic::{Identity, TopicPolicy};
