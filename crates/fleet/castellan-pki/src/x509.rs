//! The PKI's view of `castellan-x509`: the same parsers and CSR builder, with failures reported
//! as [`PkiError`] (same variants, same messages) so that the CA and its callers keep one error
//! type.

use castellan_x509::X509Error;
pub use castellan_x509::{CsrInfo, MAX_DER_LEN, ParsedCertificate, der_to_pem};

use crate::PkiError;

/// Parse one DER certificate (see [`castellan_x509::parse_certificate`]).
pub fn parse_certificate(der: &[u8]) -> Result<ParsedCertificate, PkiError> {
    Ok(castellan_x509::parse_certificate(der)?)
}

/// Parse a PEM certificate, the first `CERTIFICATE` block (see
/// [`castellan_x509::parse_certificate_pem`]).
pub fn parse_certificate_pem(pem: &str) -> Result<ParsedCertificate, PkiError> {
    Ok(castellan_x509::parse_certificate_pem(pem)?)
}

/// Check that `cert` was signed by `issuer` (see [`castellan_x509::verify_signed_by`]).
pub fn verify_signed_by(
    cert: &ParsedCertificate,
    issuer: &ParsedCertificate,
) -> Result<(), PkiError> {
    Ok(castellan_x509::verify_signed_by(cert, issuer)?)
}

/// Parse a PKCS#10 CSR and verify its self-signature (see [`castellan_x509::verify_csr`]).
pub fn verify_csr(der: &[u8]) -> Result<CsrInfo, PkiError> {
    Ok(castellan_x509::verify_csr(der)?)
}

/// Read a P-256 public key, SEC1 or DER SubjectPublicKeyInfo (see
/// [`castellan_x509::parse_public_key`]).
pub fn parse_public_key(bytes: &[u8]) -> Result<[u8; 65], PkiError> {
    Ok(castellan_x509::parse_public_key(bytes)?)
}

/// Decode the first PEM block with `label` to DER (see [`castellan_x509::pem_to_der`]).
pub fn pem_to_der(label: &'static str, pem: &str) -> Result<Vec<u8>, PkiError> {
    Ok(castellan_x509::pem_to_der(label, pem)?)
}

/// Build a DER PKCS#10 request signed by a device's `sign` callback (see
/// [`castellan_x509::build_csr`]).
pub fn build_csr<F, E>(
    public_key: &[u8],
    common_name: &str,
    serial: Option<&str>,
    sign: F,
) -> Result<Vec<u8>, PkiError>
where
    F: Fn(&[u8]) -> Result<[u8; 64], E>,
    E: core::fmt::Display,
{
    Ok(castellan_x509::build_csr(
        public_key,
        common_name,
        serial,
        sign,
    )?)
}

impl From<X509Error> for PkiError {
    fn from(e: X509Error) -> Self {
        match e {
            X509Error::Malformed { what, reason } => PkiError::Malformed { what, reason },
            X509Error::UnsupportedKey { what } => PkiError::UnsupportedKey { what },
            X509Error::UnsupportedSignatureAlgorithm { what } => {
                PkiError::UnsupportedSignatureAlgorithm { what }
            }
            X509Error::CsrSignatureInvalid => PkiError::CsrSignatureInvalid,
            X509Error::SignatureInvalid => PkiError::SignatureInvalid,
            X509Error::UnknownIssuer => PkiError::UnknownIssuer,
            X509Error::NotValidNow {
                not_before,
                not_after,
                now,
            } => PkiError::NotValidNow {
                not_before,
                not_after,
                now,
            },
            X509Error::InvalidName { what, reason } => PkiError::InvalidName { what, reason },
            X509Error::Encode { detail } => PkiError::Encode { detail },
            X509Error::SignerFailed { detail } => PkiError::SignerFailed { detail },
            X509Error::SignerProducedBadSignature => PkiError::SignerProducedBadSignature,
            other => PkiError::X509(other),
        }
    }
}
