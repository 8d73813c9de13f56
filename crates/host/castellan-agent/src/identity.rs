//! Device keys and the files that hold a device's certificates.
//!
//! A [`DeviceKey`] signs SHA-256 digests with ECDSA P-256 and tells its public key; that is all
//! CSRs and TLS client authentication need. Two backends:
//!
//! | backend | where the private key lives | used for |
//! |---|---|---|
//! | [`ServiceKey`] | the device's crypto service (`sign_hash`), never exported | simulated MCUs |
//! | [`PemKey`] | a PKCS#8 PEM file on disk | Linux-class devices, interop tests |
//!
//! ```text
//!  identity/
//!    device.json       serial, device class, firmware version, key backend
//!    idevid.pem        factory identity (manufacturer CA)      chain.pem   manufacturer CA + root
//!    mqtt-ca.pem       CA bundle that signs the server certificate
//!    ldevid.pem        operational identity (operational CA)   ldevid-chain.pem
//!    policy.json       the topics the server granted at onboarding
//!    update.json       the update in progress (offer and phase), while there is one
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use castellan_gate_api::{SecureGate as _, psa};
use castellan_services::KeyId;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{AgentError, read_text, write};
use crate::secure::SecureWorld;

/// Persistent key id of the operational (LDevID) key in the crypto service (user range).
pub const KEY_ID_OPERATIONAL: KeyId = 0x0000_1d01;

/// An ECDSA P-256 key that signs SHA-256 digests without showing its private half.
pub trait DeviceKey: Send + Sync + std::fmt::Debug {
    /// The public key, SEC1 uncompressed (65 bytes).
    fn public_key(&self) -> [u8; 65];
    /// ECDSA P-256 signature `r ‖ s` over a SHA-256 digest.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], AgentError>;
}

/// A key held by the crypto service of a simulated device.
#[derive(Debug, Clone)]
pub struct ServiceKey {
    world: SecureWorld,
    id: KeyId,
    public: [u8; 65],
}

impl ServiceKey {
    /// The device identity key (IDevID), generated in the crypto service if it does not exist
    /// yet (`provision_identity_key`).
    pub fn identity(world: &SecureWorld) -> Result<ServiceKey, AgentError> {
        let public = world.with_gate(|g| g.identity_key())?;
        Ok(ServiceKey {
            world: world.clone(),
            id: castellan_services::KEY_ID_DEVICE_IDENTITY,
            public,
        })
    }

    /// The existing key `id` (its public key read from the service).
    pub fn existing(world: &SecureWorld, id: KeyId) -> Result<ServiceKey, AgentError> {
        let public = world.with_gate(|g| {
            let mut out = [0u8; 65];
            g.export_public_key(id, &mut out)?;
            Ok(out)
        })?;
        Ok(ServiceKey {
            world: world.clone(),
            id,
            public,
        })
    }

    /// A new operational key: any previous key under `id` is destroyed, then a persistent
    /// P-256 signing key is generated inside the service (no `EXPORT` usage).
    pub fn generate_operational(world: &SecureWorld, id: KeyId) -> Result<ServiceKey, AgentError> {
        world.with_gate(|g| {
            match g.destroy_key(id) {
                Ok(()) => {}
                Err(e) if e.status() == psa::ERROR_DOES_NOT_EXIST => {}
                Err(e) => return Err(e),
            }
            // A persistent P-256 signing key, sign and verify with ECDSA SHA-256, no `EXPORT`.
            g.generate_signing_key(id)
        })?;
        Self::existing(world, id)
    }

    /// The key's identifier in the crypto service.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl DeviceKey for ServiceKey {
    fn public_key(&self) -> [u8; 65] {
        self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], AgentError> {
        let (id, digest) = (self.id, *digest);
        self.world.with_gate(|g| g.sign_hash(id, &digest))
    }
}

/// A key in a PKCS#8 PEM file (for Linux-class devices whose identity is a file, and interop
/// tests).
pub struct PemKey {
    key: p256::ecdsa::SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for PemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PemKey {
    /// Loads the P-256 key in `path`, or generates one there (mode 0600) when the file does not
    /// exist.
    pub fn load_or_generate(path: &Path) -> Result<PemKey, AgentError> {
        if path.exists() {
            let pem = read_text(path)?;
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| AgentError::pki(format!("{}: not a P-256 key", path.display()), e))?;
            return Ok(PemKey {
                key,
                path: path.to_path_buf(),
            });
        }
        use p256::elliptic_curve::Generate as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        let key = p256::ecdsa::SigningKey::generate_from_rng(&mut rng);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| AgentError::pki("cannot encode the new key", e))?;
        write(path, pem.as_bytes())?;
        restrict_permissions(path)?;
        Ok(PemKey {
            key,
            path: path.to_path_buf(),
        })
    }
}

impl DeviceKey for PemKey {
    fn public_key(&self) -> [u8; 65] {
        let point = self.key.verifying_key().to_sec1_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(point.as_bytes());
        out
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], AgentError> {
        let sig: p256::ecdsa::Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| AgentError::pki("signing failed", e))?;
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        AgentError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<(), AgentError> {
    Ok(())
}

/// A PKCS#10 CSR (DER) for `key` with subject `CN=common_name`, signed by the key itself
/// (inside the crypto service for a [`ServiceKey`]).
pub fn build_csr(key: &dyn DeviceKey, common_name: &str) -> Result<Vec<u8>, AgentError> {
    // serialNumber is a PrintableString, which has no '_': only add it when the serial fits.
    let printable = common_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-. ".contains(&b));
    let serial = printable.then_some(common_name);
    castellan_x509::build_csr(&key.public_key(), common_name, serial, |msg: &[u8]| {
        let digest: [u8; 32] = Sha256::digest(msg).into();
        key.sign_digest(&digest)
    })
    .map_err(|e| AgentError::pki("cannot build the CSR", e))
}

/// Which backend holds a device's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeyStorage {
    /// The crypto service of the simulated device in the same directory.
    Service,
    /// PEM files (identity and operational keys) in the identity directory.
    PemFile {
        /// The identity key file.
        identity: PathBuf,
    },
}

/// What the factory recorded about a device (`identity/device.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Serial number = device id = certificate CN.
    pub serial: String,
    /// Device class.
    pub device_class: String,
    /// Firmware version at the factory.
    pub firmware_version: String,
    /// Where the keys live.
    pub keys: KeyStorage,
}

/// The identity files of a device, under `<device dir>/identity/`.
#[derive(Debug, Clone)]
pub struct IdentityFiles {
    dir: PathBuf,
}

impl IdentityFiles {
    /// The identity directory of the device in `device_dir`.
    pub fn of(device_dir: &Path) -> IdentityFiles {
        IdentityFiles {
            dir: device_dir.join("identity"),
        }
    }

    /// The identity directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `device.json`.
    pub fn record_path(&self) -> PathBuf {
        self.dir.join("device.json")
    }
    /// `idevid.pem`.
    pub fn idevid(&self) -> PathBuf {
        self.dir.join("idevid.pem")
    }
    /// `chain.pem` (manufacturer CA and root).
    pub fn chain(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }
    /// `mqtt-ca.pem` (the CA bundle that signs the server certificate).
    pub fn mqtt_ca(&self) -> PathBuf {
        self.dir.join("mqtt-ca.pem")
    }
    /// `ldevid.pem`.
    pub fn ldevid(&self) -> PathBuf {
        self.dir.join("ldevid.pem")
    }
    /// `ldevid-chain.pem` (operational CA and root).
    pub fn ldevid_chain(&self) -> PathBuf {
        self.dir.join("ldevid-chain.pem")
    }
    /// `policy.json`.
    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.json")
    }
    /// `operational-key.pem` (PEM backend only).
    pub fn operational_key_pem(&self) -> PathBuf {
        self.dir.join("operational-key.pem")
    }

    /// Reads `device.json`.
    pub fn record(&self) -> Result<DeviceRecord, AgentError> {
        let path = self.record_path();
        if !path.exists() {
            return Err(AgentError::NotProvisioned(format!(
                "{} is missing: run `castellan factory provision` first",
                path.display()
            )));
        }
        serde_json::from_str(&read_text(&path)?)
            .map_err(|e| AgentError::device(path.display().to_string(), e))
    }

    /// Writes `device.json`.
    pub fn write_record(&self, record: &DeviceRecord) -> Result<(), AgentError> {
        let json = serde_json::to_string_pretty(record)
            .map_err(|e| AgentError::device("cannot encode the device record", e))?;
        write(&self.record_path(), json.as_bytes())
    }

    /// The agent's update journal (which campaign the device works on, across reboots).
    pub fn update_journal(&self) -> PathBuf {
        self.dir.join("update.json")
    }

    /// The device's TUF trust anchor (`tuf/root.json`, from the factory or `--tuf-root`); the
    /// TUF client keeps its trusted metadata beside it.
    pub fn tuf_root(&self) -> PathBuf {
        self.dir.join("tuf").join(castellan_tuf::client::ROOT_FILE)
    }

    /// True when the device holds an LDevID.
    pub fn is_onboarded(&self) -> bool {
        self.ldevid().exists()
    }
}

/// Opens the key of `kind` (identity or operational) a device record names. The operational key
/// must exist (it is made at onboarding).
pub fn open_key(
    record: &DeviceRecord,
    files: &IdentityFiles,
    world: Option<&SecureWorld>,
    operational: bool,
) -> Result<Arc<dyn DeviceKey>, AgentError> {
    match (&record.keys, world) {
        (KeyStorage::Service, Some(w)) => Ok(Arc::new(if operational {
            ServiceKey::existing(w, KEY_ID_OPERATIONAL)?
        } else {
            ServiceKey::identity(w)?
        })),
        (KeyStorage::Service, None) => Err(AgentError::InvalidInput(
            "the keys live in the simulated device's crypto service, which is not running".into(),
        )),
        (KeyStorage::PemFile { identity }, _) => {
            let path = if operational {
                files.operational_key_pem()
            } else {
                identity.clone()
            };
            if !path.exists() {
                return Err(AgentError::NotProvisioned(format!(
                    "{} is missing",
                    path.display()
                )));
            }
            Ok(Arc::new(PemKey::load_or_generate(&path)?))
        }
    }
}
