//! Why a store operation failed: one error type for the crate. Audit-log tampering has its own
//! `Copy` enum, [`AuditViolation`], naming the entry that is modified, missing or out of order.

use core::fmt;

use crate::db::Backend;

/// What `verify_audit` found wrong with the hash chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditViolation {
    /// The entry's content no longer matches its hash: it was modified after it was written.
    Modified {
        /// The entry's sequence number.
        seq: u64,
    },
    /// Entries are missing: there is a gap in the sequence numbers.
    Missing {
        /// The first missing sequence number.
        first: u64,
        /// The last missing sequence number.
        last: u64,
    },
    /// The entry stored at `seq` was written as entry `original_seq`: entries were reordered.
    Reordered {
        /// Where the entry is now.
        seq: u64,
        /// Where it was written.
        original_seq: u64,
    },
    /// The entry is self-consistent but does not link to its predecessor: an earlier entry was
    /// removed or replaced and the following ones re-hashed.
    BrokenLink {
        /// The first entry whose link is broken.
        seq: u64,
    },
    /// The log ends before the head recorded in the anchor file: its tail was truncated.
    Truncated {
        /// The head sequence number in the anchor.
        anchored_seq: u64,
        /// The last sequence number in the log (0 when empty).
        head_seq: u64,
    },
    /// The entry at the anchored sequence number has another hash than the anchor recorded:
    /// the chain was rewritten.
    AnchorMismatch {
        /// The anchored sequence number.
        seq: u64,
    },
    /// The anchor file is missing although the log has entries (it is rewritten on every
    /// append, so someone deleted it, or the anchor path changed).
    AnchorMissing,
}

impl fmt::Display for AuditViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditViolation::Modified { seq } => {
                write!(
                    f,
                    "audit entry {seq} was modified (its hash no longer matches its content)"
                )
            }
            AuditViolation::Missing { first, last } if first == last => {
                write!(f, "audit entry {first} is missing")
            }
            AuditViolation::Missing { first, last } => {
                write!(f, "audit entries {first} to {last} are missing")
            }
            AuditViolation::Reordered { seq, original_seq } => write!(
                f,
                "audit entries were reordered: entry {seq} was written as entry {original_seq}"
            ),
            AuditViolation::BrokenLink { seq } => write!(
                f,
                "audit entry {seq} does not link to entry {}: an earlier entry was removed or \
                 replaced and the chain re-hashed",
                seq.saturating_sub(1)
            ),
            AuditViolation::Truncated {
                anchored_seq,
                head_seq,
            } => write!(
                f,
                "the audit log was truncated: it ends at entry {head_seq} but entry \
                 {anchored_seq} was written"
            ),
            AuditViolation::AnchorMismatch { seq } => write!(
                f,
                "audit entry {seq} differs from the anchored head: the chain was rewritten"
            ),
            AuditViolation::AnchorMissing => {
                f.write_str("the audit head anchor file is missing although the log has entries")
            }
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or reached.
    Connect {
        /// The driver's message.
        detail: String,
    },
    /// The database refused or failed a statement.
    Database {
        /// Which engine.
        backend: Backend,
        /// The driver's message.
        detail: String,
    },
    /// A uniqueness or reference constraint was violated (for example a duplicate device id).
    Constraint {
        /// The driver's message.
        detail: String,
    },
    /// A migration failed; nothing of it was applied.
    Migration {
        /// The migration's number.
        version: i64,
        /// Why.
        detail: String,
    },
    /// The database was written by a newer version of Castellan.
    SchemaTooNew {
        /// The highest migration recorded in the database.
        found: i64,
        /// The highest migration this build knows.
        known: i64,
    },
    /// A column did not hold the expected type.
    Decode {
        /// The column index.
        column: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// A stored value is not valid (for example an unknown role name).
    Corrupt {
        /// What.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// The record does not exist.
    NotFound {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// The record already exists.
    AlreadyExists {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A release's sequence number is not above the latest release of its class.
    SequenceNotNewer {
        /// The sequence number offered.
        offered: u64,
        /// The class's latest sequence number.
        latest: u64,
    },
    /// A detection report's counter is not above the device's latest (a replay).
    ReportNotNewer {
        /// The counter offered.
        offered: u64,
        /// The device's latest stored counter.
        latest: u64,
    },
    /// The onboarding nonce is unknown or was already used.
    NonceUnknown,
    /// The onboarding nonce has expired.
    NonceExpired,
    /// The onboarding nonce was issued to another device (it is now used up).
    NonceWrongDevice,
    /// The audit log's hash chain is broken.
    AuditTampered(AuditViolation),
    /// The audit anchor file could not be read or written.
    Anchor {
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
    },
    /// The operating system's random source failed.
    Random,
    /// A write under a lease was refused: this instance no longer holds the lease it acted
    /// under (it expired, or another instance took it over with a higher epoch). Nothing of
    /// the write was applied.
    Fenced {
        /// The lease's name.
        lease: String,
        /// The epoch the write was made under.
        epoch: i64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Connect { detail } => write!(f, "cannot open the database: {detail}"),
            StoreError::Database { backend, detail } => write!(f, "{backend} error: {detail}"),
            StoreError::Constraint { detail } => write!(f, "constraint violated: {detail}"),
            StoreError::Migration { version, detail } => {
                write!(
                    f,
                    "migration {version} failed (nothing of it was applied): {detail}"
                )
            }
            StoreError::SchemaTooNew { found, known } => write!(
                f,
                "the database schema is at migration {found} but this build knows only up to \
                 {known}: upgrade Castellan"
            ),
            StoreError::Decode { column, expected } => {
                write!(f, "column {column} does not hold {expected}")
            }
            StoreError::Corrupt { what, value } => {
                write!(f, "stored {what} {value:?} is not valid")
            }
            StoreError::NotFound { what, key } => write!(f, "no {what} {key:?}"),
            StoreError::AlreadyExists { what, key } => write!(f, "{what} {key:?} already exists"),
            StoreError::ReportNotNewer { offered, latest } => write!(
                f,
                "detection report counter {offered} is not above the device's latest ({latest})"
            ),
            StoreError::SequenceNotNewer { offered, latest } => write!(
                f,
                "sequence number {offered} is not above the class's latest release ({latest})"
            ),
            StoreError::NonceUnknown => f.write_str("the nonce is unknown or was already used"),
            StoreError::NonceExpired => f.write_str("the nonce has expired"),
            StoreError::NonceWrongDevice => {
                f.write_str("the nonce was issued to another device (it is now used up)")
            }
            StoreError::AuditTampered(v) => write!(f, "audit log verification failed: {v}"),
            StoreError::Anchor { kind } => write!(f, "cannot access the audit anchor file: {kind}"),
            StoreError::Random => f.write_str("the operating system's random source failed"),
            StoreError::Fenced { lease, epoch } => write!(
                f,
                "write refused: lease {lease:?} (epoch {epoch}) is no longer held by this instance"
            ),
        }
    }
}

impl std::error::Error for StoreError {}
