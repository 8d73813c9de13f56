//! Role payloads as sigstore-tuf's metadata types, and the repository's expiry policy.
//!
//! sigstore-tuf's types are `#[non_exhaustive]`: new payloads are built from their JSON form
//! and then edited through their public fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;
use sigstore_tuf::{DelegatedRole, Key, MetaFile, RoleKeys, Root, Snapshot, Targets, Timestamp};

use crate::error::TufError;

/// The TUF specification version the repository writes.
pub const SPEC_VERSION: &str = "1.0.31";
/// The four top-level roles, as named in `root`.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// How long each role's metadata stays valid once signed.
///
/// Offline roles live long (they need people and offline keys to re-sign); the online roles
/// live short, so a stolen or frozen repository is noticed within a day: a device refuses
/// expired metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `root`, in days.
    pub root_days: u32,
    /// `targets` and the device classes' roles, in days.
    pub targets_days: u32,
    /// `snapshot`, in hours.
    pub snapshot_hours: u32,
    /// `timestamp`, in hours.
    pub timestamp_hours: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            root_days: 365,
            targets_days: 90,
            snapshot_hours: 7 * 24,
            timestamp_hours: 24,
        }
    }
}

impl Policy {
    /// The lifetime of `role` (a class role lives as long as `targets`), in hours.
    pub fn lifetime_hours(&self, role: &str) -> i64 {
        match role {
            "root" => i64::from(self.root_days) * 24,
            "snapshot" => i64::from(self.snapshot_hours),
            "timestamp" => i64::from(self.timestamp_hours),
            _ => i64::from(self.targets_days) * 24,
        }
    }

    /// When metadata of `role` signed at `now` expires (whole seconds).
    pub fn expires(&self, role: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, TufError> {
        let end = now
            .checked_add(jiff::SignedDuration::from_hours(self.lifetime_hours(role)))
            .map_err(|e| TufError::Policy(format!("expiry of {role}: {e}")))?;
        jiff::Timestamp::from_second(end.as_second())
            .map_err(|e| TufError::Policy(format!("expiry of {role}: {e}")))
    }
}

/// Keys and threshold of a role.
pub fn role_keys(keyids: Vec<String>, threshold: usize) -> Result<RoleKeys, TufError> {
    Ok(serde_json::from_value(
        json!({"keyids": keyids, "threshold": threshold}),
    )?)
}

/// A root with consistent snapshots.
pub fn root(
    version: u64,
    expires: jiff::Timestamp,
    keys: BTreeMap<String, Key>,
    roles: BTreeMap<String, RoleKeys>,
) -> Result<Root, TufError> {
    Ok(serde_json::from_value(json!({
        "_type": "root", "spec_version": SPEC_VERSION, "version": version,
        "expires": expires, "consistent_snapshot": true, "keys": keys, "roles": roles,
    }))?)
}

/// An empty targets role.
pub fn targets(version: u64, expires: jiff::Timestamp) -> Result<Targets, TufError> {
    Ok(serde_json::from_value(json!({
        "_type": "targets", "spec_version": SPEC_VERSION, "version": version,
        "expires": expires, "targets": {},
    }))?)
}

/// The delegation of a device class: its keys may list targets under `<class>/` only, and
/// nothing else is searched for those paths (terminating).
pub fn class_delegation(
    class: &str,
    keyids: Vec<String>,
    threshold: usize,
) -> Result<DelegatedRole, TufError> {
    Ok(serde_json::from_value(json!({
        "name": class, "keyids": keyids, "threshold": threshold, "terminating": true,
        "paths": [format!("{class}/*")],
    }))?)
}

/// A snapshot listing the targets roles' versions.
pub fn snapshot(
    version: u64,
    expires: jiff::Timestamp,
    meta: BTreeMap<String, MetaFile>,
) -> Result<Snapshot, TufError> {
    Ok(serde_json::from_value(json!({
        "_type": "snapshot", "spec_version": SPEC_VERSION, "version": version,
        "expires": expires, "meta": meta,
    }))?)
}

/// A timestamp pinning the snapshot file (version, length and hash).
pub fn timestamp(
    version: u64,
    expires: jiff::Timestamp,
    snapshot_version: u64,
    snapshot_file: &[u8],
) -> Result<Timestamp, TufError> {
    Ok(serde_json::from_value(json!({
        "_type": "timestamp", "spec_version": SPEC_VERSION, "version": version,
        "expires": expires,
        "meta": {"snapshot.json": {
            "version": snapshot_version,
            "length": snapshot_file.len(),
            "hashes": {"sha256": hex::encode(sha2::Sha256::digest(snapshot_file))},
        }},
    }))?)
}

/// A snapshot entry: the version only (what TUF requires).
pub fn meta_version(version: u64) -> Result<MetaFile, TufError> {
    Ok(serde_json::from_value(json!({"version": version}))?)
}

/// A targets entry: length and SHA-256 of the bytes, and Castellan's fields in `custom`.
pub fn target_file(
    bytes: &[u8],
    custom: Option<serde_json::Value>,
) -> Result<sigstore_tuf::TargetFile, TufError> {
    let mut entry = json!({
        "length": bytes.len(),
        "hashes": {"sha256": hex::encode(sha2::Sha256::digest(bytes))},
    });
    if let (Some(custom), Some(map)) = (custom, entry.as_object_mut()) {
        map.insert("custom".into(), custom);
    }
    Ok(serde_json::from_value(entry)?)
}

/// Whether `name` may name a device class (and so a delegated role and a path prefix).
pub fn valid_class(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !TOP_LEVEL_ROLES.contains(&name)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
