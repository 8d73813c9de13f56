//! Admission control of the MQTT listener (through the connection gate of the patched
//! rmqtt-net, see `vendor/rmqtt-net/CASTELLAN.md`): caps per peer address and per client
//! certificate, and the certificate each connection's TLS handshake verified, for the
//! authentication hook to bind the session to it.
//!
//! ```text
//!  TCP accept ─▶ admit(remote): connections from this address < cap? ─▶ permit (until close)
//!  TLS        ─▶ per-connection rustls config ─▶ RecordingVerifier: leaf SHA-256, issuer, serial
//!                 chain verified by webpki? connections with this certificate < cap?
//!             ─▶ failure: RefusalLog (aggregated audit, see `refusals`)
//!  CONNECT    ─▶ hooks: connection(remote) → the verified certificate of this very connection
//! ```
//!
//! Every connection gets a fresh rustls configuration whose verifier knows the connection, so
//! that a refusal names its source and certificate. TLS session resumption is off: every
//! connection presents and verifies its full certificate chain.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use rmqtt::net::{ConnectionGate, ConnectionPermit};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use sha2::{Digest as _, Sha256};

use crate::error::BrokerError;
use crate::refusals::{ACTION_TLS, RefusalLog};

/// The certificate a connection's TLS handshake verified (or was refused for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCert {
    /// SHA-256 of the leaf certificate's DER, lowercase hex.
    pub sha256: String,
    /// The issuer's distinguished name (`CN=..., O=...`).
    pub issuer: String,
    /// The serial number, lowercase hex without leading zeros.
    pub serial_hex: String,
    /// The subject CN, if any.
    pub common_name: Option<String>,
}

impl VerifiedCert {
    /// Reads the fields from a DER certificate; `None` when it does not parse.
    fn from_der(der: &[u8]) -> Option<VerifiedCert> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        Some(VerifiedCert {
            sha256: hex_lower(&Sha256::digest(der)),
            issuer: cert.issuer().to_string(),
            serial_hex: crate::auth::serial_hex(cert.raw_serial()),
            common_name,
        })
    }

    /// `serial <hex> issued by <issuer> (sha256 <fingerprint>)`: how the audit log names it.
    pub fn describe(&self) -> String {
        format!(
            "certificate serial {} issued by {} (sha256 {})",
            self.serial_hex, self.issuer, self.sha256
        )
    }
}

/// Caps of the gate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub(crate) per_address: usize,
    pub(crate) per_certificate: usize,
}

/// Live connection counts and what each connection's handshake verified.
#[derive(Default)]
struct Counts {
    per_address: HashMap<IpAddr, usize>,
    per_certificate: HashMap<String, usize>,
    connections: HashMap<SocketAddr, Arc<Connection>>,
}

/// One admitted connection.
struct Connection {
    remote: SocketAddr,
    /// The leaf certificate presented in the handshake (set once, verified or not).
    cert: OnceLock<VerifiedCert>,
    /// Whether the chain verified and this connection counts against its certificate's cap.
    counted: OnceLock<String>,
}

/// The gate: shared by the listener (admission, TLS) and the hooks (lookup by address).
pub(crate) struct Gate {
    caps: Caps,
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    server_cert: Arc<dyn ResolvesServerCert>,
    counts: Mutex<Counts>,
    refusals: Arc<RefusalLog>,
}

impl Gate {
    /// A gate verifying client certificates against `client_cas` and serving `server_chain`.
    pub(crate) fn new(
        caps: Caps,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: rustls::pki_types::PrivateKeyDer<'static>,
        client_cas: Vec<CertificateDer<'static>>,
        refusals: Arc<RefusalLog>,
    ) -> Result<Arc<Gate>, BrokerError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in client_cas {
            roots
                .add(ca)
                .map_err(|e| BrokerError::Tls(format!("client CA bundle: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .map_err(|e| BrokerError::Tls(format!("client certificate verifier: {e}")))?;
        let key = rustls::sign::CertifiedKey::from_der(server_chain, server_key, &provider)
            .map_err(|e| BrokerError::Tls(format!("server certificate and key: {e}")))?;
        let gate = Arc::new(Gate {
            caps,
            provider,
            verifier,
            server_cert: Arc::new(rustls::sign::SingleCertAndKey::from(key)),
            counts: Mutex::new(Counts::default()),
            refusals,
        });
        // Building a connection's configuration must not fail later: try it once now.
        gate.tls_config_for(Arc::new(Connection {
            remote: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert: OnceLock::new(),
            counted: OnceLock::new(),
        }))?;
        Ok(gate)
    }

    /// The certificate the TLS handshake of the connection from `remote` verified.
    pub(crate) fn verified_cert(&self, remote: SocketAddr) -> Option<VerifiedCert> {
        let counts = lock(&self.counts);
        let conn = counts.connections.get(&remote)?;
        conn.counted.get()?;
        conn.cert.get().cloned()
    }

    /// Live connections from `ip` (tests, diagnostics).
    pub(crate) fn connections_from(&self, ip: IpAddr) -> usize {
        lock(&self.counts)
            .per_address
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }

    fn tls_config_for(
        self: &Arc<Self>,
        conn: Arc<Connection>,
    ) -> Result<ServerConfig, BrokerError> {
        let verifier = Arc::new(RecordingVerifier {
            gate: self.clone(),
            conn,
        });
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| BrokerError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.server_cert.clone());
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(config)
    }

    /// Counts a verified connection against its certificate's cap; false when over it.
    fn count_certificate(&self, conn: &Connection, sha256: &str) -> bool {
        let mut counts = lock(&self.counts);
        if conn.counted.get().is_some() {
            // Already counted (one handshake per connection: rustls never renegotiates).
            return true;
        }
        let n = counts.per_certificate.entry(sha256.to_owned()).or_insert(0);
        if *n >= self.caps.per_certificate {
            return false;
        }
        *n += 1;
        let _ = conn.counted.set(sha256.to_owned());
        true
    }

    fn release(&self, conn: &Arc<Connection>) {
        let mut counts = lock(&self.counts);
        let ip = conn.remote.ip();
        if let Some(n) = counts.per_address.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_address.remove(&ip);
            }
        }
        if let Some(fp) = conn.counted.get()
            && let Some(n) = counts.per_certificate.get_mut(fp)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_certificate.remove(fp);
            }
        }
        if counts
            .connections
            .get(&conn.remote)
            .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            counts.connections.remove(&conn.remote);
        }
    }
}

/// The gate as installed in the listener: admission needs an `Arc` of the gate itself.
pub(crate) struct GateRef(pub(crate) Arc<Gate>);

impl ConnectionGate for GateRef {
    fn admit(&self, remote: SocketAddr) -> Option<Box<dyn ConnectionPermit>> {
        let gate = &self.0;
        let conn = {
            let mut counts = lock(&gate.counts);
            let n = counts.per_address.entry(remote.ip()).or_insert(0);
            if *n >= gate.caps.per_address {
                None
            } else {
                *n += 1;
                let conn = Arc::new(Connection {
                    remote,
                    cert: OnceLock::new(),
                    counted: OnceLock::new(),
                });
                counts.connections.insert(remote, conn.clone());
                Some(conn)
            }
        };
        let Some(conn) = conn else {
            gate.refusals.note(
                ACTION_TLS,
                remote.ip(),
                None,
                "too many connections from this address",
            );
            return None;
        };
        Some(Box::new(Permit {
            gate: gate.clone(),
            conn,
        }))
    }
}

/// Kept by the listener for the life of one connection.
struct Permit {
    gate: Arc<Gate>,
    conn: Arc<Connection>,
}

impl ConnectionPermit for Permit {
    fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        self.gate
            .tls_config_for(self.conn.clone())
            .ok()
            .map(Arc::new)
    }

    fn tls_failed(&self, error: &rmqtt::net::Error) {
        let reason = tls_refusal_reason(error);
        self.gate.refusals.note(
            ACTION_TLS,
            self.conn.remote.ip(),
            self.conn.cert.get(),
            &reason,
        );
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(&self.conn);
    }
}

/// Delegates to webpki and records the leaf certificate of its connection; enforces the
/// per-certificate cap once the chain verified.
struct RecordingVerifier {
    gate: Arc<Gate>,
    conn: Arc<Connection>,
}

impl std::fmt::Debug for RecordingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingVerifier")
            .field("remote", &self.conn.remote)
            .finish_non_exhaustive()
    }
}

/// The rustls error that stands for "over the per-certificate cap".
const CERT_CAP_REASON: &str = "too many connections with this certificate";

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.gate.verifier.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.gate.verifier.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Some(cert) = VerifiedCert::from_der(end_entity.as_ref()) {
            let _ = self.conn.cert.set(cert);
        }
        let verified = self
            .gate
            .verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        let sha256 = hex_lower(&Sha256::digest(end_entity.as_ref()));
        if !self.gate.count_certificate(&self.conn, &sha256) {
            return Err(rustls::Error::General(CERT_CAP_REASON.into()));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.gate
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.gate
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.gate.verifier.supported_verify_schemes()
    }
}

/// A short, stable reason for a failed TLS handshake (what the audit log aggregates by).
fn tls_refusal_reason(error: &rmqtt::net::Error) -> String {
    use rustls::{CertificateError, Error as TlsError};
    let tls = error.chain().find_map(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TlsError>())
            .or_else(|| cause.downcast_ref::<TlsError>())
    });
    match tls {
        Some(TlsError::NoCertificatesPresented) => "no client certificate".into(),
        Some(TlsError::InvalidCertificate(e)) => match e {
            CertificateError::UnknownIssuer => "certificate from an unknown CA".into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".into()
            }
            CertificateError::Revoked => "certificate revoked".into(),
            CertificateError::BadSignature => "certificate signature invalid".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "certificate not for client authentication (wrong role)".into()
            }
            other => format!("certificate refused: {other:?}"),
        },
        Some(TlsError::General(msg)) if msg == CERT_CAP_REASON => CERT_CAP_REASON.into(),
        Some(TlsError::PeerIncompatible(e)) => format!("TLS version or cipher refused: {e:?}"),
        Some(other) => format!("TLS handshake failed: {other}"),
        None if error.chain().any(|c| {
            matches!(
                c.downcast_ref::<rmqtt::net::MqttError>(),
                Some(rmqtt::net::MqttError::ReadTimeout)
            )
        }) =>
        {
            "TLS handshake timed out".into()
        }
        None => "TLS handshake failed (connection closed)".into(),
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
