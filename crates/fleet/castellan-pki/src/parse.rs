//! The one place where certificates and CSRs from the outside world (devices, TLS clients, the
//! broker's DER) are parsed. Typed errors, never a panic; fuzzed by `fuzz/fuzz_targets/x509_cert.rs`.
//!
//! Only what the fleet uses is extracted into an owned [`ParsedCertificate`]; signatures are
//! checked with RustCrypto's p256 ([`verify_signed_by`], [`verify_csr`]).

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
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

use crate::PkiError;
use crate::signer::sec1_uncompressed;

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

    /// Fail with [`PkiError::NotValidNow`] unless the certificate is valid at `now`.
    pub fn check_validity(&self, now: i64) -> Result<(), PkiError> {
        if self.is_valid_at(now) {
            Ok(())
        } else {
            Err(PkiError::NotValidNow {
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
pub fn parse_certificate(der: &[u8]) -> Result<ParsedCertificate, PkiError> {
    const WHAT: &str = "certificate";
    if der.len() > MAX_DER_LEN {
        return Err(PkiError::Malformed {
            what: WHAT,
            reason: "larger than 16 KiB",
        });
    }
    let (_, outer_alg, outer_sig) = signed_envelope(der).ok_or(PkiError::Malformed {
        what: WHAT,
        reason: "not a DER SEQUENCE of signed part, algorithm and signature",
    })?;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| PkiError::Malformed {
        what: WHAT,
        reason: "not a DER X.509 certificate",
    })?;
    if !rest.is_empty() {
        return Err(PkiError::Malformed {
            what: WHAT,
            reason: "trailing bytes after the certificate",
        });
    }
    let tbs = &cert.tbs_certificate;
    let is_ca = match tbs.basic_constraints() {
        Ok(bc) => bc.is_some_and(|b| b.value.ca),
        Err(_) => {
            return Err(PkiError::Malformed {
                what: WHAT,
                reason: "duplicate basicConstraints",
            });
        }
    };
    let (client_auth, server_auth) = match tbs.extended_key_usage() {
        Ok(Some(eku)) => (eku.value.client_auth, eku.value.server_auth),
        Ok(None) => (false, false),
        Err(_) => {
            return Err(PkiError::Malformed {
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
            return Err(PkiError::Malformed {
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
pub fn parse_certificate_pem(pem: &str) -> Result<ParsedCertificate, PkiError> {
    let der = pem_to_der("CERTIFICATE", pem)?;
    parse_certificate(&der)
}

/// Check that `cert` was signed by `issuer`: the issuer name matches byte for byte, the
/// algorithm is ecdsa-with-SHA256 and the signature verifies with the issuer's P-256 key.
pub fn verify_signed_by(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
) -> Result<(), PkiError> {
    if cert.issuer_der != issuer.subject_der {
        return Err(PkiError::UnknownIssuer);
    }
    let key = issuer.public_key_p256.ok_or(PkiError::UnsupportedKey {
        what: "issuer certificate",
    })?;
    if !cert.signed_with_ecdsa_sha256 {
        return Err(PkiError::UnsupportedSignatureAlgorithm {
            what: "certificate",
        });
    }
    verify_der_signature(&key, &cert.tbs_der, &cert.signature)
        .map_err(|_| PkiError::SignatureInvalid)
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
pub fn verify_csr(der: &[u8]) -> Result<CsrInfo, PkiError> {
    const WHAT: &str = "CSR";
    if der.len() > MAX_DER_LEN {
        return Err(PkiError::Malformed {
            what: WHAT,
            reason: "larger than 16 KiB",
        });
    }
    let (_, outer_alg, outer_sig) = signed_envelope(der).ok_or(PkiError::Malformed {
        what: WHAT,
        reason: "not a DER SEQUENCE of request info, algorithm and signature",
    })?;
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|_| PkiError::Malformed {
        what: WHAT,
        reason: "not a DER PKCS#10 request",
    })?;
    if !rest.is_empty() {
        return Err(PkiError::Malformed {
            what: WHAT,
            reason: "trailing bytes after the request",
        });
    }
    if outer_alg != ECDSA_SHA256_ALGID {
        return Err(PkiError::UnsupportedSignatureAlgorithm { what: WHAT });
    }
    let signature = signature_bits(outer_sig).ok_or(PkiError::Malformed {
        what: WHAT,
        reason: "signature BIT STRING has unused bits",
    })?;
    let info = &csr.certification_request_info;
    let key = VerifyingKey::from_public_key_der(info.subject_pki.raw)
        .map_err(|_| PkiError::UnsupportedKey { what: WHAT })?;
    let public_key = sec1_uncompressed(&key);
    verify_der_signature(&public_key, info.raw, signature)
        .map_err(|_| PkiError::CsrSignatureInvalid)?;
    Ok(CsrInfo {
        public_key,
        requested_common_name: first_attr(&info.subject, &OID_X509_COMMON_NAME),
        requested_serial_number: first_attr(&info.subject, &OID_X509_SERIALNUMBER),
    })
}

/// Read a P-256 public key given as SEC1 (compressed or uncompressed) or as DER
/// SubjectPublicKeyInfo; return it SEC1 uncompressed.
pub fn parse_public_key(bytes: &[u8]) -> Result<[u8; 65], PkiError> {
    VerifyingKey::from_sec1_bytes(bytes)
        .or_else(|_| VerifyingKey::from_public_key_der(bytes))
        .map(|k| sec1_uncompressed(&k))
        .map_err(|_| PkiError::UnsupportedKey { what: "public key" })
}

/// DER of the AlgorithmIdentifier ecdsa-with-SHA256 (parameters absent, RFC 5758).
const ECDSA_SHA256_ALGID: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// A strict look at the unsigned outer layer that x509-parser reads leniently:
/// `SEQUENCE { SEQUENCE signed-part, AlgorithmIdentifier, BIT STRING signature }` with minimal
/// DER lengths. Returns (signed part, algorithm, signature BIT STRING
/// content), each as raw bytes.
fn signed_envelope(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    // Trailing bytes after the outer SEQUENCE are reported by the callers.
    let (tag, body, _trailing) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, _, after1) = der_tlv(body)?;
    let signed = body.get(..body.len() - after1.len())?;
    let (t2, _, after2) = der_tlv(after1)?;
    let alg = after1.get(..after1.len() - after2.len())?;
    let (t3, sig, after3) = der_tlv(after2)?;
    if t1 != 0x30 || t2 != 0x30 || t3 != 0x03 || !after3.is_empty() {
        return None;
    }
    Some((signed, alg, sig))
}

/// One DER TLV with a minimal definite length: (tag, content, what follows).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            if b < 0x80 {
                return None;
            }
            (usize::from(b), rest)
        }
        0x82 => {
            let (&hi, rest) = rest.split_first()?;
            let (&lo, rest) = rest.split_first()?;
            let len = (usize::from(hi) << 8) | usize::from(lo);
            if len < 0x100 {
                return None;
            }
            (len, rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

/// A signature BIT STRING whose unused-bits byte is 0, as X.509 requires.
fn signature_bits(bit_string_content: &[u8]) -> Option<&[u8]> {
    match bit_string_content.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

fn verify_der_signature(public_key: &[u8; 65], msg: &[u8], sig_der: &[u8]) -> Result<(), ()> {
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| ())?;
    let sig = Signature::from_der(sig_der).map_err(|_| ())?;
    key.verify(msg, &sig).map_err(|_| ())
}

fn first_attr(name: &X509Name<'_>, oid: &x509_parser::der_parser::Oid<'_>) -> Option<String> {
    name.iter_by_oid(oid)
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Encode DER as PEM with the given label.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    pem_rfc7468_encode(label, der)
}

/// Decode the first PEM block with `label` to DER.
pub fn pem_to_der(label: &'static str, pem: &str) -> Result<Vec<u8>, PkiError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or(PkiError::Malformed {
        what: label,
        reason: "no PEM block with this label",
    })?;
    let body_start = start + begin.len();
    let body = pem.get(body_start..).unwrap_or_default();
    let stop = body.find(&end).ok_or(PkiError::Malformed {
        what: label,
        reason: "unterminated PEM block",
    })?;
    let b64: String = body
        .get(..stop)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| PkiError::Malformed {
            what: label,
            reason: "bad base64 in PEM block",
        })
}

fn pem_rfc7468_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut line = String::new();
    for c in b64.chars() {
        line.push(c);
        if line.len() == 64 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
