//! The simulator's own errors: bad configurations, files that cannot be read or written, and
//! snapshots that do not fit a device. Hardware-rule violations are `castellan_hal::HalError`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong while building, saving or loading a simulated device.
#[derive(Debug)]
#[non_exhaustive]
pub enum SimError {
    /// The device configuration is not one the simulator can model; the text says which rule.
    InvalidConfig(&'static str),
    /// A device file could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A device file exists but its content is not what this device needs.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `create` found a device already in that directory.
    AlreadyExists(PathBuf),
    /// `save` was called on a device that has no directory (made with `new`, never persisted).
    NotPersistent,
    /// A snapshot taken from a device of another geometry was restored.
    SnapshotMismatch,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::InvalidConfig(rule) => write!(f, "invalid simulated device config: {rule}"),
            SimError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            SimError::Corrupt { path, reason } => {
                write!(f, "{}: not a valid device file: {reason}", path.display())
            }
            SimError::AlreadyExists(dir) => {
                write!(
                    f,
                    "{}: a simulated device already exists there",
                    dir.display()
                )
            }
            SimError::NotPersistent => {
                f.write_str("simulated device has no directory to save to (use persist_to)")
            }
            SimError::SnapshotMismatch => {
                f.write_str("snapshot was taken from a device with another flash or OTP size")
            }
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
