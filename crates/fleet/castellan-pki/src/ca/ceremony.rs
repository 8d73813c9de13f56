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
use crate::x509::{der_to_pem, parse_certificate_pem, pem_to_der, verify_csr};
use crate::{CaKind, CaSigner, KeyBackend, PkiConfig, PkiError, RevocationReason, RevokedCert};

use super::Pki;
use super::leaf::sign_certificate;
use super::online::{PREVIOUS_DIR, previous_files};
use super::open::{KeyRule, ca_params, cert_file, key_file};

/// The operational CA's certificate request, in the service's PKI directory.
pub const OPERATIONAL_CSR_FILE: &str = "operational-ca.csr.pem";

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
    // The operational CA's key may live in the service's token (sign_operational_csr).
    let operational = if cert_file(offline, CaKind::Operational).exists()
        && !key_file(offline, CaKind::Operational).exists()
    {
        KeyRule::CertificateOnly
    } else {
        KeyRule::Create
    };
    Pki::init_rules(
        offline,
        KeyBackend::Files,
        PkiConfig::default(),
        operational,
    )
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
    // The operational key: from the offline directory, unless it lives in the service's token.
    let operational_key = key_file(offline, CaKind::Operational).exists();
    if operational_key {
        copy(
            key_file(offline, CaKind::Operational),
            key_file(service_dir, CaKind::Operational),
            0o600,
        )?;
    }
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
    if !operational_key {
        stale.push(key_file(service_dir, CaKind::Operational));
    }
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
    // What was handed over must open as the service will open it (its token holds the
    // operational key when none was handed over).
    let rule = if operational_key {
        KeyRule::Required
    } else {
        KeyRule::CertificateOnly
    };
    Pki::open_online_rules(service_dir, KeyBackend::Files, PkiConfig::default(), rule)?;
    Ok(report)
}

/// Rotate the operational CA in the offline hierarchy: the current one moves to `previous/`
/// (still trusted for its LDevIDs), the root signs a new one. Returns the old and new serials
/// (hex). Hand the result over to the service and restart it.
pub fn rotate_operational(offline: &Path) -> Result<(String, String), PkiError> {
    let pki = open_offline(offline)?;
    let old = hex::encode(&pki.ca_certificate(CaKind::Operational).serial);
    drop(pki);
    let with_key = key_file(offline, CaKind::Operational).exists();
    retire_current_operational(offline, &old, with_key)?;
    let pki = Pki::init(offline, KeyBackend::Files)?;
    let new = hex::encode(&pki.ca_certificate(CaKind::Operational).serial);
    Ok((old, new))
}

/// On the service's side: a certificate request for the operational CA whose key `key` holds
/// (a key made in the service's PKCS#11 token), written to `operational-ca.csr.pem` in
/// `service_dir`. Returns its path; the offline root signs it with [`sign_operational_csr`].
pub fn request_operational(service_dir: &Path, key: &dyn CaSigner) -> Result<PathBuf, PkiError> {
    let csr = crate::x509::build_csr(&key.public_key(), "Castellan Operational CA", None, |m| {
        key.sign(m)
    })?;
    create_private_dir(service_dir)?;
    let path = service_dir.join(OPERATIONAL_CSR_FILE);
    write_file_mode(
        &path,
        der_to_pem("CERTIFICATE REQUEST", &csr).as_bytes(),
        0o644,
        "operational CA request",
    )?;
    Ok(path)
}

/// On the offline side: the root signs an operational CA certificate for the key of `csr_pem`
/// (its self-signature checked; the name and extensions are the root's choice), which becomes
/// the current operational CA; the one it replaces moves to `previous/` as in
/// [`rotate_operational`]. Returns the old serial and the new one (hex). Hand over
/// afterwards: the service's token holds the key.
pub fn sign_operational_csr(offline: &Path, csr_pem: &str) -> Result<(String, String), PkiError> {
    let pki = open_offline(offline)?;
    let csr = verify_csr(&pem_to_der("CERTIFICATE REQUEST", csr_pem)?)?;
    let params = ca_params(CaKind::Operational, &PkiConfig::default(), &csr.public_key)?;
    let cert = sign_certificate(&pki.root, &params, csr.public_key)?;
    let old = hex::encode(&pki.ca_certificate(CaKind::Operational).serial);
    let old_had_key = key_file(offline, CaKind::Operational).exists();
    drop(pki);
    retire_current_operational(offline, &old, old_had_key)?;
    write_file_mode(
        &cert_file(offline, CaKind::Operational),
        cert.pem.as_bytes(),
        0o644,
        "operational CA certificate",
    )?;
    open_offline(offline)?;
    Ok((old, hex::encode(&cert.serial)))
}

/// Move the current operational CA (certificate, and key if held here) to `previous/`.
fn retire_current_operational(
    offline: &Path,
    serial: &str,
    with_key: bool,
) -> Result<(), PkiError> {
    let previous = offline.join(PREVIOUS_DIR);
    create_private_dir(&previous)?;
    let name = format!("{}-ca-{serial}", CaKind::Operational.name());
    rename(
        &cert_file(offline, CaKind::Operational),
        &previous.join(format!("{name}.pem")),
    )?;
    if with_key {
        rename(
            &key_file(offline, CaKind::Operational),
            &previous.join(format!("{name}.key.pem")),
        )?;
    }
    Ok(())
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
