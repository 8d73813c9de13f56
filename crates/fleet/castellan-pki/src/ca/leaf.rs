//! Signing a certificate with a CA, and the parameters every leaf shares: a random 126-bit
//! serial, RFC 7093 key identifiers, validity periods (IDevIDs never expire).

use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

use crate::PkiError;
use crate::signer::{SubjectKey, rcgen_signer};
use crate::x509::{der_to_pem, parse_certificate};

use super::{Ca, IssuedCertificate};

pub(super) fn sign_certificate(
    ca: &Ca,
    params: &CertificateParams,
    public_key: [u8; 65],
) -> Result<IssuedCertificate, PkiError> {
    let signer = ca
        .signer
        .as_deref()
        .ok_or(PkiError::CaKeyOffline { ca: ca.kind })?;
    let adapter = rcgen_signer(signer);
    let issuer = rcgen::Issuer::from_params(&ca.params, &adapter);
    let cert = params
        .signed_by(&SubjectKey(public_key), &issuer)
        .map_err(|e| adapter.error(e))?;
    let der = cert.der().to_vec();
    let parsed = parse_certificate(&der)?;
    Ok(IssuedCertificate {
        pem: der_to_pem("CERTIFICATE", &der),
        serial: parsed.serial,
        not_after: parsed.not_after,
        der,
    })
}

pub(super) fn leaf_params(
    dn: DistinguishedName,
    public_key: &[u8; 65],
    not_after: OffsetDateTime,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = OffsetDateTime::now_utc() - Duration::minutes(5);
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(public_key));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
pub(super) fn key_id(public_key: &[u8; 65]) -> Vec<u8> {
    Sha256::digest(public_key)
        .get(..20)
        .unwrap_or_default()
        .to_vec()
}

/// 16 random bytes, first byte in 0x40..=0x7f: positive, no leading zero, 126 bits of entropy.
pub(super) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

pub(super) fn days_from_now(days: u32) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(i64::from(days))
}

pub(super) fn never_expires() -> Result<OffsetDateTime, PkiError> {
    let date = time::Date::from_calendar_date(9999, time::Month::December, 31)
        .and_then(|d| d.with_hms(23, 59, 59))
        .map_err(|_| PkiError::Encode {
            detail: "the 802.1AR 'no expiry' date".into(),
        })?;
    Ok(date.assume_utc())
}
