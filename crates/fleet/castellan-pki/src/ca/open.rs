//! Opening the CAs in the state directory: load each CA's key (file or PKCS#11 token) and
//! certificate, create what is missing on first run, and check that a loaded CA can issue
//! certificates that name it byte for byte.

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

pub(super) fn open_ca(
    dir: &Path,
    backend: &KeyBackend,
    config: &PkiConfig,
    kind: CaKind,
    root: Option<&Ca>,
) -> Result<Ca, PkiError> {
    let cert_path = dir.join(format!("{}-ca.pem", kind.name()));
    let cert_exists = cert_path.exists();
    let signer: Box<dyn CaSigner> = match backend {
        KeyBackend::Files => {
            let key_path = dir.join(format!("{}-ca.key.pem", kind.name()));
            if key_path.exists() {
                Box::new(FileKey::load(&key_path)?)
            } else if cert_exists {
                return Err(PkiError::BadCaCertificate {
                    ca: kind,
                    reason: "its key file is missing (restore it from backup; refusing to replace the CA)",
                });
            } else {
                let mut key = FileKey::generate();
                key.save(&key_path)?;
                Box::new(key)
            }
        }
        KeyBackend::Pkcs11(token) => {
            let label = format!("castellan-{}-ca", kind.name());
            if cert_exists {
                Box::new(token.key(&label)?)
            } else {
                Box::new(token.key_or_generate(&label)?)
            }
        }
    };
    let public_key = signer.public_key();
    if cert_exists {
        let pem =
            std::fs::read_to_string(&cert_path).map_err(PkiError::io("CA certificate file"))?;
        let cert =
            crate::x509::parse_certificate_pem(&pem).map_err(|_| PkiError::BadCaCertificate {
                ca: kind,
                reason: "not a PEM X.509 certificate",
            })?;
        if cert.public_key_p256 != Some(public_key) {
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
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        match kind {
            CaKind::Root => "Castellan Root CA",
            CaKind::Manufacturer => "Castellan Manufacturer CA",
            CaKind::Operational => "Castellan Operational CA",
        },
    );
    dn.push(DnType::OrganizationName, config.organization.as_str());
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = now - Duration::hours(1);
    params.not_after = now
        + Duration::days(if kind == CaKind::Root {
            25 * 365
        } else {
            20 * 365
        });
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(if kind == CaKind::Root {
        1
    } else {
        0
    }));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(&public_key));
    params.use_authority_key_identifier_extension = root.is_some();
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
        signer,
    })
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
