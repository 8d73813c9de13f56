//! The offline side of the PKI: what runs on the machine (or token) that holds the root and
//! that the service never sees. The root signs the issuing CAs there, and the service is handed
//! only what it must use online.
//!
//! ```text
//!  offline dir (Pki::init)                      service PKI dir (Pki::open_online)
//!  root-ca.pem + key ─────────── certificate ──▶ root-ca.pem
//!  operational-ca.pem + key ─── both ─────────▶ operational-ca.pem + key
//!  manufacturer-ca.pem + key ── certificate, key only if the factory is served here
//!  service-ca.pem + key ─────── certificate ──▶ service-ca.pem
//!  previous/operational-ca-<serial>.pem (+key)  certificates ──▶ previous/
//!  retired/…                   (not handed over: no longer trusted)
//!  root-crl.pem (retired issuing CAs) ────────▶ root-crl.pem
//! ```
//!
//! Rotation of the operational CA ([`rotate_operational`]): the current CA moves to
//! `previous/`, the root signs a new one; after the next hand-over the service issues LDevIDs
//! (and its TLS certificate) with the new CA and still accepts the LDevIDs of the old one,
//! until [`retire`] takes it out of the hand-over and lists it in the root's CRL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::signer::write_file_mode;
use crate::x509::parse_certificate_pem;
use crate::{CaKind, KeyBackend, PkiError, RevocationReason, RevokedCert};

use super::Pki;
use super::online::{PREVIOUS_DIR, previous_files};
use super::open::{cert_file, key_file};

/// The folder of retired CAs in the offline directory.
pub const RETIRED_DIR: &str = "retired";
/// The root's CRL (the issuing CAs it retired), PEM, in both directories.
pub const ROOT_CRL_FILE: &str = "root-crl.pem";
/// How long a root CRL is valid: it is signed offline, so rarely.
pub const ROOT_CRL_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// What [`hand_over`] wrote into the service's PKI directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOverReport {
    /// Files written (certificates, the operational key, the manufacturer key if asked).
    pub written: Vec<PathBuf>,
    /// Files removed because the service must no longer hold them.
    pub removed: Vec<PathBuf>,
}

/// Open the offline hierarchy in `offline`: it must exist (`castellan pki init` made it).
pub fn open_offline(offline: &Path) -> Result<Pki, PkiError> {
    if !Pki::exists(offline) || !key_file(offline, CaKind::Root).exists() {
        return Err(PkiError::MissingCa {
            ca: CaKind::Root,
            path: key_file(offline, CaKind::Root),
        });
    }
    Pki::init(offline, KeyBackend::Files)
}

/// Hand the service, in `service_dir`, what it must use online from the offline hierarchy in
/// `offline`: every CA certificate, the operational CA's key, the manufacturer CA's key only
/// when `manufacturer_key` (this service runs the factory), the operational CAs rotated out
/// (certificates) and the root's CRL. Keys the service must not hold are removed. Refuses a
/// `service_dir` that holds a root key (an embedded demo PKI: start from a fresh directory).
pub fn hand_over(
    offline: &Path,
    service_dir: &Path,
    manufacturer_key: bool,
) -> Result<HandOverReport, PkiError> {
    open_offline(offline)?;
    if let Some(location) = Pki::root_key_location(service_dir, &KeyBackend::Files) {
        return Err(PkiError::RootKeyInReach { location });
    }
    create_private_dir(service_dir)?;
    let mut report = HandOverReport {
        written: Vec::new(),
        removed: Vec::new(),
    };
    let mut copy = |from: PathBuf, to: PathBuf, mode: u32| -> Result<(), PkiError> {
        let data = std::fs::read(&from).map_err(PkiError::io("offline PKI file"))?;
        write_file_mode(&to, &data, mode, "service PKI file")?;
        report.written.push(to);
        Ok(())
    };
    for kind in [
        CaKind::Root,
        CaKind::Manufacturer,
        CaKind::Operational,
        CaKind::Service,
    ] {
        copy(
            cert_file(offline, kind),
            cert_file(service_dir, kind),
            0o644,
        )?;
    }
    copy(
        key_file(offline, CaKind::Operational),
        key_file(service_dir, CaKind::Operational),
        0o600,
    )?;
    if manufacturer_key {
        copy(
            key_file(offline, CaKind::Manufacturer),
            key_file(service_dir, CaKind::Manufacturer),
            0o600,
        )?;
    }
    let crl = offline.join(ROOT_CRL_FILE);
    if crl.exists() {
        copy(crl, service_dir.join(ROOT_CRL_FILE), 0o644)?;
    }
    let previous = service_dir.join(PREVIOUS_DIR);
    let mut stale: Vec<PathBuf> = previous_files(service_dir, CaKind::Operational)?;
    if !manufacturer_key {
        stale.push(key_file(service_dir, CaKind::Manufacturer));
    }
    stale.push(key_file(service_dir, CaKind::Service));
    for path in stale {
        if path.exists() {
            std::fs::remove_file(&path).map_err(PkiError::io("stale service PKI file"))?;
            report.removed.push(path);
        }
    }
    let from_offline = previous_files(offline, CaKind::Operational)?;
    if !from_offline.is_empty() {
        create_private_dir(&previous)?;
    }
    for path in from_offline {
        if let Some(name) = path.file_name() {
            copy(path.clone(), previous.join(name), 0o644)?;
        }
    }
    // What was handed over must open as the service will open it.
    Pki::open_online(service_dir, KeyBackend::Files)?;
    Ok(report)
}

/// Rotate the operational CA in the offline hierarchy: the current one moves to `previous/`
/// (still trusted for its LDevIDs), the root signs a new one. Returns the old and new serials
/// (hex). Hand the result over to the service and restart it.
pub fn rotate_operational(offline: &Path) -> Result<(String, String), PkiError> {
    let pki = open_offline(offline)?;
    let old = hex::encode(&pki.ca_certificate(CaKind::Operational).serial);
    drop(pki);
    let previous = offline.join(PREVIOUS_DIR);
    create_private_dir(&previous)?;
    let name = format!("{}-ca-{old}", CaKind::Operational.name());
    rename(
        &cert_file(offline, CaKind::Operational),
        &previous.join(format!("{name}.pem")),
    )?;
    rename(
        &key_file(offline, CaKind::Operational),
        &previous.join(format!("{name}.key.pem")),
    )?;
    let pki = Pki::init(offline, KeyBackend::Files)?;
    let new = hex::encode(&pki.ca_certificate(CaKind::Operational).serial);
    Ok((old, new))
}

/// Retire an operational CA rotated out (`serial`, hex as [`rotate_operational`] printed it):
/// it moves to `retired/`, is no longer handed over (its LDevIDs stop working at the service's
/// next start), and the root's CRL is signed again to list it. Returns the CRL's path.
pub fn retire(offline: &Path, serial: &str) -> Result<PathBuf, PkiError> {
    let serial = serial.trim().to_ascii_lowercase();
    let name = format!("{}-ca-{serial}", CaKind::Operational.name());
    let from = offline.join(PREVIOUS_DIR).join(format!("{name}.pem"));
    if !from.exists() {
        return Err(PkiError::MissingCa {
            ca: CaKind::Operational,
            path: from,
        });
    }
    let retired = offline.join(RETIRED_DIR);
    create_private_dir(&retired)?;
    rename(&from, &retired.join(format!("{name}.pem")))?;
    let key = offline.join(PREVIOUS_DIR).join(format!("{name}.key.pem"));
    if key.exists() {
        rename(&key, &retired.join(format!("{name}.key.pem")))?;
    }
    sign_root_crl(offline)
}

/// Sign the root's CRL again, listing every retired issuing CA (reason superseded), into
/// `root-crl.pem` of the offline directory. Returns its path.
pub fn sign_root_crl(offline: &Path) -> Result<PathBuf, PkiError> {
    let pki = open_offline(offline)?;
    let mut entries = Vec::new();
    if let Ok(dir) = std::fs::read_dir(offline.join(RETIRED_DIR)) {
        for entry in dir.filter_map(Result::ok) {
            let path = entry.path();
            let is_cert = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".pem") && !n.ends_with(".key.pem"));
            if !is_cert {
                continue;
            }
            let pem = std::fs::read_to_string(&path).map_err(PkiError::io("retired CA"))?;
            let cert = parse_certificate_pem(&pem)?;
            let retired_at = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            entries.push(RevokedCert {
                serial: cert.serial,
                reason: RevocationReason::Superseded,
                revoked_at: retired_at,
            });
        }
    }
    let crl = pki.crl(CaKind::Root, &entries, ROOT_CRL_VALIDITY)?;
    let path = offline.join(ROOT_CRL_FILE);
    write_file_mode(&path, crl.pem.as_bytes(), 0o644, "root CRL")?;
    Ok(path)
}

fn rename(from: &Path, to: &Path) -> Result<(), PkiError> {
    std::fs::rename(from, to).map_err(PkiError::io("offline PKI file"))
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).map_err(PkiError::io("PKI directory"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(PkiError::io("PKI directory"))
}
