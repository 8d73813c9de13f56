//! The seams between the broker and the fleet server: the client certificate the broker saw
//! ([`PeerCert`]), the server's connect-time decision ([`Authorizer`], [`Decision`]) and the audit
//! trail of every refusal ([`AuditSink`]).

use std::net::SocketAddr;

use crate::topic::TopicPolicy;

/// What the broker knows about a connecting client after the TLS handshake verified its
/// certificate chain against the client CA bundle.
///
/// The connection gate records the leaf certificate its TLS handshake verified, so the decision
/// can bind the session to the exact certificate the registry issued ([`PeerCert::sha256`]) and
/// check its issuer, not only its CN and serial (both public, and mintable by any trusted CA);
/// rmqtt-net (patched, see `vendor/README.md`) also hands over the leaf itself
/// ([`PeerCert::der`]), so that the server can check which CA issued it and whether that CA may
/// issue the role the certificate claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    /// Subject common name: the device id, or `svc:<name>` for a service identity.
    pub common_name: String,
    /// Full subject distinguished name as printed by x509-parser (`CN=..., O=...`).
    pub subject: String,
    /// Subject organization (O), if any. The fleet PKI may use it to tell IDevIDs from LDevIDs.
    pub organization: Option<String>,
    /// Serial number in lowercase hex without leading zeros (see [`serial_hex`]).
    pub serial_hex: String,
    /// The issuer's distinguished name, as the TLS handshake of this connection verified it.
    pub issuer: Option<String>,
    /// SHA-256 of the certificate's DER, lowercase hex, as verified in this connection's TLS
    /// handshake: what binds the session to the certificate the registry issued.
    pub sha256: Option<String>,
    /// MQTT client id the client asked for (the broker already checked it equals the CN).
    pub client_id: String,
    /// Remote socket address of the connection.
    pub remote_addr: Option<SocketAddr>,
    /// MQTT protocol level: 4 for 3.1.1, 5 for MQTT 5.
    pub protocol_level: u8,
    /// The leaf certificate, DER, as the TLS handshake verified it (empty if the TLS layer did
    /// not provide it: an authorizer that needs it must refuse then).
    pub der: Vec<u8>,
}

/// Formats certificate serial bytes (big-endian, as in DER) the way [`PeerCert::serial_hex`]
/// carries them: lowercase hex, no leading zeros, `"0"` for zero.
pub fn serial_hex(serial: &[u8]) -> String {
    let mut s = String::with_capacity(serial.len() * 2);
    for b in serial {
        s.push_str(&format!("{b:02x}"));
    }
    let trimmed = s.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The server's answer for one connecting identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let it in with this topic policy.
    Allow {
        /// Topics the session may use. A device's policy must stay inside `dev/<id>/`.
        policy: TopicPolicy,
    },
    /// Refuse the connection; the reason goes to the audit log (`revoked`, `unknown device`,
    /// `decommissioned`, ...).
    Refuse {
        /// Human-readable reason.
        reason: String,
    },
}

impl Decision {
    /// Allow with `policy`.
    pub fn allow(policy: TopicPolicy) -> Self {
        Decision::Allow { policy }
    }

    /// Refuse with `reason`.
    pub fn refuse(reason: impl Into<String>) -> Self {
        Decision::Refuse {
            reason: reason.into(),
        }
    }
}

/// Decides, at every connection, whether a verified certificate may connect and with which topic
/// policy. Implemented by the fleet server (registry lookup, revocation, quarantine, lifecycle).
///
/// Called on a blocking-capable thread (`spawn_blocking`), so an implementation may query a
/// database synchronously. It is called again at every reconnection: a revoked device is refused
/// at its next connection, and [`crate::BrokerHandle::kick`] closes the open one.
pub trait Authorizer: Send + Sync + 'static {
    /// The decision for this certificate.
    fn authenticate(&self, cert: &PeerCert) -> Decision;
}

/// Receives every security decision of the broker that the audit log must hold: each refusal
/// (connect, publish, subscribe), each accepted connection and each kick.
///
/// Called inline on the broker's tasks: keep it quick (append to a channel or a buffer).
pub trait AuditSink: Send + Sync + 'static {
    /// Records one decision. `actor` is the certificate CN (or `-` when unknown), `action` one of
    /// `tls.handshake`, `mqtt.connect`, `mqtt.publish`, `mqtt.subscribe`, `mqtt.kick`, `target`
    /// the source address, client id or topic, `allowed` the outcome and `reason` why (for
    /// connection refusals: the certificate and the source, aggregated per window, see
    /// [`crate::MAX_KEYS_PER_WINDOW`]).
    fn record(&self, actor: &str, action: &str, target: &str, allowed: bool, reason: &str);
}

/// An [`AuditSink`] that drops everything (benchmarks, examples).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _actor: &str, _action: &str, _target: &str, _allowed: bool, _reason: &str) {}
}

/// An [`Authorizer`] that admits every verified certificate with the default policy of its kind
/// (device or `svc:` service). For benchmarks and examples only: it never refuses a valid
/// certificate, so it enforces no revocation.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAllVerified;

impl Authorizer for AllowAllVerified {
    fn authenticate(&self, cert: &PeerCert) -> Decision {
        match crate::topic::Identity::from_common_name(&cert.common_name) {
            Ok(crate::topic::Identity::Service(_)) => Decision::allow(TopicPolicy::service()),
            Ok(crate::topic::Identity::Device(id)) => match TopicPolicy::device(&id) {
                Ok(p) => Decision::allow(p),
                Err(e) => Decision::refuse(e.to_string()),
            },
            Err(e) => Decision::refuse(e.to_string()),
        }
    }
}
