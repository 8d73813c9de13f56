//! The one error type of the TUF repository and client: every refusal names what was wrong.

use core::fmt;

/// What went wrong in the repository or the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum TufError {
    /// The TUF client refused metadata or a target (signature, threshold, version, expiry,
    /// hash, length, delegation); the text is the client's reason chain.
    Refused(String),
    /// A target is not listed by any trusted targets role.
    TargetNotFound(String),
    /// An offered release's SUIT envelope is not the one its class's targets metadata lists.
    NotListed {
        /// The target name (`<class>/<release>.suit`).
        target: String,
        /// SHA-256 of the offered envelope.
        sha256: String,
    },
    /// A file of the repository or of the client's trusted directory could not be read or
    /// written.
    Io {
        /// The path or file name involved.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file or a public key is not usable (not an Ed25519 PKCS#8 key, unknown key id).
    Key(String),
    /// Metadata of the repository is not well-formed (JSON, canonical form, role layout).
    Malformed(String),
    /// An operation would break a rule of the repository (threshold above the number of
    /// keys, last key of a role removed, unsigned role published).
    Policy(String),
    /// The repository's operations log (`log/operations.log`) is not an unbroken hash chain:
    /// an entry was altered, removed, reordered or is not an entry.
    OperationsLog {
        /// The first bad line (from 1).
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// Not enough valid signatures to publish a role.
    ThresholdNotMet {
        /// The role being published.
        role: String,
        /// Valid signatures present.
        have: usize,
        /// Signatures required.
        need: usize,
    },
}

impl fmt::Display for TufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "TUF metadata refused: {why}"),
            Self::TargetNotFound(t) => {
                write!(f, "target {t:?} is not listed by any trusted targets role")
            }
            Self::NotListed { target, sha256 } => write!(
                f,
                "the offered SUIT envelope (SHA-256 {sha256}) is not the one TUF lists as {target}"
            ),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::Key(why) => write!(f, "key: {why}"),
            Self::Malformed(why) => write!(f, "malformed metadata: {why}"),
            Self::Policy(why) => write!(f, "refused by repository policy: {why}"),
            Self::OperationsLog { line, why } => {
                write!(
                    f,
                    "the repository's operations log is broken at line {line}: {why}"
                )
            }
            Self::ThresholdNotMet { role, have, need } => write!(
                f,
                "role {role} has {have} valid signature(s), {need} required: sign it with more of its keys"
            ),
        }
    }
}

impl std::error::Error for TufError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<sigstore_tuf::Error> for TufError {
    fn from(e: sigstore_tuf::Error) -> Self {
        match e {
            sigstore_tuf::Error::TargetNotFound(t) => Self::TargetNotFound(t),
            other => Self::Refused(chain(&other)),
        }
    }
}

impl From<serde_json::Error> for TufError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// An I/O error with the path it concerns.
pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> TufError {
    TufError::Io {
        what: what.to_string(),
        source,
    }
}

/// An error and all its causes, `: `-separated (the client's errors keep the cause apart).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
