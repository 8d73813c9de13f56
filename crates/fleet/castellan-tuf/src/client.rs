//! The device-side TUF client: sigstore-tuf's updater over a directory of trusted metadata.
//!
//! ```text
//!   repository (HTTPS / MQTT / memory) ──fetch──▶ Updater (sigstore-tuf: the TUF workflow)
//!                                                   │ verified files only
//!                                                   ▼
//!                                          TrustedDir: root.json, timestamp.json, …
//! ```
//!
//! The workflow itself (root chain, timestamp, snapshot, targets, delegations; thresholds,
//! versions, expiry, hashes, lengths) is the client crate's: this module only keeps the trusted
//! files under their plain names, bounds each fetch in time (slow retrieval) and answers the
//! questions the update client asks: "what does TUF list for this target?".

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest as _;
use sigstore_tuf::cache::MetadataStore;
use sigstore_tuf::{HttpRepository, Repository, TargetFile, TrustedMetadataSet, Updater};

use crate::error::{TufError, io};

/// The file name of the trusted root in a trusted directory.
pub const ROOT_FILE: &str = "root.json";

/// Time limits on one fetch: a repository (or a man in the middle) that stalls is cut off
/// (TUF's slow-retrieval attack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Connecting to the repository.
    pub connect: Duration,
    /// Between two reads of a response.
    pub read: Duration,
    /// A whole request, headers to last byte.
    pub total: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(15),
            total: Duration::from_secs(60),
        }
    }
}

/// Trust `root` in `trusted_dir` (the device's trust anchor): it must be a root signed by its
/// own threshold of keys. No network.
pub fn init(trusted_dir: &Path, root: &[u8]) -> Result<(), TufError> {
    TrustedMetadataSet::from_root(root)?;
    std::fs::create_dir_all(trusted_dir).map_err(|e| io(trusted_dir.display(), e))?;
    let path = trusted_dir.join(ROOT_FILE);
    std::fs::write(&path, root).map_err(|e| io(path.display(), e))
}

/// A TUF client bound to a repository and a trusted directory.
pub struct DeviceClient {
    updater: Updater,
}

impl std::fmt::Debug for DeviceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceClient")
            .field("root_version", &self.updater.trusted().root().version)
            .finish()
    }
}

impl DeviceClient {
    /// Open the client over any transport; the trusted root is read from `trusted_dir`.
    pub fn open(
        trusted_dir: &Path,
        repository: impl Repository + 'static,
    ) -> Result<Self, TufError> {
        let root_path = trusted_dir.join(ROOT_FILE);
        let root = std::fs::read(&root_path).map_err(|e| io(root_path.display(), e))?;
        let updater = Updater::new(repository, &root)?.with_store(TrustedDir {
            dir: trusted_dir.to_path_buf(),
        });
        Ok(Self { updater })
    }

    /// Open the client over HTTP(S): metadata under `metadata_url`, targets under
    /// `targets_url` (default: `<metadata_url>/targets/`), each fetch bounded by `limits`.
    pub fn open_http(
        trusted_dir: &Path,
        metadata_url: &str,
        targets_url: Option<&str>,
        limits: FetchLimits,
    ) -> Result<Self, TufError> {
        let http = sigstore_tuf::reqwest::Client::builder()
            .connect_timeout(limits.connect)
            .read_timeout(limits.read)
            .timeout(limits.total)
            .build()
            .map_err(|e| TufError::Refused(format!("HTTP client: {e}")))?;
        Self::open_with_http(trusted_dir, metadata_url, targets_url, http)
    }

    /// Open the client over a caller's HTTP client (its TLS roots; set its time limits, see
    /// [`FetchLimits`]).
    pub fn open_with_http(
        trusted_dir: &Path,
        metadata_url: &str,
        targets_url: Option<&str>,
        http: sigstore_tuf::reqwest::Client,
    ) -> Result<Self, TufError> {
        let mut repository = HttpRepository::new(metadata_url)?.with_http_client(http);
        if let Some(url) = targets_url {
            repository = repository.with_targets_base(url)?;
        }
        Self::open(trusted_dir, repository)
    }

    /// Run the TUF refresh: root chain, timestamp, snapshot, top-level targets.
    pub async fn refresh(&mut self, now: jiff::Timestamp) -> Result<(), TufError> {
        Ok(self.updater.refresh(now).await?)
    }

    /// What the trusted targets metadata lists for `target` (walking delegations).
    /// Call [`DeviceClient::refresh`] first.
    pub async fn target(
        &mut self,
        target: &str,
        now: jiff::Timestamp,
    ) -> Result<TargetFile, TufError> {
        self.updater
            .get_target_info(target, now)
            .await?
            .ok_or_else(|| TufError::TargetNotFound(target.to_owned()))
    }

    /// Download `target` and check it against `info` (length and hashes).
    pub async fn download(&self, target: &str, info: &TargetFile) -> Result<Vec<u8>, TufError> {
        Ok(self.updater.download_target(info, target).await?)
    }

    /// The verified metadata.
    pub fn trusted(&self) -> &TrustedMetadataSet {
        self.updater.trusted()
    }
}

/// The TUF target name of a release's SUIT envelope: `<class>/<release>.suit`.
pub fn release_target(class: &str, release: &str) -> String {
    format!("{class}/{release}.suit")
}

impl DeviceClient {
    /// Refresh, then check that `envelope` (a SUIT envelope offered to a device of `class`)
    /// is exactly what the class's targets metadata lists for `release`: both chains must
    /// agree before the secure services see the offer.
    pub async fn check_release(
        &mut self,
        class: &str,
        release: &str,
        envelope: &[u8],
        now: jiff::Timestamp,
    ) -> Result<(), TufError> {
        self.refresh(now).await?;
        let target = release_target(class, release);
        let info = self.target(&target, now).await?;
        if matches_target(envelope, &info) {
            Ok(())
        } else {
            Err(TufError::NotListed {
                target,
                sha256: hex::encode(sha2::Sha256::digest(envelope)),
            })
        }
    }
}

/// Whether `bytes` are the target `info` lists: its length and every hash it pins that this
/// client knows (at least one must be known).
pub fn matches_target(bytes: &[u8], info: &TargetFile) -> bool {
    if u64::try_from(bytes.len()).ok() != Some(info.length) {
        return false;
    }
    let mut checked = 0;
    for (algorithm, expected) in &info.hashes {
        let actual = match algorithm.as_str() {
            "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
            "sha512" => hex::encode(sha2::Sha512::digest(bytes)),
            _ => continue,
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return false;
        }
        checked += 1;
    }
    checked > 0
}

/// Where a target is kept under `dir`: its path, or its last component if the path would
/// leave `dir`.
pub fn target_path(dir: &Path, target: &str) -> PathBuf {
    let relative = Path::new(target.trim_start_matches('/'));
    let escapes = relative
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)));
    if escapes {
        let name = relative
            .file_name()
            .map_or_else(|| "target".into(), |n| n.to_owned());
        dir.join(name)
    } else {
        dir.join(relative)
    }
}

/// The trusted directory: every verified top-level or delegated role under its plain name
/// (`root.json`, `snapshot.json`, `<role>.json`, the role name percent-encoded by the client).
/// Versioned copies (`2.root.json`) and anything in a sub-directory (root history, target
/// cache) are not kept.
struct TrustedDir {
    dir: PathBuf,
}

impl MetadataStore for TrustedDir {
    fn load(&self, name: &str) -> sigstore_tuf::Result<Option<Vec<u8>>> {
        if !Self::keeps(name) {
            return Ok(None);
        }
        match std::fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(sigstore_tuf::Error::io(format!("reading {name}"), e)),
        }
    }

    fn store(&self, name: &str, bytes: &[u8]) -> sigstore_tuf::Result<()> {
        if !Self::keeps(name) {
            return Ok(());
        }
        // Write then rename: a power cut leaves the old file or the new one.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(name)))
            .map_err(|e| sigstore_tuf::Error::io(format!("writing {name}"), e))
    }
}

impl TrustedDir {
    fn keeps(name: &str) -> bool {
        let versioned = name
            .split('.')
            .next()
            .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()));
        !name.contains('/') && !name.contains('\\') && !versioned
    }
}
