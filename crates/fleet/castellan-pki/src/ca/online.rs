//! What the running service opens: the hierarchy without the root's key.
//!
//! ```text
//!  <service PKI dir>/                       held online
//!  ├── root-ca.pem                          certificate only (a root-ca.key.pem here: refused)
//!  ├── operational-ca.pem, .key.pem         key required (file or PKCS#11 token)
//!  ├── manufacturer-ca.pem [, .key.pem]     key only where this service runs the factory
//!  ├── service-ca.pem                       certificate only
//!  └── previous/operational-ca-<serial>.pem rotated out, trusted until retired
//! ```

use std::path::{Path, PathBuf};

use crate::x509::{ParsedCertificate, parse_certificate_pem, verify_signed_by};
use crate::{CaKind, KeyBackend, PkiError};

use super::open::{KeyRule, key_file, key_label, open_ca};
use super::{Ca, Pki, PkiConfig};

/// The folder of the CAs rotated out (beside the current ones).
pub(crate) const PREVIOUS_DIR: &str = "previous";

impl Pki {
    /// Open the PKI the online service uses, as handed over from the offline root
    /// (`castellan pki handover`): refuses when the root CA's private key is in reach
    /// ([`PkiError::RootKeyInReach`]) or a CA certificate is missing ([`PkiError::MissingCa`]).
    pub fn open_online(dir: &Path, backend: KeyBackend) -> Result<Pki, PkiError> {
        Pki::open_online_with(dir, backend, PkiConfig::default())
    }

    /// [`Pki::open_online`] with `config`.
    pub fn open_online_with(
        dir: &Path,
        backend: KeyBackend,
        config: PkiConfig,
    ) -> Result<Pki, PkiError> {
        Pki::open_online_rules(dir, backend, config, KeyRule::Required)
    }

    /// [`Pki::open_online_with`], the operational CA's key opened with `operational`.
    pub(super) fn open_online_rules(
        dir: &Path,
        backend: KeyBackend,
        config: PkiConfig,
        operational: KeyRule,
    ) -> Result<Pki, PkiError> {
        if let Some(location) = Pki::root_key_location(dir, &backend) {
            return Err(PkiError::RootKeyInReach { location });
        }
        let root = open_ca(
            dir,
            &backend,
            &config,
            CaKind::Root,
            None,
            KeyRule::CertificateOnly,
        )?;
        let open = |kind, rule| open_ca(dir, &backend, &config, kind, Some(&root), rule);
        let manufacturer = open(CaKind::Manufacturer, KeyRule::Optional)?;
        let operational = open(CaKind::Operational, operational)?;
        let service = open(CaKind::Service, KeyRule::CertificateOnly)?;
        Pki::assemble(dir, config, root, [manufacturer, operational, service])
    }

    /// Open any PKI directory to look at it (`castellan pki status`): every CA's key is loaded
    /// if present (file backend), none is required, and a root key is not refused.
    pub fn inspect(dir: &Path) -> Result<Pki, PkiError> {
        let backend = KeyBackend::Files;
        let config = PkiConfig::default();
        let root = open_ca(
            dir,
            &backend,
            &config,
            CaKind::Root,
            None,
            KeyRule::Optional,
        )?;
        let open = |kind| open_ca(dir, &backend, &config, kind, Some(&root), KeyRule::Optional);
        let manufacturer = open(CaKind::Manufacturer)?;
        let operational = open(CaKind::Operational)?;
        let service = open(CaKind::Service)?;
        Pki::assemble(dir, config, root, [manufacturer, operational, service])
    }

    /// Where the root CA's private key is, if it is in reach of `dir` and `backend`: the key
    /// file in the directory, or a key labelled `castellan-root-ca` in the token.
    pub fn root_key_location(dir: &Path, backend: &KeyBackend) -> Option<String> {
        let file = key_file(dir, CaKind::Root);
        if file.exists() {
            return Some(format!("file {}", file.display()));
        }
        if let KeyBackend::Pkcs11(token) = backend {
            let label = key_label(CaKind::Root);
            if token.key(&label).is_ok() {
                return Some(format!(
                    "key {label:?} in PKCS#11 token {:?}",
                    token.label()
                ));
            }
        }
        None
    }

    /// Whether `dir` holds a PKI (at least the root certificate).
    pub fn exists(dir: &Path) -> bool {
        super::open::cert_file(dir, CaKind::Root).exists()
    }
}

/// The files of the CAs of `kind` rotated out, `previous/<kind>-ca-<serial>.pem`, sorted.
pub(crate) fn previous_files(dir: &Path, kind: CaKind) -> Result<Vec<PathBuf>, PkiError> {
    let folder = dir.join(PREVIOUS_DIR);
    let prefix = format!("{}-ca-", kind.name());
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PkiError::io("previous CA folder")(e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && n.ends_with(".pem") && !n.ends_with(".key.pem")
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The certificates of the CAs of `kind` rotated out, each checked against the root.
pub(super) fn previous_cas(
    dir: &Path,
    kind: CaKind,
    root: &Ca,
) -> Result<Vec<ParsedCertificate>, PkiError> {
    previous_files(dir, kind)?
        .iter()
        .map(|path| {
            let pem =
                std::fs::read_to_string(path).map_err(PkiError::io("previous CA certificate"))?;
            let cert = parse_certificate_pem(&pem).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "a rotated-out certificate is not a PEM X.509 certificate",
            })?;
            verify_signed_by(&cert, &root.cert).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "a rotated-out certificate is not signed by the root CA",
            })?;
            Ok(cert)
        })
        .collect()
}
