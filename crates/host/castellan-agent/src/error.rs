//! The one error type of the device side, with messages that name what is wrong.

use std::fmt;
use std::path::PathBuf;

use crate::secure::Refused;

/// The underlying error of an [`AgentError`], kept as an error (not as text) so that callers
/// can walk [`std::error::Error::source`] or downcast it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    Device {
        /// What was being done, or what is wrong.
        what: String,
        /// The error underneath, if any.
        cause: Option<Cause>,
    },
    /// The device does not boot (the boot chain refused it).
    Boot(castellan_boot::BootError),
    /// The secure services refused a call: the PSA status and the services' own words.
    Service(Refused),
    /// The secure-services thread is gone (it stopped or panicked).
    SecureWorldGone,
    /// A certificate, key, CSR or other PKI object is malformed or does not match.
    Pki {
        /// What was being done, or what is wrong.
        what: String,
        /// The error underneath, if any.
        cause: Option<Cause>,
    },
    /// TLS configuration or handshake failure.
    Tls {
        /// What was being done, or what is wrong.
        what: String,
        /// The error underneath, if any.
        cause: Option<Cause>,
    },
    /// The network connection failed or was closed.
    Network {
        /// What was being done (`"cannot reach broker:8883"`, `"connection lost"`).
        what: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The MQTT peer broke the protocol, or refused the connection or a subscription.
    Mqtt(MqttError),
    /// The fleet server answered an HTTP request with an error.
    Http {
        /// HTTP status code (0 when no answer arrived).
        status: u16,
        /// The server's reason, or the transport error.
        reason: String,
    },
    /// The server refused the device's onboarding; the reason is the server's.
    OnboardingRefused {
        /// The refusal's stable code (`attestation.nonce_mismatch`), when the server gave one.
        code: Option<String>,
        /// The server's reason, as in its audit log.
        reason: String,
    },
    /// No answer in time.
    Timeout(&'static str),
    /// A message from the server is not what the protocol says.
    Protocol {
        /// Which message, or what is wrong with it.
        what: String,
        /// The parse error underneath, if any.
        cause: Option<Cause>,
    },
    /// The device has no identity of the kind needed (not provisioned, not onboarded).
    NotProvisioned(String),
    /// A caller-supplied value is invalid (serial, address, option).
    InvalidInput(String),
    /// The link to a device that runs elsewhere (the QEMU device behind its bridge) failed;
    /// the cause is that link's own error.
    DeviceLink(Cause),
}

/// How the MQTT peer broke the protocol or refused the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MqttError {
    /// A packet from the server is malformed (what is wrong with it).
    Malformed(&'static str),
    /// A packet to send would exceed the protocol's size limit.
    PacketTooLarge,
    /// A string to send is longer than MQTT's 64 KiB limit.
    StringTooLong,
    /// The broker refused the connection (CONNACK return code).
    ConnectRefused(u8),
    /// The broker answered the CONNECT with another packet (its description).
    ExpectedConnAck(String),
    /// The broker refused a subscription (the topic filter).
    SubscribeRefused(String),
}

impl fmt::Display for MqttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MqttError::Malformed(what) => write!(f, "malformed packet from the server: {what}"),
            MqttError::PacketTooLarge => f.write_str("packet too large"),
            MqttError::StringTooLong => f.write_str("string longer than 64 KiB"),
            MqttError::ConnectRefused(code) => write!(
                f,
                "the broker refused the connection (CONNACK return code {code}: {})",
                crate::mqtt::connack_reason(*code)
            ),
            MqttError::ExpectedConnAck(got) => write!(f, "expected CONNACK, got {got}"),
            MqttError::SubscribeRefused(filter) => {
                write!(f, "the broker refused the subscription to {filter}")
            }
        }
    }
}

impl std::error::Error for MqttError {}

/// `what: cause`, or `what` alone.
fn with_cause(f: &mut fmt::Formatter<'_>, what: &str, cause: &Option<Cause>) -> fmt::Result {
    match cause {
        Some(c) => write!(f, "{what}: {c}"),
        None => f.write_str(what),
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            AgentError::Device { what, cause } => {
                f.write_str("simulated device: ")?;
                with_cause(f, what, cause)
            }
            AgentError::Boot(e) => write!(f, "the device does not boot: {e}"),
            AgentError::Service(r) => {
                write!(f, "secure services: {} (PSA status {})", r.text, r.status)
            }
            AgentError::SecureWorldGone => f.write_str("the secure services stopped"),
            AgentError::Pki { what, cause } => {
                f.write_str("pki: ")?;
                with_cause(f, what, cause)
            }
            AgentError::Tls { what, cause } => {
                f.write_str("tls: ")?;
                with_cause(f, what, cause)
            }
            AgentError::Network { what, source } => write!(f, "network: {what}: {source}"),
            AgentError::Mqtt(e) => write!(f, "mqtt: {e}"),
            AgentError::Http { status: 0, reason } => write!(f, "http: {reason}"),
            AgentError::Http { status, reason } => write!(f, "server answered {status}: {reason}"),
            AgentError::OnboardingRefused { reason, .. } => {
                write!(f, "onboarding refused by the server: {reason}")
            }
            AgentError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            AgentError::Protocol { what, cause } => {
                f.write_str("protocol: ")?;
                with_cause(f, what, cause)
            }
            AgentError::NotProvisioned(m) => write!(f, "not provisioned: {m}"),
            AgentError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            AgentError::DeviceLink(e) => write!(f, "device: {e}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let cause = match self {
            AgentError::Io { source, .. } | AgentError::Network { source, .. } => {
                return Some(source);
            }
            AgentError::Boot(e) => return Some(e),
            AgentError::Mqtt(e) => return Some(e),
            AgentError::Device { cause, .. }
            | AgentError::Pki { cause, .. }
            | AgentError::Tls { cause, .. }
            | AgentError::Protocol { cause, .. } => cause,
            AgentError::DeviceLink(e) => return Some(e.as_ref()),
            _ => return None,
        };
        cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl From<MqttError> for AgentError {
    fn from(e: MqttError) -> Self {
        AgentError::Mqtt(e)
    }
}

impl AgentError {
    /// True for failures that a later retry may cure (network, TLS handshake, broker gone,
    /// timeouts); false for refusals and local faults.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AgentError::Network { .. }
                | AgentError::Tls { .. }
                | AgentError::Mqtt(_)
                | AgentError::Timeout(_)
                | AgentError::Http { status: 0, .. }
        )
    }

    /// A device fault: `what` was being done when `cause` happened.
    pub(crate) fn device(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AgentError::Device {
            what: what.into(),
            cause: Some(cause.into()),
        }
    }

    /// A device fault with no underlying error.
    pub(crate) fn device_state(what: impl Into<String>) -> Self {
        AgentError::Device {
            what: what.into(),
            cause: None,
        }
    }

    /// A PKI failure: `what` was being done when `cause` happened.
    pub(crate) fn pki(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AgentError::Pki {
            what: what.into(),
            cause: Some(cause.into()),
        }
    }

    /// A PKI object that does not match, with no underlying error.
    pub(crate) fn pki_state(what: impl Into<String>) -> Self {
        AgentError::Pki {
            what: what.into(),
            cause: None,
        }
    }

    /// A TLS failure: `what` was being done when `cause` happened.
    pub(crate) fn tls(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AgentError::Tls {
            what: what.into(),
            cause: Some(cause.into()),
        }
    }

    /// A server message that does not parse: which one, and the parse error.
    pub(crate) fn protocol(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        AgentError::Protocol {
            what: what.into(),
            cause: Some(cause.into()),
        }
    }

    /// A server message that parses but breaks the protocol.
    pub(crate) fn protocol_state(what: impl Into<String>) -> Self {
        AgentError::Protocol {
            what: what.into(),
            cause: None,
        }
    }

    /// The network failed while `what` was being done.
    pub(crate) fn network(what: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Network {
            what: what.into(),
            source,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn causes_stay_errors_that_callers_can_walk_and_downcast() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad bytes");
        let e = AgentError::pki("the LDevID from the server", io);
        assert_eq!(e.to_string(), "pki: the LDevID from the server: bad bytes");
        let cause = e.source().expect("the cause is kept");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("as its own type");
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
        assert!(
            AgentError::device_state("no root key provisioned")
                .source()
                .is_none()
        );
    }

    #[test]
    fn mqtt_refusals_are_variants_with_their_code() {
        let e: AgentError = MqttError::ConnectRefused(5).into();
        assert!(matches!(e, AgentError::Mqtt(MqttError::ConnectRefused(5))));
        assert!(
            e.to_string()
                .ends_with("(CONNACK return code 5: not authorized)")
        );
        assert!(
            e.is_transient(),
            "a broker refusal may pass once the device is released"
        );
    }
}
