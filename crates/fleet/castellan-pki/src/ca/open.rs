//! Opening the CAs in a PKI directory: load each CA's key (file or PKCS#11 token) and
//! certificate, create what is missing when the whole hierarchy is made here (the offline
//! ceremony, or the embedded demo), and check that a loaded CA can issue certificates that name
//! it byte for byte. Online, a CA may be held as its certificate alone ([`KeyRule`]).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::signer::{SubjectKey, rcgen_signer, write_file_mode};
use crate::x509::{ParsedCertificate, parse_certificate, verify_signed_by};
use crate::{CaKind, CaSigner, FileKey, PkiError};

use super::leaf::{key_id, random_serial, sign_certificate};
use super::{Ca, KeyBackend, PkiConfig};

/// What a CA's private key must be when a PKI directory is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyRule {
    /// Load it, or create the key and the certificate when neither exists (the whole hierarchy
    /// is made here: offline ceremony, embedded demo).
    Create,
    /// Load it; the certificate must exist.
    Required,
    /// Load it if present (the manufacturer CA: held online only when this service runs the
    /// factory); the certificate must exist.
    Optional,
    /// Do not load it, even if present: the certificate alone is used (root, service CA).
    CertificateOnly,
}

/// The file of a CA's key (file backend) and the label of its key (PKCS#11).
pub(super) fn key_file(dir: &Path, kind: CaKind) -> std::path::PathBuf {
    dir.join(format!("{}-ca.key.pem", kind.name()))
}

/// The PKCS#11 label of a CA's key.
pub(super) fn key_label(kind: CaKind) -> String {
    format!("castellan-{}-ca", kind.name())
}

/// The file of a CA's certificate.
pub(super) fn cert_file(dir: &Path, kind: CaKind) -> std::path::PathBuf {
    dir.join(format!("{}-ca.pem", kind.name()))
}

fn load_signer(
    dir: &Path,
    backend: &KeyBackend,
    kind: CaKind,
    cert_exists: bool,
    rule: KeyRule,
) -> Result<Option<Box<dyn CaSigner>>, PkiError> {
    if rule == KeyRule::CertificateOnly {
        return Ok(None);
    }
    Ok(match backend {
        KeyBackend::Files => {
            let key_path = key_file(dir, kind);
            if key_path.exists() {
                Some(Box::new(FileKey::load(&key_path)?))
            } else if rule == KeyRule::Optional {
                None
            } else if cert_exists || rule == KeyRule::Required {
                return Err(PkiError::BadCaCertificate {
                    ca: kind,
                    reason: "its key file is missing (restore it from backup; refusing to replace the CA)",
                });
            } else {
                let mut key = FileKey::generate();
                key.save(&key_path)?;
                Some(Box::new(key))
            }
        }
        KeyBackend::Pkcs11(token) => {
            let label = key_label(kind);
            match rule {
                KeyRule::Create if !cert_exists => Some(Box::new(token.key_or_generate(&label)?)),
                KeyRule::Optional => token
                    .key(&label)
                    .ok()
                    .map(|k| Box::new(k) as Box<dyn CaSigner>),
                _ => Some(Box::new(token.key(&label)?)),
            }
        }
    })
}

pub(super) fn open_ca(
    dir: &Path,
    backend: &KeyBackend,
    config: &PkiConfig,
    kind: CaKind,
    root: Option<&Ca>,
    rule: KeyRule,
) -> Result<Ca, PkiError> {
    let cert_path = cert_file(dir, kind);
    let cert_exists = cert_path.exists();
    if !cert_exists && rule != KeyRule::Create {
        return Err(PkiError::MissingCa {
            ca: kind,
            path: cert_path,
        });
    }
    let signer = load_signer(dir, backend, kind, cert_exists, rule)?;
    if cert_exists {
        let pem =
            std::fs::read_to_string(&cert_path).map_err(PkiError::io("CA certificate file"))?;
        let cert =
            crate::x509::parse_certificate_pem(&pem).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "not a PEM X.509 certificate",
            })?;
        if let Some(signer) = &signer
            && cert.public_key_p256 != Some(signer.public_key())
        {
            return Err(PkiError::KeyMismatch { ca: kind });
        }
        if let Some(root) = root {
            verify_signed_by(&cert, &root.cert).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "not signed by the root CA",
            })?;
        }
        let params = params_from_cert(&cert, kind)?;
        let ca = Ca {
            kind,
            cert,
            params,
            signer,
        };
        check_issuer_name_reproduced(&ca)?;
        return Ok(ca);
    }
    let signer = signer.ok_or(PkiError::CaKeyOffline { ca: kind })?;
    let public_key = signer.public_key();
    let params = ca_params(kind, config, &public_key)?;
    let adapter = rcgen_signer(signer.as_ref());
    let der = match root {
        None => params
            .self_signed(&adapter)
            .map_err(|e| adapter.error(e))?
            .der()
            .to_vec(),
        Some(root) => sign_certificate(root, &params, public_key)?.der,
    };
    let cert = parse_certificate(&der)?;
    write_file_mode(
        &cert_path,
        cert.pem().as_bytes(),
        0o644,
        "CA certificate file",
    )?;
    Ok(Ca {
        kind,
        cert,
        params,
        signer: Some(signer),
    })
}

/// The parameters of a new CA certificate of `kind` for `public_key`: its fixed name, 25 years
/// (root, pathLen 1) or 20 years (issuing CAs, pathLen 0), certificate and CRL signing.
pub(super) fn ca_params(
    kind: CaKind,
    config: &PkiConfig,
    public_key: &[u8; 65],
) -> Result<CertificateParams, PkiError> {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        match kind {
            CaKind::Root => "Castellan Root CA",
            CaKind::Manufacturer => "Castellan Manufacturer CA",
            CaKind::Operational => "Castellan Operational CA",
            CaKind::Service => "Castellan Service CA",
        },
    );
    dn.push(DnType::OrganizationName, config.organization.as_str());
    let root = kind == CaKind::Root;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(if root { 25 * 365 } else { 20 * 365 });
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(if root { 1 } else { 0 }));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(public_key));
    params.use_authority_key_identifier_extension = !root;
    Ok(params)
}

/// Rebuild the issuer parameters (name, key identifier, key usages) of a CA from its
/// certificate. Names are rebuilt attribute by attribute with their original string types.
fn params_from_cert(cert: &ParsedCertificate, kind: CaKind) -> Result<CertificateParams, PkiError> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::prelude::FromDer as _;
    let bad = |reason| PkiError::BadCaCertificate { ca: kind, reason };
    let (_, x509) = x509_parser::certificate::X509Certificate::from_der(&cert.der)
        .map_err(|_| bad("not a DER certificate"))?;
    let mut dn = DistinguishedName::new();
    for rdn in x509.subject().iter() {
        let mut attrs = rdn.iter();
        let attr = attrs.next().ok_or_else(|| bad("empty name component"))?;
        if attrs.next().is_some() {
            return Err(bad("multi-valued name components are not supported"));
        }
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("name attribute OID too large"))?
            .collect();
        let text = std::str::from_utf8(attr.attr_value().data)
            .map_err(|_| bad("name attribute is not UTF-8"))?;
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_string()),
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| bad("bad PrintableString in name"))?,
            ),
            _ => return Err(bad("name attributes must be UTF8String or PrintableString")),
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    let ski = x509
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .ok_or_else(|| bad("no subjectKeyIdentifier"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Certificates issued by a loaded CA must carry its subject name byte for byte (TLS stacks
/// match names exactly): issue a throw-away certificate with a throw-away key and compare.
fn check_issuer_name_reproduced(ca: &Ca) -> Result<(), PkiError> {
    let throwaway = FileKey::generate();
    let pk = CaSigner::public_key(&throwaway);
    let adapter = rcgen_signer(&throwaway);
    let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
    let mut params = CertificateParams::default();
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&pk));
    params.serial_number = Some(random_serial()?);
    let cert = params
        .signed_by(&SubjectKey(pk), &issuer)
        .map_err(|e| adapter.error(e))?;
    let parsed = parse_certificate(cert.der())?;
    if parsed.issuer_der != ca.cert.subject_der {
        return Err(PkiError::BadCaCertificate {
            ca: ca.kind,
            reason: "its subject name cannot be reproduced exactly in issued certificates",
        });
    }
    Ok(())
}
