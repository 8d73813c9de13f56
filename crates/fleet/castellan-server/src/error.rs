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
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The PKI could not be opened or could not issue a certificate.
    Pki(castellan_pki::PkiError),
    /// The root CA's private key is in reach of the service, which is not running the
    /// embedded demo: it refuses to start.
    RootKeyOnline {
        /// Where the key is.
        location: String,
    },
    /// The state directory holds no PKI, and the service is not running the embedded demo.
    NoPki {
        /// The PKI directory looked in.
        dir: std::path::PathBuf,
    },
    /// The store could not be opened or failed.
    Store(castellan_store::StoreError),
    /// The MQTT broker could not start.
    Broker(castellan_broker::BrokerError),
    /// The HTTPS listener's certificate or key file could not be read.
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What the PEM reader said.
        source: rustls_pki_types::pem::Error,
    },
    /// The HTTPS listener's TLS configuration was refused.
    Tls(rustls::Error),
    /// A start-up task (on a blocking thread) panicked or was cancelled.
    Task {
        /// Which task (`"PKI"`).
        what: &'static str,
        /// Why it did not finish.
        source: tokio::task::JoinError,
    },
    /// A listen address could not be bound.
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ServerError {
    /// An [`ServerError::Io`] naming `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
        move |source| ServerError::Io {
            what: path.display().to_string(),
            source,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
            ServerError::Pki(e) => write!(f, "PKI: {e}"),
            ServerError::RootKeyOnline { location } => write!(
                f,
                "refusing to start: the root CA's private key is in reach of the online service \
                 ({location}), so a compromise of the service would yield the root of the whole \
                 PKI. Keep the root offline: `castellan pki init --offline OFFLINE` on a \
                 machine the service never sees, then `castellan pki handover --offline OFFLINE \
                 --state-dir DIR` into a fresh state directory. For a local demo only, run \
                 `castellan demo` or `castellan serve --embedded-demo-pki`"
            ),
            ServerError::NoPki { dir } => write!(
                f,
                "no PKI in {}: create the hierarchy on a machine the service never sees \
                 (`castellan pki init --offline OFFLINE`), then hand the service what it uses \
                 online (`castellan pki handover --offline OFFLINE --state-dir DIR`); for a local \
                 demo only, `castellan serve --embedded-demo-pki`",
                dir.display()
            ),
            ServerError::Store(e) => write!(f, "store: {e}"),
            ServerError::Broker(e) => write!(f, "MQTT broker: {e}"),
            ServerError::TlsFile { path, source } => {
                write!(f, "HTTPS listener: {}: {source}", path.display())
            }
            ServerError::Tls(e) => write!(f, "HTTPS listener: {e}"),
            ServerError::Task { what, source } => write!(f, "{what} task: {source}"),
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Io { source, .. } | ServerError::Bind { source, .. } => Some(source),
            ServerError::TlsFile { source, .. } => Some(source),
            ServerError::Tls(e) => Some(e),
            ServerError::Task { source, .. } => Some(source),
            ServerError::Pki(e) => Some(e),
            ServerError::RootKeyOnline { .. } | ServerError::NoPki { .. } => None,
            ServerError::Store(e) => Some(e),
            ServerError::Broker(e) => Some(e),
        }
    }
}

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
