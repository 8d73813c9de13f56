//! Publishing: importing a signed offline role (checked as a device would check it) and
//! re-signing the online roles, snapshot and timestamp, with the repository's online keys.

use std::collections::BTreeMap;

use sigstore_tuf::{Root, Targets};

use super::keys::RoleSigner;
use super::{Envelope, ONLINE, Repository, read_optional, roles, write};
use crate::error::{TufError, io};

/// What [`Repository::resign_due`] re-signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resigned {
    /// A new snapshot was signed.
    pub snapshot: bool,
    /// A new timestamp was signed.
    pub timestamp: bool,
}

impl Repository {
    /// Publish a signed `role` (`root`, `targets` or a device class) after checking it as a
    /// device would: the next version, signed by a threshold of the keys trusted for it (for
    /// a root: of the previous root's keys and of its own). Then sign a new snapshot and
    /// timestamp.
    pub fn import(
        &self,
        role: &str,
        envelope: &Envelope,
        now: jiff::Timestamp,
    ) -> Result<(), TufError> {
        let published = self.published(role)?;
        let next = published.as_ref().map_or(Ok(0), Envelope::version)? + 1;
        let version = envelope.version()?;
        if version != next && !(role != "root" && version > next) {
            return Err(TufError::Policy(format!(
                "{role} version {version} cannot follow the published version {}: stage it again",
                next - 1
            )));
        }
        match role {
            "snapshot" | "timestamp" => {
                return Err(TufError::Policy(format!(
                    "{role} is signed by the repository's online key, not imported"
                )));
            }
            "root" => self.check_root(envelope, published.as_ref())?,
            _ => self.check_targets(role, envelope)?,
        }
        let bytes = envelope.to_bytes()?;
        write(
            &self.metadata_dir().join(format!("{version}.{role}.json")),
            &bytes,
        )?;
        write(&self.metadata_dir().join(format!("{role}.json")), &bytes)?;
        if self
            .staged(role)?
            .is_some_and(|s| s.version().ok() == Some(version))
        {
            let path = self.staged_path(role);
            std::fs::remove_file(&path).map_err(|e| io(path.display(), e))?;
        }
        if role == "root" {
            self.forget_online_keys()?;
        }
        if self.published("targets")?.is_some() {
            self.publish_online(now)?;
        }
        Ok(())
    }

    fn check_root(&self, envelope: &Envelope, previous: Option<&Envelope>) -> Result<(), TufError> {
        if envelope.role_type()? != "root" {
            return Err(TufError::Malformed("not a root".into()));
        }
        let new: Root = envelope.payload()?;
        for role in roles::TOP_LEVEL_ROLES {
            if !new.roles.contains_key(role) {
                return Err(TufError::Malformed(format!("root without role {role}")));
            }
        }
        if let Some(previous) = previous {
            let old: Root = previous.payload()?;
            let old_role = old
                .roles
                .get("root")
                .ok_or_else(|| TufError::Malformed("root role".into()))?;
            envelope.verify(&old.keys, old_role, "root (previous keys)")?;
        }
        let new_role = new
            .roles
            .get("root")
            .ok_or_else(|| TufError::Malformed("root role".into()))?;
        envelope.verify(&new.keys, new_role, "root")
    }

    fn check_targets(&self, role: &str, envelope: &Envelope) -> Result<(), TufError> {
        if envelope.role_type()? != "targets" {
            return Err(TufError::Malformed(format!("{role} is not a targets role")));
        }
        let root = self.root()?;
        if role == "targets" {
            let keys = root
                .roles
                .get("targets")
                .ok_or_else(|| TufError::Malformed("targets role".into()))?;
            return envelope.verify(&root.keys, keys, role);
        }
        let delegations = self
            .targets()?
            .delegations
            .ok_or_else(|| TufError::Policy(format!("no device class {role} is delegated")))?;
        let class = delegations
            .roles
            .iter()
            .find(|r| r.name == role)
            .ok_or_else(|| TufError::Policy(format!("no device class {role} is delegated")))?;
        let paths = class.paths.clone().unwrap_or_default();
        let listed: Targets = envelope.payload()?;
        for target in listed.targets.keys() {
            if !class.matches_path(target)? {
                return Err(TufError::Policy(format!(
                    "{role} may list targets under {paths:?} only, not {target}"
                )));
            }
        }
        envelope.verify(&delegations.keys, &class.role_keys(), role)
    }

    /// Sign a new snapshot (the current versions of every targets role) and a new timestamp.
    pub fn publish_online(&self, now: jiff::Timestamp) -> Result<(), TufError> {
        let targets = self.targets()?;
        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_owned(),
            roles::meta_version(version_of(self, "targets")?)?,
        );
        for class in targets.delegations.iter().flat_map(|d| d.roles.iter()) {
            if self.published(&class.name)?.is_some() {
                meta.insert(
                    format!("{}.json", class.name),
                    roles::meta_version(version_of(self, &class.name)?)?,
                );
            }
        }
        let version = self.published("snapshot")?.map_or(Ok(0), |e| e.version())? + 1;
        let snapshot = roles::snapshot(version, self.policy.expires("snapshot", now)?, meta)?;
        let bytes = self.sign_online("snapshot", &Envelope::unsigned(&snapshot)?)?;
        write(
            &self.metadata_dir().join(format!("{version}.snapshot.json")),
            &bytes,
        )?;
        write(&self.metadata_dir().join("snapshot.json"), &bytes)?;
        self.publish_timestamp(now)
    }

    /// Sign a new timestamp over the current snapshot.
    pub fn publish_timestamp(&self, now: jiff::Timestamp) -> Result<(), TufError> {
        let snapshot_bytes = read_optional(&self.metadata_dir().join("snapshot.json"))?
            .ok_or_else(|| TufError::Policy("no snapshot published yet".into()))?;
        let snapshot_version = Envelope::from_bytes(&snapshot_bytes)?.version()?;
        let version = self
            .published("timestamp")?
            .map_or(Ok(0), |e| e.version())?
            + 1;
        let timestamp = roles::timestamp(
            version,
            self.policy.expires("timestamp", now)?,
            snapshot_version,
            &snapshot_bytes,
        )?;
        let bytes = self.sign_online("timestamp", &Envelope::unsigned(&timestamp)?)?;
        write(&self.metadata_dir().join("timestamp.json"), &bytes)
    }

    /// Re-sign what would expire within half its lifetime: the server calls this
    /// periodically, so devices never see expired online metadata from an honest server.
    pub fn resign_due(&self, now: jiff::Timestamp) -> Result<Resigned, TufError> {
        let due = |role: &str| -> Result<bool, TufError> {
            let Some(published) = self.published(role)? else {
                return Ok(false);
            };
            let expires: jiff::Timestamp = published
                .payload::<serde_json::Value>()?
                .get("expires")
                .and_then(|e| e.as_str())
                .and_then(|e| e.parse().ok())
                .ok_or_else(|| TufError::Malformed(format!("{role} expiry")))?;
            let half = jiff::SignedDuration::from_hours(self.policy.lifetime_hours(role) / 2);
            Ok(expires.duration_since(now) < half)
        };
        if due("snapshot")? {
            self.publish_online(now)?;
            return Ok(Resigned {
                snapshot: true,
                timestamp: true,
            });
        }
        if due("timestamp")? {
            self.publish_timestamp(now)?;
            return Ok(Resigned {
                snapshot: false,
                timestamp: true,
            });
        }
        Ok(Resigned::default())
    }

    /// Sign `envelope` with every online key the root trusts for `role`.
    fn sign_online(&self, role: &str, envelope: &Envelope) -> Result<Vec<u8>, TufError> {
        let root = self.root()?;
        let trusted = root
            .roles
            .get(role)
            .ok_or_else(|| TufError::Malformed(format!("root without role {role}")))?;
        let mut envelope = envelope.clone();
        for keyid in &trusted.keyids {
            let path = self.dir.join(ONLINE).join(format!("{keyid}.pem"));
            if let Some(held) = self.online_signers.iter().find(|s| s.keyid() == keyid) {
                envelope.sign(held)?;
            } else if path.exists() {
                envelope.sign(&RoleSigner::from_file(&path)?)?;
            }
        }
        envelope.verify(&root.keys, trusted, role)?;
        envelope.to_bytes()
    }

    /// Delete the online keys the published root no longer trusts (a rotated-out key must
    /// not sign again, even by mistake).
    fn forget_online_keys(&self) -> Result<(), TufError> {
        let root = self.root()?;
        let dir = self.dir.join(ONLINE);
        let entries = std::fs::read_dir(&dir).map_err(|e| io(dir.display(), e))?;
        for entry in entries.map_while(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(keyid) = name.strip_suffix(".pem") else {
                continue;
            };
            let trusted = ["snapshot", "timestamp"]
                .iter()
                .filter_map(|r| root.roles.get(*r))
                .any(|r| r.keyids.iter().any(|k| k == keyid));
            let staged = self
                .staged("root")?
                .map(|s| s.payload::<Root>())
                .transpose()?
                .is_some_and(|r| r.keys.contains_key(keyid));
            if !trusted && !staged {
                std::fs::remove_file(entry.path()).map_err(|e| io(entry.path().display(), e))?;
            }
        }
        Ok(())
    }
}

fn version_of(repo: &Repository, role: &str) -> Result<u64, TufError> {
    repo.published(role)?
        .ok_or_else(|| TufError::Policy(format!("{role} is not published")))?
        .version()
}
