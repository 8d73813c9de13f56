//! The bridge's one error type, with messages that name what is wrong.

use std::fmt;
use std::path::PathBuf;

use castellan_agent::AgentError;

/// Why a bridge step failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BridgeError {
    /// A file could not be read or written.
    Io {
        /// The file (or the program that could not be started).
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// QEMU did not finish within the time allowed for one run (it was killed).
    QemuTimeout {
        /// The operator command of the run.
        command: String,
        /// The last lines the device printed.
        tail: String,
    },
    /// The device did not print what the command should make it print, or ended with an
    /// unexpected exit status.
    Device {
        /// The operator command of the run.
        command: String,
        /// What was missing or wrong.
        what: String,
        /// The last lines the device printed.
        tail: String,
    },
    /// The device refused the operation; the reason is the device's own (secure partition or
    /// bootloader text).
    Refused(String),
    /// A step of the fleet protocol failed (factory, onboarding, MQTT, TLS, HTTPS).
    Fleet(AgentError),
    /// A message from the server is not what the protocol says.
    Protocol(String),
    /// An argument or a stored file is invalid.
    InvalidInput(String),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BridgeError::QemuTimeout { command, tail } => write!(
                f,
                "QEMU did not finish `{command}` in time (killed); it printed last:\n{tail}"
            ),
            BridgeError::Device {
                command,
                what,
                tail,
            } => write!(
                f,
                "the device's `{command}` run: {what}; it printed last:\n{tail}"
            ),
            BridgeError::Refused(why) => write!(f, "the device refused: {why}"),
            BridgeError::Fleet(e) => write!(f, "{e}"),
            BridgeError::Protocol(m) => write!(f, "protocol: {m}"),
            BridgeError::InvalidInput(m) => write!(f, "invalid input: {m}"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Io { source, .. } => Some(source),
            BridgeError::Fleet(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AgentError> for BridgeError {
    fn from(e: AgentError) -> Self {
        BridgeError::Fleet(e)
    }
}

impl From<castellan_protocol::ProtocolError> for BridgeError {
    fn from(e: castellan_protocol::ProtocolError) -> Self {
        BridgeError::Protocol(e.to_string())
    }
}

impl BridgeError {
    /// True when retrying later may help (network, server, timeouts), false when the device or
    /// the configuration said no.
    pub fn is_transient(&self) -> bool {
        match self {
            BridgeError::Fleet(e) => e.is_transient(),
            BridgeError::QemuTimeout { .. } => true,
            _ => false,
        }
    }
}

/// Reads a file as text.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, BridgeError> {
    std::fs::read_to_string(path).map_err(|source| BridgeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file, creating its directory.
pub(crate) fn write(path: &std::path::Path, data: &[u8]) -> Result<(), BridgeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BridgeError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, data).map_err(|source| BridgeError::Io {
        path: path.to_path_buf(),
        source,
    })
}
