//! Staging the next version of an offline role: keys, thresholds, root rotation, device-class
//! delegations and release entries. Every edit bumps the version, renews the expiry and drops
//! earlier signatures (they covered another payload); the result waits in `staged/` for
//! signatures.

use std::collections::BTreeMap;

use sigstore_tuf::{Delegations, Key, Root, Targets};

use super::{Envelope, Repository, check_threshold, key_id, roles, write};
use crate::error::TufError;

impl Repository {
    /// Stage the next root, edited by `edit` (on top of an already staged root, if any).
    pub fn edit_root(
        &self,
        now: jiff::Timestamp,
        edit: impl FnOnce(&mut Root) -> Result<(), TufError>,
    ) -> Result<Envelope, TufError> {
        let published = self.published("root")?;
        let base = match self.staged("root")? {
            Some(staged) => staged,
            None => published.clone().ok_or_else(|| {
                TufError::Policy("no root to edit: sign and import root v1 first".into())
            })?,
        };
        let mut root: Root = base.payload()?;
        edit(&mut root)?;
        root.version = published.map_or(Ok(0), |p| p.version())? + 1;
        root.expires = self.policy.expires("root", now)?;
        // Keys no role uses any more leave the root.
        let used: Vec<String> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
        root.keys.retain(|id, _| used.contains(id));
        for (name, role) in &root.roles {
            check_threshold(name, role.keyids.len(), role.threshold)?;
        }
        let envelope = Envelope::unsigned(&root)?;
        self.stage("root", &envelope)?;
        Ok(envelope)
    }

    /// Stage the next version of a targets role (`targets` or a device class), edited by
    /// `edit`.
    pub fn edit_targets(
        &self,
        role: &str,
        now: jiff::Timestamp,
        edit: impl FnOnce(&mut Targets) -> Result<(), TufError>,
    ) -> Result<Envelope, TufError> {
        let published = self.published(role)?;
        let mut targets: Targets = match (self.staged(role)?, &published) {
            (Some(staged), _) => staged.payload()?,
            (None, Some(p)) => p.payload()?,
            (None, None) => roles::targets(1, self.policy.expires(role, now)?)?,
        };
        edit(&mut targets)?;
        targets.version = published.map_or(Ok(0), |p| p.version())? + 1;
        targets.expires = self.policy.expires(role, now)?;
        let envelope = Envelope::unsigned(&targets)?;
        self.stage(role, &envelope)?;
        Ok(envelope)
    }

    /// Trust `key` for `role`: a top-level role (a root edit) or a device class (an edit of
    /// the top-level targets' delegation). `threshold` changes the threshold too.
    pub fn add_key(
        &self,
        role: &str,
        key: Key,
        threshold: Option<usize>,
        now: jiff::Timestamp,
    ) -> Result<Envelope, TufError> {
        let id = key_id(&key)?;
        self.edit_role_keys(role, now, |keyids, keys| {
            if !keyids.contains(&id) {
                keyids.push(id.clone());
            }
            keys.insert(id, key);
            Ok(threshold)
        })
    }

    /// Stop trusting key `keyid` for `role` (a stolen or retired key).
    pub fn remove_key(
        &self,
        role: &str,
        keyid: &str,
        threshold: Option<usize>,
        now: jiff::Timestamp,
    ) -> Result<Envelope, TufError> {
        self.edit_role_keys(role, now, |keyids, _| {
            let before = keyids.len();
            keyids.retain(|k| k != keyid);
            if keyids.len() == before {
                return Err(TufError::Policy(format!(
                    "key {keyid} is not trusted for {role}"
                )));
            }
            Ok(threshold)
        })
    }

    /// Edit the key ids of `role` (and the key table they index) with `edit`, which returns
    /// a new threshold if it changes. Keys no role uses any more are dropped.
    fn edit_role_keys(
        &self,
        role: &str,
        now: jiff::Timestamp,
        edit: impl FnOnce(
            &mut Vec<String>,
            &mut BTreeMap<String, Key>,
        ) -> Result<Option<usize>, TufError>,
    ) -> Result<Envelope, TufError> {
        let unknown =
            || TufError::Policy(format!("no role or device class {role}: delegate it first"));
        if roles::TOP_LEVEL_ROLES.contains(&role) {
            return self.edit_root(now, |root| {
                let entry = root.roles.get_mut(role).ok_or_else(unknown)?;
                if let Some(t) = edit(&mut entry.keyids, &mut root.keys)? {
                    entry.threshold = t;
                }
                Ok(())
            });
        }
        self.edit_targets("targets", now, |targets| {
            let delegations = class_delegations(targets)?;
            let class = delegations
                .roles
                .iter_mut()
                .find(|r| r.name == role)
                .ok_or_else(unknown)?;
            if let Some(t) = edit(&mut class.keyids, &mut delegations.keys)? {
                class.threshold = t;
            }
            check_threshold(role, class.keyids.len(), class.threshold)?;
            let used: Vec<String> = delegations
                .roles
                .iter()
                .flat_map(|r| r.keyids.clone())
                .collect();
            delegations.keys.retain(|id, _| used.contains(id));
            Ok(())
        })
    }

    /// Stage a root whose root role is `keys` with `threshold`: it must be signed by the old
    /// root keys (a threshold of them) and by the new ones.
    pub fn rotate_root(
        &self,
        keys: Vec<Key>,
        threshold: usize,
        now: jiff::Timestamp,
    ) -> Result<Envelope, TufError> {
        check_threshold("root", keys.len(), threshold)?;
        let mut ids = Vec::new();
        let mut by_id = BTreeMap::new();
        for key in keys {
            let id = key_id(&key)?;
            ids.push(id.clone());
            by_id.insert(id, key);
        }
        self.edit_root(now, |root| {
            root.roles
                .insert("root".into(), roles::role_keys(ids, threshold)?);
            root.keys.extend(by_id);
            Ok(())
        })
    }

    /// Delegate `<class>/*` to a device class's release team (terminating), and stage the
    /// class's empty role v1. Stages the top-level targets (for the release managers to sign).
    pub fn delegate(
        &self,
        class: &str,
        keys: Vec<Key>,
        threshold: usize,
        now: jiff::Timestamp,
    ) -> Result<Envelope, TufError> {
        if !roles::valid_class(class) {
            return Err(TufError::Policy(format!(
                "{class:?} is not a device class name (a-z, 0-9, - and _, not a top-level role)"
            )));
        }
        check_threshold(class, keys.len(), threshold)?;
        let staged = self.edit_targets("targets", now, |targets| {
            let delegations = class_delegations(targets)?;
            if delegations.roles.iter().any(|r| r.name == class) {
                return Err(TufError::Policy(format!(
                    "device class {class} is already delegated"
                )));
            }
            let mut ids = Vec::new();
            for key in keys {
                let id = key_id(&key)?;
                ids.push(id.clone());
                delegations.keys.insert(id, key);
            }
            delegations
                .roles
                .push(roles::class_delegation(class, ids, threshold)?);
            Ok(())
        })?;
        self.edit_targets(class, now, |_| Ok(()))?;
        Ok(staged)
    }

    /// List a release for a device class: `<class>/<name>` with the bytes' length and SHA-256,
    /// `custom` carrying Castellan's fields. The file is stored under its consistent name and
    /// the class's role is staged for its release team to sign.
    pub fn add_target(
        &self,
        class: &str,
        name: &str,
        bytes: &[u8],
        custom: Option<serde_json::Value>,
        now: jiff::Timestamp,
    ) -> Result<Envelope, TufError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(TufError::Policy(format!(
                "{name:?} is not a target file name"
            )));
        }
        let entry = roles::target_file(bytes, custom)?;
        let digest = entry
            .hashes
            .get("sha256")
            .cloned()
            .ok_or_else(|| TufError::Malformed("target without SHA-256".into()))?;
        let path = self
            .targets_dir()
            .join(class)
            .join(format!("{digest}.{name}"));
        write(&path, bytes)?;
        self.edit_targets(class, now, |targets| {
            targets.targets.insert(format!("{class}/{name}"), entry);
            Ok(())
        })
    }
}

/// The delegations of the top-level targets, created empty if there are none.
fn class_delegations(targets: &mut Targets) -> Result<&mut Delegations, TufError> {
    if targets.delegations.is_none() {
        targets.delegations = Some(serde_json::from_value(
            serde_json::json!({"keys": {}, "roles": []}),
        )?);
    }
    targets
        .delegations
        .as_mut()
        .ok_or_else(|| TufError::Malformed("delegations".into()))
}
