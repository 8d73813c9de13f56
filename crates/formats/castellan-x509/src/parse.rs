//! The one place where certificates and CSRs from the outside world (devices, TLS clients, the
//! broker's DER) are parsed. Typed errors, never a panic; fuzzed by `fuzz/fuzz_targets/x509_cert.rs`.
//!
//! Only what the fleet uses is extracted into an owned [`ParsedCertificate`]; signatures are
//! checked with RustCrypto's p256 ([`verify_signed_by`], [`verify_csr`]).

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_SIG_ECDSA_WITH_SHA256, OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME,
    OID_X509_ORGANIZATIONAL_UNIT, OID_X509_SERIALNUMBER,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

use crate::X509Error;
use crate::der::{ECDSA_SHA256_ALGID, signature_bits, signed_envelope, strip_leading_zeros};
use crate::key::{sec1_uncompressed, verify_der_signature};
use crate::pem::{der_to_pem, pem_to_der};

/// Largest certificate or CSR accepted (bytes): far above any certificate this PKI issues,
/// small enough that a hostile peer cannot make the parser work on megabytes.
pub const MAX_DER_LEN: usize = 16 * 1024;

/// What the fleet needs from an X.509 certificate, owned (no borrow of the input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCertificate {
    /// The complete certificate, DER.
    pub der: Vec<u8>,
    /// The serial number, big-endian magnitude without leading zero bytes.
    pub serial: Vec<u8>,
    /// The subject's first commonName, if it is a string.
    pub subject_common_name: Option<String>,
    /// The subject's first serialNumber attribute (an IEEE 802.1AR device serial).
    pub subject_serial_number: Option<String>,
    /// The subject's first organizationalUnit.
    pub subject_organizational_unit: Option<String>,
    /// The subject's first organization.
    pub subject_organization: Option<String>,
    /// The subject, RFC 4514-like text (for logs).
    pub subject: String,
    /// The issuer, RFC 4514-like text (for logs).
    pub issuer: String,
    /// The subject name, DER (to match an issuer name byte for byte).
    pub subject_der: Vec<u8>,
    /// The issuer name, DER.
    pub issuer_der: Vec<u8>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whether basicConstraints says this is a CA.
    pub is_ca: bool,
    /// The subject public key, SEC1 uncompressed, when it is an ECDSA P-256 key.
    pub public_key_p256: Option<[u8; 65]>,
    /// Whether the extended key usage allows TLS client authentication.
    pub client_auth: bool,
    /// Whether the extended key usage allows TLS server authentication.
    pub server_auth: bool,
    /// DNS names in the subjectAltName.
    pub dns_names: Vec<String>,
    /// IP addresses in the subjectAltName.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// The signed part (TBSCertificate), DER.
    pub tbs_der: Vec<u8>,
    /// Whether the signature algorithm is ecdsa-with-SHA256.
    pub signed_with_ecdsa_sha256: bool,
    /// The signature value (DER ECDSA-Sig-Value for ECDSA).
    pub signature: Vec<u8>,
}

impl ParsedCertificate {
    /// The serial number as lowercase hex (the form the registry and revocation list use).
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// Whether the certificate is valid at `now` (Unix seconds).
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Fail with [`X509Error::NotValidNow`] unless the certificate is valid at `now`.
    pub fn check_validity(&self, now: i64) -> Result<(), X509Error> {
        if self.is_valid_at(now) {
            Ok(())
        } else {
            Err(X509Error::NotValidNow {
                not_before: self.not_before,
                not_after: self.not_after,
                now,
            })
        }
    }

    /// The PEM encoding of the certificate.
    pub fn pem(&self) -> String {
        der_to_pem("CERTIFICATE", &self.der)
    }
}

/// Parse one DER certificate. Trailing bytes, oversize input and anything x509-parser rejects
/// are errors; nothing here panics.
pub fn parse_certificate(der: &[u8]) -> Result<ParsedCertificate, X509Error> {
    const WHAT: &str = "certificate";
    let (outer_alg, outer_sig) = checked_envelope(
        der,
        WHAT,
        "not a DER SEQUENCE of signed part, algorithm and signature",
    )?;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| X509Error::Malformed {
        what: WHAT,
        reason: "not a DER X.509 certificate",
    })?;
    if !rest.is_empty() {
        return Err(X509Error::Malformed {
            what: WHAT,
            reason: "trailing bytes after the certificate",
        });
    }
    let tbs = &cert.tbs_certificate;
    let is_ca = match tbs.basic_constraints() {
        Ok(bc) => bc.is_some_and(|b| b.value.ca),
        Err(_) => {
            return Err(X509Error::Malformed {
                what: WHAT,
                reason: "duplicate basicConstraints",
            });
        }
    };
    let (client_auth, server_auth) = match tbs.extended_key_usage() {
        Ok(Some(eku)) => (eku.value.client_auth, eku.value.server_auth),
        Ok(None) => (false, false),
        Err(_) => {
            return Err(X509Error::Malformed {
                what: WHAT,
                reason: "duplicate extendedKeyUsage",
            });
        }
    };
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    match tbs.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => dns_names.push((*n).to_string()),
                    GeneralName::IPAddress(ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            ip_addresses.push(std::net::IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            ip_addresses.push(std::net::IpAddr::from(v6));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(None) => {}
        Err(_) => {
            return Err(X509Error::Malformed {
                what: WHAT,
                reason: "duplicate subjectAltName",
            });
        }
    }
    let public_key_p256 = VerifyingKey::from_public_key_der(tbs.subject_pki.raw)
        .ok()
        .map(|k| sec1_uncompressed(&k));
    Ok(ParsedCertificate {
        der: der.to_vec(),
        serial: strip_leading_zeros(tbs.raw_serial()).to_vec(),
        subject_common_name: first_attr(&tbs.subject, &OID_X509_COMMON_NAME),
        subject_serial_number: first_attr(&tbs.subject, &OID_X509_SERIALNUMBER),
        subject_organizational_unit: first_attr(&tbs.subject, &OID_X509_ORGANIZATIONAL_UNIT),
        subject_organization: first_attr(&tbs.subject, &OID_X509_ORGANIZATION_NAME),
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        subject_der: tbs.subject.as_raw().to_vec(),
        issuer_der: tbs.issuer.as_raw().to_vec(),
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        is_ca,
        public_key_p256,
        client_auth,
        server_auth,
        dns_names,
        ip_addresses,
        tbs_der: tbs.as_ref().to_vec(),
        signed_with_ecdsa_sha256: outer_alg == ECDSA_SHA256_ALGID
            && tbs.signature.algorithm == OID_SIG_ECDSA_WITH_SHA256
            && tbs.signature.parameters.is_none(),
        signature: signature_bits(outer_sig).unwrap_or_default().to_vec(),
    })
}

/// Parse a PEM certificate (the first `CERTIFICATE` block).
pub fn parse_certificate_pem(pem: &str) -> Result<ParsedCertificate, X509Error> {
    let der = pem_to_der("CERTIFICATE", pem)?;
    parse_certificate(&der)
}

/// Check that `cert` was signed by `issuer`: the issuer name matches byte for byte, the
/// algorithm is ecdsa-with-SHA256 and the signature verifies with the issuer's P-256 key.
pub fn verify_signed_by(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
) -> Result<(), X509Error> {
    if cert.issuer_der != issuer.subject_der {
        return Err(X509Error::UnknownIssuer);
    }
    let key = issuer.public_key_p256.ok_or(X509Error::UnsupportedKey {
        what: "issuer certificate",
    })?;
    if !cert.signed_with_ecdsa_sha256 {
        return Err(X509Error::UnsupportedSignatureAlgorithm {
            what: "certificate",
        });
    }
    verify_der_signature(&key, &cert.tbs_der, &cert.signature)
        .map_err(|_| X509Error::SignatureInvalid)
}

/// What a verified CSR tells the CA. The CA decides the certificate's subject and extensions;
/// these are reported only for logs and cross-checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrInfo {
    /// The requester's public key, SEC1 uncompressed P-256.
    pub public_key: [u8; 65],
    /// The subject commonName the requester asked for, if any.
    pub requested_common_name: Option<String>,
    /// The subject serialNumber the requester asked for, if any.
    pub requested_serial_number: Option<String>,
}

/// Parse a PKCS#10 CSR and verify its self-signature (proof that the requester holds the
/// private key). Only ECDSA P-256 with SHA-256 is accepted.
pub fn verify_csr(der: &[u8]) -> Result<CsrInfo, X509Error> {
    const WHAT: &str = "CSR";
    let (outer_alg, outer_sig) = checked_envelope(
        der,
        WHAT,
        "not a DER SEQUENCE of request info, algorithm and signature",
    )?;
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|_| X509Error::Malformed {
            what: WHAT,
            reason: "not a DER PKCS#10 request",
        })?;
    if !rest.is_empty() {
        return Err(X509Error::Malformed {
            what: WHAT,
            reason: "trailing bytes after the request",
        });
    }
    if outer_alg != ECDSA_SHA256_ALGID {
        return Err(X509Error::UnsupportedSignatureAlgorithm { what: WHAT });
    }
    let signature = signature_bits(outer_sig).ok_or(X509Error::Malformed {
        what: WHAT,
        reason: "signature BIT STRING has unused bits",
    })?;
    let info = &csr.certification_request_info;
    let key = VerifyingKey::from_public_key_der(info.subject_pki.raw)
        .map_err(|_| X509Error::UnsupportedKey { what: WHAT })?;
    let public_key = sec1_uncompressed(&key);
    verify_der_signature(&public_key, info.raw, signature)
        .map_err(|_| X509Error::CsrSignatureInvalid)?;
    Ok(CsrInfo {
        public_key,
        requested_common_name: first_attr(&info.subject, &OID_X509_COMMON_NAME),
        requested_serial_number: first_attr(&info.subject, &OID_X509_SERIALNUMBER),
    })
}

/// What every signed structure passes first: the size limit, then the strict outer envelope
/// (`not_envelope` says what was expected). Returns the algorithm and the signature BIT STRING
/// content.
fn checked_envelope<'a>(
    der: &'a [u8],
    what: &'static str,
    not_envelope: &'static str,
) -> Result<(&'a [u8], &'a [u8]), X509Error> {
    if der.len() > MAX_DER_LEN {
        return Err(X509Error::Malformed {
            what,
            reason: "larger than 16 KiB",
        });
    }
    let (_, alg, sig) = signed_envelope(der).ok_or(X509Error::Malformed {
        what,
        reason: not_envelope,
    })?;
    Ok((alg, sig))
}

fn first_attr(name: &X509Name<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> Option<String> {
    name.iter_by_oid(oid)
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
}
