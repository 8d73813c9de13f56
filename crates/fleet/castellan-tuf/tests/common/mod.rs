//! A repository built with `castellan_tuf::repo`, its keys, and a device running
//! `castellan_tuf::client` against it through a mirror an attacker may control.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use castellan_tuf::TufError;
use castellan_tuf::client::{self, DeviceClient};
use castellan_tuf::repo::{Envelope, InitOptions, Policy, Repository, RoleSigner};
use sigstore_tuf::transport::FetchFuture;

/// The device class the tests release for.
pub const CLASS: &str = "sensor-v1";

/// Noon, 1 June 2026: the repository's clock at setup.
pub fn t0() -> jiff::Timestamp {
    "2026-06-01T12:00:00Z".parse().expect("a timestamp")
}

/// `t0` plus `hours`.
pub fn later(hours: i64) -> jiff::Timestamp {
    t0().checked_add(jiff::SignedDuration::from_hours(hours))
        .expect("in range")
}

/// A published repository: root (2 of 3 keys), targets (release manager), one device class
/// delegated to its release team, one release `sensor-v1/fw-1.suit` listed.
pub struct Fleet {
    pub _dir: tempfile::TempDir,
    pub repo: Repository,
    pub root_keys: Vec<RoleSigner>,
    pub targets_key: RoleSigner,
    pub class_key: RoleSigner,
}

impl Fleet {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_keys: Vec<RoleSigner> = (0..3).map(|_| signer()).collect();
        let targets_key = signer();
        let class_key = signer();
        let options = InitOptions {
            root_keys: root_keys.iter().map(|k| k.public().clone()).collect(),
            root_threshold: 2,
            targets_keys: vec![targets_key.public().clone()],
            targets_threshold: 1,
            policy: Policy::default(),
        };
        let repo = Repository::init(dir.path(), &options, t0()).expect("init");
        let fleet = Self {
            _dir: dir,
            repo,
            root_keys,
            targets_key,
            class_key,
        };
        fleet.sign_and_import("root", &[&fleet.root_keys[0], &fleet.root_keys[1]]);
        fleet.sign_and_import("targets", &[&fleet.targets_key]);
        fleet
            .repo
            .delegate(CLASS, vec![fleet.class_key.public().clone()], 1, t0())
            .expect("delegate");
        fleet.sign_and_import("targets", &[&fleet.targets_key]);
        fleet.sign_and_import(CLASS, &[&fleet.class_key]);
        fleet.release("fw-1.suit", b"release 1 manifest", &fleet.class_key);
        fleet
    }

    /// Sign the staged `role` with `keys` (offline: through the file's bytes) and import it.
    pub fn sign_and_import(&self, role: &str, keys: &[&RoleSigner]) {
        self.try_sign_and_import(role, keys, t0()).expect("import");
    }

    pub fn try_sign_and_import(
        &self,
        role: &str,
        keys: &[&RoleSigner],
        now: jiff::Timestamp,
    ) -> Result<(), TufError> {
        let exported = self.repo.staged(role)?.expect("staged").to_bytes()?;
        let mut envelope = Envelope::from_bytes(&exported)?;
        for key in keys {
            envelope.sign(key)?;
        }
        self.repo.import(role, &envelope, now)
    }

    /// List and publish a release for the class, signed by `key`.
    pub fn release(&self, name: &str, bytes: &[u8], key: &RoleSigner) {
        self.repo
            .add_target(CLASS, name, bytes, None, t0())
            .expect("add target");
        self.sign_and_import(CLASS, &[key]);
    }

    /// The current published bytes of a metadata file.
    pub fn file(&self, name: &str) -> Vec<u8> {
        self.repo
            .metadata_file(name)
            .expect("read")
            .unwrap_or_else(|| panic!("{name} is published"))
    }

    /// A device that trusts root v1 (its factory trust anchor).
    pub fn device(&self) -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        client::init(dir.path(), &self.file("1.root.json")).expect("init device");
        Device {
            dir,
            metadata: self.repo.metadata_dir(),
            targets: self.repo.targets_dir(),
        }
    }
}

pub fn signer() -> RoleSigner {
    RoleSigner::generate().expect("key")
}

/// A device: its trusted directory, and the repository's directories its mirror serves.
pub struct Device {
    pub dir: tempfile::TempDir,
    metadata: PathBuf,
    targets: PathBuf,
}

impl Device {
    /// Refresh through an honest mirror at time `now`.
    pub fn refresh(&self, now: jiff::Timestamp) -> Result<DeviceClient, TufError> {
        self.refresh_through(Mirror::honest(self), now)
    }

    /// Refresh through `mirror` at time `now`.
    pub fn refresh_through(
        &self,
        mirror: Mirror,
        now: jiff::Timestamp,
    ) -> Result<DeviceClient, TufError> {
        let mut tuf = DeviceClient::open(self.dir.path(), mirror)?;
        tuf.refresh(now).await_blocking()?;
        Ok(tuf)
    }

    /// Refresh, then fetch and check `target` through `mirror`.
    pub fn fetch(
        &self,
        mirror: Mirror,
        target: &str,
        now: jiff::Timestamp,
    ) -> Result<Vec<u8>, TufError> {
        let mut tuf = self.refresh_through(mirror, now)?;
        let info = tuf.target(target, now).await_blocking()?;
        tuf.download(target, &info).await_blocking()
    }

    /// The version of `role` the device trusts.
    pub fn trusted_version(&self, role: &str) -> Option<u64> {
        let bytes = std::fs::read(self.dir.path().join(format!("{role}.json"))).ok()?;
        Envelope::from_bytes(&bytes).ok()?.version().ok()
    }
}

/// What the device's client fetches from: the repository's files, some replaced.
pub struct Mirror {
    metadata: PathBuf,
    targets: PathBuf,
    replaced: HashMap<String, Vec<u8>>,
}

impl Mirror {
    pub fn honest(device: &Device) -> Self {
        Self {
            metadata: device.metadata.clone(),
            targets: device.targets.clone(),
            replaced: HashMap::new(),
        }
    }

    /// Serve `bytes` for metadata file `name` (or target path `targets/<path>`).
    pub fn replace(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.replaced.insert(name.to_owned(), bytes);
        self
    }

    fn serve(&self, dir: &Path, key: String, name: &str) -> sigstore_tuf::Result<Option<Vec<u8>>> {
        if let Some(bytes) = self.replaced.get(&key) {
            return Ok(Some(bytes.clone()));
        }
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sigstore_tuf::Error::io(name.to_owned(), e)),
        }
    }
}

impl sigstore_tuf::Repository for Mirror {
    fn fetch_metadata<'a>(&'a self, name: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(async move {
            let bytes = self.serve(&self.metadata, name.to_owned(), name)?;
            bounded(bytes, max_length)
        })
    }

    fn fetch_target<'a>(&'a self, path: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(async move {
            let bytes = self.serve(&self.targets, format!("targets/{path}"), path)?;
            bounded(bytes, max_length)
        })
    }
}

/// A transport never returns more than the client allows (as the HTTP transport does).
fn bounded(bytes: Option<Vec<u8>>, max: u64) -> sigstore_tuf::Result<Option<Vec<u8>>> {
    match bytes {
        Some(b) if b.len() as u64 > max => Err(sigstore_tuf::Error::transport(format!(
            "response of {} bytes exceeds the limit of {max}",
            b.len()
        ))),
        other => Ok(other),
    }
}

/// Run a future to completion on a small runtime (the tests are synchronous).
pub trait Blocking: std::future::Future + Sized {
    fn await_blocking(self) -> Self::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(self)
    }
}

impl<F: std::future::Future> Blocking for F {}

/// The published metadata of `role` re-signed by `keys` after `edit` (what an attacker
/// holding those keys can produce).
pub fn forge(
    bytes: &[u8],
    keys: &[&RoleSigner],
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let mut file: serde_json::Value = serde_json::from_slice(bytes).expect("json");
    edit(file.get_mut("signed").expect("signed"));
    file["signatures"] = serde_json::json!([]);
    let mut envelope =
        Envelope::from_bytes(&serde_json::to_vec(&file).expect("json")).expect("envelope");
    for key in keys {
        envelope.sign(key).expect("sign");
    }
    envelope.to_bytes().expect("bytes")
}

impl Fleet {
    /// The online key the root trusts for `role` (what an attacker on the server steals).
    pub fn online_key(&self, role: &str) -> RoleSigner {
        let root = self.repo.root().expect("root");
        let keyid = root.roles[role].keyids[0].clone();
        RoleSigner::from_file(&self._dir.path().join("online").join(format!("{keyid}.pem")))
            .expect("online key")
    }
}
