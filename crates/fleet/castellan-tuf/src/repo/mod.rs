//! The TUF repository of Castellan's releases, kept in a directory.
//!
//! ```text
//! <dir>/repository.json     expiry policy
//! <dir>/metadata/           what devices fetch: N.root.json (every version), timestamp.json,
//!                           N.snapshot.json, N.targets.json, N.<class>.json (consistent
//!                           snapshots) and plain-named copies of the latest of each
//! <dir>/targets/<class>/    target files under <sha256>.<name>
//! <dir>/staged/<role>.json  roles awaiting offline signatures (export, sign elsewhere, import)
//! <dir>/online/<keyid>.pem  the online keys of snapshot and timestamp
//! <dir>/log/operations.log  the hash-chained log of the commands run on it ([`oplog`])
//! ```
//!
//! Offline roles (`root`, `targets`, the device classes' roles) are edited here, signed on
//! other machines ([`Envelope::sign`] needs no repository) and imported, which checks their
//! signatures the way a device would before publishing. The online roles (`snapshot`,
//! `timestamp`) are re-signed by the repository itself after each import and when they near
//! expiry.

mod edit;
mod envelope;
mod keys;
pub mod oplog;
mod publish;
mod roles;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sigstore_tuf::{Key, Root, Targets};

pub use envelope::Envelope;
pub use keys::{RoleSigner, key_id, public_key, public_key_from_file};
pub use publish::Resigned;
pub use roles::{Policy, TOP_LEVEL_ROLES, valid_class};

use crate::error::{TufError, io};

const POLICY_FILE: &str = "repository.json";
const METADATA: &str = "metadata";
const TARGETS: &str = "targets";
const STAGED: &str = "staged";
const ONLINE: &str = "online";

/// What `init` needs: the offline keys and thresholds.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The root keys (offline).
    pub root_keys: Vec<Key>,
    /// Root signatures required (at least 2 unless a single-key test repository is wanted).
    pub root_threshold: usize,
    /// The release managers' keys for the top-level targets role.
    pub targets_keys: Vec<Key>,
    /// Targets signatures required.
    pub targets_threshold: usize,
    /// Expiry policy.
    pub policy: Policy,
}

/// A TUF repository directory.
#[derive(Debug, Clone)]
pub struct Repository {
    dir: PathBuf,
    policy: Policy,
    /// Online keys held outside `online/` (in a PKCS#11 token), used before the files.
    online_signers: Vec<Arc<RoleSigner>>,
}

impl Repository {
    /// Create a repository: online keys for snapshot and timestamp, and root v1 and targets v1
    /// staged for offline signing.
    pub fn init(dir: &Path, options: &InitOptions, now: jiff::Timestamp) -> Result<Self, TufError> {
        if dir.join(POLICY_FILE).exists() {
            return Err(TufError::Policy(format!(
                "{} already holds a repository",
                dir.display()
            )));
        }
        check_threshold("root", options.root_keys.len(), options.root_threshold)?;
        check_threshold(
            "targets",
            options.targets_keys.len(),
            options.targets_threshold,
        )?;
        for sub in [METADATA, TARGETS, STAGED, ONLINE] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|e| io(path.display(), e))?;
        }
        let repo = Self {
            dir: dir.to_path_buf(),
            policy: options.policy,
            online_signers: Vec::new(),
        };
        write(
            &dir.join(POLICY_FILE),
            &serde_json::to_vec_pretty(&options.policy)?,
        )?;
        let mut keys = BTreeMap::new();
        let mut role_map = BTreeMap::new();
        for (role, role_keys, threshold) in [
            ("root", options.root_keys.clone(), options.root_threshold),
            (
                "targets",
                options.targets_keys.clone(),
                options.targets_threshold,
            ),
            ("snapshot", vec![repo.new_online_key()?], 1),
            ("timestamp", vec![repo.new_online_key()?], 1),
        ] {
            let mut ids = Vec::new();
            for key in role_keys {
                let id = key_id(&key)?;
                keys.insert(id.clone(), key);
                ids.push(id);
            }
            role_map.insert(role.to_owned(), roles::role_keys(ids, threshold)?);
        }
        let root = roles::root(1, options.policy.expires("root", now)?, keys, role_map)?;
        repo.stage("root", &Envelope::unsigned(&root)?)?;
        let targets = roles::targets(1, options.policy.expires("targets", now)?)?;
        repo.stage("targets", &Envelope::unsigned(&targets)?)?;
        Ok(repo)
    }

    /// Open an existing repository.
    pub fn open(dir: &Path) -> Result<Self, TufError> {
        let path = dir.join(POLICY_FILE);
        let bytes = std::fs::read(&path).map_err(|e| io(path.display(), e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            policy: serde_json::from_slice(&bytes)?,
            online_signers: Vec::new(),
        })
    }

    /// Sign snapshot and timestamp with `signers` (keys in a PKCS#11 token) wherever the root
    /// trusts them, instead of key files under `online/`.
    pub fn with_online_signers(mut self, signers: Vec<Arc<RoleSigner>>) -> Self {
        self.online_signers = signers;
        self
    }

    /// The metadata directory devices fetch from.
    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.join(METADATA)
    }

    /// The targets directory devices fetch from.
    pub fn targets_dir(&self) -> PathBuf {
        self.dir.join(TARGETS)
    }

    /// The expiry policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The latest published metadata of `role`, if any.
    pub fn published(&self, role: &str) -> Result<Option<Envelope>, TufError> {
        read_envelope(&self.metadata_dir().join(format!("{role}.json")))
    }

    /// The published bytes of a metadata file (`3.root.json`, `timestamp.json`, …).
    pub fn metadata_file(&self, name: &str) -> Result<Option<Vec<u8>>, TufError> {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Ok(None);
        }
        read_optional(&self.metadata_dir().join(name))
    }

    /// A published target by its repository path (`<class>/<sha256>.<name>`), as served:
    /// `None` for anything that is not exactly two plain levels under the targets directory.
    pub fn target_file(&self, path: &str) -> Result<Option<Vec<u8>>, TufError> {
        let plain = |s: &str| !s.is_empty() && !s.starts_with('.') && !s.contains('\\');
        match path.split_once('/') {
            Some((class, file)) if plain(class) && plain(file) && !file.contains('/') => {
                read_optional(&self.targets_dir().join(class).join(file))
            }
            _ => Ok(None),
        }
    }

    /// The staged (awaiting signatures) metadata of `role`, if any.
    pub fn staged(&self, role: &str) -> Result<Option<Envelope>, TufError> {
        read_envelope(&self.staged_path(role))
    }

    /// Replace the staged metadata of `role` (after signing it elsewhere, say).
    pub fn stage(&self, role: &str, envelope: &Envelope) -> Result<(), TufError> {
        write(&self.staged_path(role), &envelope.to_bytes()?)
    }

    /// The published root's payload.
    pub fn root(&self) -> Result<Root, TufError> {
        self.published("root")?
            .ok_or_else(|| TufError::Policy("no root published yet: sign and import root".into()))?
            .payload()
    }

    /// The published top-level targets' payload.
    pub fn targets(&self) -> Result<Targets, TufError> {
        self.published("targets")?
            .ok_or_else(|| TufError::Policy("no targets published yet".into()))?
            .payload()
    }

    /// Versions, expiry, keys and staged roles, for `castellan repo status`.
    pub fn status(&self) -> Result<Status, TufError> {
        let mut roles = Vec::new();
        let root = self
            .published("root")?
            .map(|e| e.payload::<Root>())
            .transpose()?;
        let delegations = match self.published("targets")? {
            Some(t) => t.payload::<Targets>()?.delegations,
            None => None,
        };
        let mut names: Vec<String> = TOP_LEVEL_ROLES.iter().map(|r| (*r).to_owned()).collect();
        names.extend(
            delegations
                .iter()
                .flat_map(|d| d.roles.iter().map(|r| r.name.clone())),
        );
        for name in names {
            let published = self.published(&name)?;
            let staged = self.staged(&name)?;
            let (keyids, threshold) = match (&root, &delegations) {
                (Some(root), _) if TOP_LEVEL_ROLES.contains(&name.as_str()) => root
                    .roles
                    .get(&name)
                    .map(|r| (r.keyids.clone(), r.threshold))
                    .unwrap_or_default(),
                (_, Some(d)) => d
                    .roles
                    .iter()
                    .find(|r| r.name == name)
                    .map(|r| (r.keyids.clone(), r.threshold))
                    .unwrap_or_default(),
                _ => (Vec::new(), 0),
            };
            roles.push(RoleStatus {
                version: published.as_ref().map(Envelope::version).transpose()?,
                expires: published
                    .as_ref()
                    .and_then(|e| e.payload::<serde_json::Value>().ok())
                    .and_then(|v| v.get("expires").and_then(|x| x.as_str()).map(str::to_owned)),
                staged_version: staged.as_ref().map(Envelope::version).transpose()?,
                staged_signers: staged.map(|e| e.signers()).unwrap_or_default(),
                name,
                keyids,
                threshold,
            });
        }
        Ok(Status { roles })
    }

    fn staged_path(&self, role: &str) -> PathBuf {
        self.dir.join(STAGED).join(format!("{role}.json"))
    }

    /// Generate an online key (for snapshot or timestamp), stored under `online/`.
    pub fn new_online_key(&self) -> Result<Key, TufError> {
        let signer = RoleSigner::generate()?;
        write_private(
            &self
                .dir
                .join(ONLINE)
                .join(format!("{}.pem", signer.keyid())),
            signer.to_pem()?.as_bytes(),
        )?;
        Ok(signer.public().clone())
    }
}

/// The state of each role.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// One entry per top-level and delegated role.
    pub roles: Vec<RoleStatus>,
}

/// The state of one role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// Role name.
    pub name: String,
    /// Published version.
    pub version: Option<u64>,
    /// Published expiry (RFC 3339).
    pub expires: Option<String>,
    /// Keys trusted for the role.
    pub keyids: Vec<String>,
    /// Signatures required.
    pub threshold: usize,
    /// Version staged for signing.
    pub staged_version: Option<u64>,
    /// Keys that signed the staged version so far.
    pub staged_signers: Vec<String>,
}

fn check_threshold(role: &str, keys: usize, threshold: usize) -> Result<(), TufError> {
    if threshold == 0 || threshold > keys {
        return Err(TufError::Policy(format!(
            "{role}: threshold {threshold} with {keys} key(s); it must be between 1 and the number of keys"
        )));
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, TufError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path.display(), e)),
    }
}

fn read_envelope(path: &Path) -> Result<Option<Envelope>, TufError> {
    read_optional(path)?
        .map(|b| Envelope::from_bytes(&b))
        .transpose()
}

/// Write a file through a temporary name, so readers see the old or the new file.
fn write(path: &Path, bytes: &[u8]) -> Result<(), TufError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent.display(), e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io(path.display(), e))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TufError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| io(path.display(), e))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TufError> {
    write(path, bytes)
}
