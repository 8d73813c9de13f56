//! Why the fleet service could not start or stopped: one error type for the crate. Refusals of
//! devices and operators are not errors of the service: they are answered (MQTT result, HTTP
//! status) and audited.

use core::fmt;

/// Everything that can stop [`crate::Server::start`] or the service.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// A file or directory of the state directory could not be created, read or written.
    Io {
        /// What was being accessed (a path).
        what: String,
        /// The operating system's message.
        detail: String,
    },
    /// The PKI could not be opened or could not issue a certificate.
    Pki(castellan_pki::PkiError),
    /// The store could not be opened or failed.
    Store(castellan_store::StoreError),
    /// The MQTT broker could not start.
    Broker(castellan_broker::BrokerError),
    /// The HTTPS listener could not be set up.
    Tls {
        /// What failed.
        detail: String,
    },
    /// A listen address could not be bound.
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's message.
        detail: String,
    },
}

impl ServerError {
    /// An [`ServerError::Io`] naming `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
        move |e| ServerError::Io {
            what: path.display().to_string(),
            detail: e.to_string(),
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, detail } => write!(f, "{what}: {detail}"),
            ServerError::Pki(e) => write!(f, "PKI: {e}"),
            ServerError::Store(e) => write!(f, "store: {e}"),
            ServerError::Broker(e) => write!(f, "MQTT broker: {e}"),
            ServerError::Tls { detail } => write!(f, "HTTPS listener: {detail}"),
            ServerError::Bind { addr, detail } => write!(f, "cannot listen on {addr}: {detail}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<castellan_pki::PkiError> for ServerError {
    fn from(e: castellan_pki::PkiError) -> Self {
        ServerError::Pki(e)
    }
}

impl From<castellan_store::StoreError> for ServerError {
    fn from(e: castellan_store::StoreError) -> Self {
        ServerError::Store(e)
    }
}

impl From<castellan_broker::BrokerError> for ServerError {
    fn from(e: castellan_broker::BrokerError) -> Self {
        ServerError::Broker(e)
    }
}
