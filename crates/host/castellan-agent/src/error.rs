//! The one error type of the device side, with messages that name what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Why a factory, onboarding or agent step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError {
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The simulated device could not be opened, created or saved.
    Device(String),
    /// The device does not boot (the boot chain refused it).
    Boot(String),
    /// A secure-service call failed (message and PSA status).
    Service(String),
    /// The secure-services thread is gone (it stopped or panicked).
    SecureWorldGone,
    /// A certificate, key, CSR or other PKI object is malformed or does not match.
    Pki(String),
    /// TLS configuration or handshake failure.
    Tls(String),
    /// The network connection failed or was closed.
    Network(String),
    /// The MQTT peer broke the protocol, or refused the connection or a subscription.
    Mqtt(String),
    /// The fleet server answered an HTTP request with an error.
    Http {
        /// HTTP status code (0 when no answer arrived).
        status: u16,
        /// The server's reason, or the transport error.
        reason: String,
    },
    /// The server refused the device's onboarding; the reason is the server's.
    OnboardingRefused(String),
    /// No answer in time.
    Timeout(&'static str),
    /// A message from the server is not what the protocol says.
    Protocol(String),
    /// The device has no identity of the kind needed (not provisioned, not onboarded).
    NotProvisioned(String),
    /// A caller-supplied value is invalid (serial, address, option).
    InvalidInput(String),
    /// The link to a device that runs elsewhere (the QEMU device behind its bridge) failed;
    /// the cause is that link's own error.
    DeviceLink(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            AgentError::Device(m) => write!(f, "simulated device: {m}"),
            AgentError::Boot(m) => write!(f, "the device does not boot: {m}"),
            AgentError::Service(m) => write!(f, "secure services: {m}"),
            AgentError::SecureWorldGone => f.write_str("the secure services stopped"),
            AgentError::Pki(m) => write!(f, "pki: {m}"),
            AgentError::Tls(m) => write!(f, "tls: {m}"),
            AgentError::Network(m) => write!(f, "network: {m}"),
            AgentError::Mqtt(m) => write!(f, "mqtt: {m}"),
            AgentError::Http { status: 0, reason } => write!(f, "http: {reason}"),
            AgentError::Http { status, reason } => write!(f, "server answered {status}: {reason}"),
            AgentError::OnboardingRefused(r) => write!(f, "onboarding refused by the server: {r}"),
            AgentError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            AgentError::Protocol(m) => write!(f, "protocol: {m}"),
            AgentError::NotProvisioned(m) => write!(f, "not provisioned: {m}"),
            AgentError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            AgentError::DeviceLink(e) => write!(f, "device: {e}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Io { source, .. } => Some(source),
            AgentError::DeviceLink(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl AgentError {
    /// True for failures that a later retry may cure (network, TLS handshake, broker gone,
    /// timeouts); false for refusals and local faults.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AgentError::Network(_)
                | AgentError::Tls(_)
                | AgentError::Mqtt(_)
                | AgentError::Timeout(_)
                | AgentError::Http { status: 0, .. }
        )
    }
}

/// Read a file, naming it in the error.
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>, AgentError> {
    std::fs::read(path).map_err(|source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a text file, naming it in the error.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, AgentError> {
    std::fs::read_to_string(path).map_err(|source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a file (creating its directory), naming it in the error.
pub(crate) fn write(path: &std::path::Path, data: &[u8]) -> Result<(), AgentError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, data).map_err(|source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    })
}
