//! Castellan patch: admission control and per-connection TLS configuration for a listener.
//!
//! A [`ConnectionGate`] installed with [`crate::Builder::gate`] sees every accepted TCP
//! connection before anything is read from it: it may close it at once (caps per peer address),
//! choose the rustls configuration of its handshake (so that a certificate verifier knows which
//! connection it verifies), and hears of a failed handshake. The [`ConnectionPermit`] it returns
//! lives as long as the connection and is dropped when it closes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Admission control of a listener (see the module documentation).
pub trait ConnectionGate: Send + Sync + 'static {
    /// A TCP connection from `remote` was accepted. `None` closes it at once; otherwise the
    /// permit is kept until the connection closes.
    fn admit(&self, remote: SocketAddr) -> Option<Box<dyn ConnectionPermit>>;
}

/// What a [`ConnectionGate`] keeps for one admitted connection.
pub trait ConnectionPermit: Send + Sync + 'static {
    /// The rustls configuration of this connection's TLS handshake (`None`: the listener's).
    #[cfg(feature = "tls")]
    fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>>;
    /// The TLS handshake of this connection failed or timed out.
    fn tls_failed(&self, error: &crate::Error);
}

/// A shared [`ConnectionGate`], as the [`crate::Builder`] holds it.
#[derive(Clone)]
pub struct Gate(pub Arc<dyn ConnectionGate>);

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate")
    }
}
