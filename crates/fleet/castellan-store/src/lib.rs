//! The fleet service's storage: device registry, telemetry, revocations, operators and API
//! tokens, onboarding nonces, releases and update campaigns, and a hash-chained audit log,
//! over SQLite (the embedded default: one file, WAL) or PostgreSQL (by URL), with one code path
//! for both.
//!
//! ```text
//!  castellan serve ──▶ Store ──▶ registry · telemetry · revocations · access · nonces · audit
//!                                releases · campaigns · device history (last attestation claims)
//!                                  │ portable SQL, `$n` parameters, written once
//!                                  ▼
//!                             db::Session ──▶ SQLite (rusqlite)  |  PostgreSQL (tokio-postgres)
//! ```
//!
//! Every operation is `async`. Migrations run when a store is opened. The audit log's head is
//! also written to an anchor file after every append, so that truncating the log's tail (which
//! anyone with write access to the database could do without breaking the chain) is detected
//! by [`Store::verify_audit`] as long as the anchor lives out of that attacker's reach.

#![forbid(unsafe_code)]

mod access;
mod alerts;
mod attestation_key;
mod audit;
mod audit_search;
mod campaign_devices;
mod campaigns;
mod cluster;
mod commands;
mod console;
mod db;
mod detection;
mod device_history;
mod device_query;
mod error;
mod lease;
mod migrate;
mod registry;
mod releases;
mod revocations;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use access::{Operator, Role};
pub use alerts::{Alert, AlertState, ResponsePolicy};
pub use audit::{AuditEntry, AuditRecord, AuditReport, Decision};
pub use audit_search::AuditFilter;
pub use campaigns::{
    Campaign, CampaignDevice, CampaignState, DOWNLOAD_TOKEN_PREFIX, DeviceUpdateState, NewCampaign,
};
pub use cluster::{
    CHANNEL_OUTBOX, CHANNEL_SESSION, OUTBOX_CAP_PER_DEVICE, OutboxMessage, SessionEvent,
};
pub use commands::PendingCommand;
pub use console::{ConsoleSession, NewConsoleSession, PasswordRecord};
pub use db::Backend;
pub use detection::{DetectionRecord, NewDetection};
pub use device_history::{AttestationRecord, DeviceUpdate, MAX_CLAIMS_JSON};
pub use device_query::{DevicePage, DeviceQuery, DeviceSort, DeviceState, FleetCounts, MAX_PAGE};
pub use error::{AuditViolation, StoreError};
pub use lease::{Fence, Lease, LeaseAnswer, fenced, unix_now_ms};
pub use migrate::SCHEMA_VERSION;
pub use registry::{AttestationStatus, Device, NewDevice, ReferenceMeasurement};
pub use releases::{NewRelease, Release, ReleaseKey};
pub use revocations::Revocation;
pub use telemetry::TelemetryRecord;

/// Settings of a store. [`StoreOptions::default`] is what `castellan serve` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Where the audit head anchor is written. `None`: beside a SQLite file
    /// (`<file>.audit-head`), no anchor for PostgreSQL.
    pub anchor_path: Option<PathBuf>,
    /// How many telemetry records are kept per device (older ones are deleted).
    pub telemetry_keep: u32,
    /// Maximum PostgreSQL connections.
    pub pg_pool_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            anchor_path: None,
            telemetry_keep: 100,
            pg_pool_size: 8,
        }
    }
}

/// The store. Cloning is cheap and shares the connection(s).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: db::Db,
    anchor: Option<PathBuf>,
    anchor_lock: std::sync::Mutex<()>,
    telemetry_keep: i64,
    location: String,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("location", &self.inner.location)
            .field("anchor", &self.inner.anchor)
            .finish()
    }
}

impl Store {
    /// Open the store at `location` with default options: a `postgres://` or `postgresql://`
    /// URL, or a SQLite file path (optionally prefixed `sqlite:`), created on first use.
    /// Migrations are applied.
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        Store::open_with(location, StoreOptions::default()).await
    }

    /// Open the store at `location` with `options`.
    pub async fn open_with(location: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let (db, anchor, shown) =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                let db = db::Db::open_postgres(location, options.pg_pool_size).await?;
                (db, options.anchor_path, redact_url(location))
            } else {
                let path = Path::new(location.strip_prefix("sqlite:").unwrap_or(location));
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                        detail: format!("{}: {e}", parent.display()),
                    })?;
                }
                let db = db::Db::open_sqlite(path).await?;
                let anchor = options.anchor_path.or_else(|| {
                    let mut p = path.as_os_str().to_owned();
                    p.push(".audit-head");
                    Some(PathBuf::from(p))
                });
                (db, anchor, path.display().to_string())
            };
        migrate::migrate(&db).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                anchor,
                anchor_lock: std::sync::Mutex::new(()),
                telemetry_keep: i64::from(options.telemetry_keep.max(1)),
                location: shown,
            }),
        })
    }

    /// Which engine this store uses.
    pub fn backend(&self) -> Backend {
        self.inner.db.backend()
    }

    /// Where the store is (file path, or the URL without its password).
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// The audit anchor file, if any.
    pub fn anchor_path(&self) -> Option<&Path> {
        self.inner.anchor.as_deref()
    }

    /// The highest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt("SELECT MAX(version) FROM schema_migrations", vec![])
            .await?;
        Ok(row
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    async fn session(&self) -> Result<db::Session, StoreError> {
        db::Session::checkout(&self.inner.db).await
    }
}

/// The current time, Unix seconds (what the server passes as `now` / `at`).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`: a database location fit
/// for logs and the audit log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// SHA-256 as lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(data))
}
