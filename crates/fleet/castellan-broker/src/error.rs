//! The crate's error type.

use std::fmt;

/// Everything that can go wrong in the broker.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerError {
    /// A device or service id is empty, too long, `.`/`..`, or has a character outside
    /// `[A-Za-z0-9._-]`.
    InvalidId,
    /// A topic or topic filter is malformed or refused by the hardening rules (empty level,
    /// `.`/`..` level, `$` level, misplaced wildcard, too long, too deep).
    InvalidTopic,
    /// A configuration file (certificate, key, CA bundle) could not be read or holds nothing usable.
    Config(String),
    /// The TLS listener could not be set up (bad certificate, key or CA bundle).
    Tls(String),
    /// The listening socket could not be bound.
    Bind(String),
    /// The broker was shut down; the handle can no longer act.
    NotRunning,
    /// Routing a server-side publish failed.
    Publish(String),
    /// Closing a session failed.
    Kick(String),
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::InvalidId => {
                f.write_str("invalid identity: a device or service id must be 1-128 characters of [A-Za-z0-9._-], not '.' or '..'")
            }
            BrokerError::InvalidTopic => f.write_str(
                "invalid topic: empty, '.', '..' or '$' level, misplaced wildcard, control character, or too long/deep",
            ),
            BrokerError::Config(d) => write!(f, "broker configuration: {d}"),
            BrokerError::Tls(d) => write!(f, "TLS listener setup failed: {d}"),
            BrokerError::Bind(d) => write!(f, "cannot bind the MQTT listener: {d}"),
            BrokerError::NotRunning => f.write_str("the broker is not running (it was shut down)"),
            BrokerError::Publish(d) => write!(f, "server-side publish failed: {d}"),
            BrokerError::Kick(d) => write!(f, "closing the session failed: {d}"),
        }
    }
}

impl std::error::Error for BrokerError {}
