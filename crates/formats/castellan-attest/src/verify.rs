//! Token verification and appraisal (`std`): checks the ES256 signature or HMAC tag with the
//! caller's key, then the nonce, profile, lifecycle, implementation id and software components
//! against [`ReferenceValues`]. Each refusal is an [`Error`] variant naming what is wrong.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::claims::Claims;
use crate::decode::{Envelope, alg_of, parse_claims};
use crate::{AppraisalError, Error, Lifecycle, Profile, ShortText};

/// COSE algorithm ES256 (ECDSA P-256, SHA-256).
const ALG_ES256: i64 = -7;
/// COSE algorithm ESP256 (same verification as ES256; RFC 9864).
const ALG_ESP256: i64 = -9;
/// COSE algorithm HMAC 256/256.
const ALG_HMAC_256_256: i64 = 5;

/// The key a token is checked with.
#[derive(Clone)]
pub enum VerificationKey {
    /// P-256 public key for `COSE_Sign1` ES256/ESP256 tokens.
    Es256(VerifyingKey),
    /// Shared key for `COSE_Mac0` HMAC 256/256 tokens.
    HmacSha256(Vec<u8>),
}

impl core::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VerificationKey::Es256(k) => {
                write!(
                    f,
                    "Es256({})",
                    hex::encode(k.to_sec1_point(true).as_bytes())
                )
            }
            VerificationKey::HmacSha256(_) => f.write_str("HmacSha256(<secret>)"),
        }
    }
}

impl VerificationKey {
    /// A P-256 public key from SEC1 bytes (`04‖x‖y` or compressed).
    pub fn p256_from_sec1(bytes: &[u8]) -> Result<Self, Error> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(VerificationKey::Es256)
            .map_err(|_| Error::InvalidKey("not a P-256 point in SEC1 encoding"))
    }

    /// A P-256 public key from a DER `SubjectPublicKeyInfo`.
    pub fn p256_from_spki_der(der: &[u8]) -> Result<Self, Error> {
        VerifyingKey::from_public_key_der(der)
            .map(VerificationKey::Es256)
            .map_err(|_| Error::InvalidKey("not a P-256 SubjectPublicKeyInfo (DER)"))
    }

    /// A P-256 public key from a PEM `-----BEGIN PUBLIC KEY-----` block.
    pub fn p256_from_pem(pem: &str) -> Result<Self, Error> {
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(VerificationKey::Es256)
            .map_err(|_| Error::InvalidKey("not a P-256 public key in PEM"))
    }

    /// A P-256 public key from the base64url `x` and `y` members of a JWK.
    pub fn p256_from_jwk(x: &str, y: &str) -> Result<Self, Error> {
        let x = URL_SAFE_NO_PAD.decode(x.trim_end_matches('='));
        let y = URL_SAFE_NO_PAD.decode(y.trim_end_matches('='));
        let (Ok(x), Ok(y)) = (x, y) else {
            return Err(Error::InvalidKey("JWK x/y are not base64url"));
        };
        if x.len() != 32 || y.len() != 32 {
            return Err(Error::InvalidKey("JWK x/y must be 32 bytes each for P-256"));
        }
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        Self::p256_from_sec1(&sec1)
    }

    /// An HMAC-SHA256 key (raw bytes, at least 32).
    pub fn hmac_sha256(key: &[u8]) -> Result<Self, Error> {
        if key.len() < 32 {
            return Err(Error::InvalidKey(
                "HMAC 256/256 key must be at least 32 bytes",
            ));
        }
        Ok(VerificationKey::HmacSha256(key.to_vec()))
    }

    /// An HMAC-SHA256 key from the base64url `k` member of a JWK of type `oct`.
    pub fn hmac_from_jwk(k: &str) -> Result<Self, Error> {
        let key = URL_SAFE_NO_PAD
            .decode(k.trim_end_matches('='))
            .map_err(|_| Error::InvalidKey("JWK k is not base64url"))?;
        Self::hmac_sha256(&key)
    }
}

/// What the verifier expects of a device: built from the registry and the release it should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceValues {
    /// Profiles accepted (default: RFC 9783 only).
    pub accepted_profiles: Vec<Profile>,
    /// Lifecycle states accepted (default: secured only).
    pub accepted_lifecycles: Vec<Lifecycle>,
    /// The implementation id the device class must report, if checked.
    #[serde(default, with = "crate::hex_serde::opt")]
    pub implementation_id: Option<Vec<u8>>,
    /// Components that must be present and match.
    pub components: Vec<ExpectedComponent>,
    /// Accept components the list does not name (default false: an unknown component is
    /// refused, so an extra image injected into the boot chain is noticed).
    #[serde(default)]
    pub allow_unlisted_components: bool,
}

impl Default for ReferenceValues {
    fn default() -> Self {
        ReferenceValues {
            accepted_profiles: vec![Profile::Rfc9783],
            accepted_lifecycles: vec![Lifecycle::Secured],
            implementation_id: None,
            components: Vec::new(),
            allow_unlisted_components: false,
        }
    }
}

/// Reference values for one software component, found by its measurement type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedComponent {
    /// Measurement type the token uses for it (`"PRoT"`, `"BL"`, ...).
    pub measurement_type: String,
    /// Accepted measurement values (e.g. current and previous release during a rollout);
    /// empty: any value (then the signer and version are what is checked).
    #[serde(with = "crate::hex_serde::list")]
    pub measurement_values: Vec<Vec<u8>>,
    /// Expected signer id, if checked.
    #[serde(default, with = "crate::hex_serde::opt")]
    pub signer_id: Option<Vec<u8>>,
    /// Minimum version (`major.minor.revision[+build]`), if checked.
    #[serde(default)]
    pub min_version: Option<String>,
}

/// Decodes `token` and checks its signature or MAC with `key`; returns the authenticated
/// claims. Checks nothing else (no nonce, no policy): see [`appraise`].
pub fn verify_token(token: &[u8], key: &VerificationKey) -> Result<Claims, Error> {
    let env = Envelope::parse(token)?;
    match (&env, key) {
        (Envelope::Sign1(s), VerificationKey::Es256(vk)) => {
            let alg = alg_of(&s.protected.header.alg)?;
            if alg != ALG_ES256 && alg != ALG_ESP256 {
                return Err(Error::UnsupportedAlgorithm(alg));
            }
            env.payload()?;
            s.verify_signature(b"", |sig, tbs| {
                let sig = Signature::from_slice(sig).map_err(|_| Error::BadSignature)?;
                vk.verify(tbs, &sig).map_err(|_| Error::BadSignature)
            })?;
        }
        (Envelope::Mac0(m), VerificationKey::HmacSha256(k)) => {
            let alg = alg_of(&m.protected.header.alg)?;
            if alg != ALG_HMAC_256_256 {
                return Err(Error::UnsupportedAlgorithm(alg));
            }
            let missing = || Error::Malformed("payload is detached (nil)");
            m.verify_payload_tag(b"", missing, |tag, tbm| {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(k)
                    .map_err(|_| Error::InvalidKey("HMAC key rejected"))?;
                mac.update(tbm);
                mac.verify_slice(tag).map_err(|_| Error::BadSignature)
            })?;
        }
        _ => return Err(Error::KeyMismatch),
    }
    parse_claims(env.payload()?)
}

/// Verifies `token` with `key`, then appraises it: the nonce must equal `expected_nonce`, and
/// the claims must satisfy `reference` (see [`ReferenceValues::check`]).
pub fn appraise(
    token: &[u8],
    key: &VerificationKey,
    expected_nonce: &[u8],
    reference: &ReferenceValues,
) -> Result<Claims, AppraisalError> {
    let claims = verify_token(token, key)?;
    reference.check(&claims, expected_nonce)?;
    Ok(claims)
}

impl ReferenceValues {
    /// Checks authenticated claims: profile, nonce, lifecycle, implementation id, components.
    pub fn check(&self, claims: &Claims, expected_nonce: &[u8]) -> Result<(), AppraisalError> {
        if !self.accepted_profiles.contains(&claims.profile) {
            return Err(Error::UnknownProfile(ShortText::new(
                claims.profile.as_str(),
            )));
        }
        if claims.nonce != expected_nonce {
            return Err(Error::NonceMismatch);
        }
        let state_ok = claims
            .lifecycle_state()
            .is_some_and(|s| self.accepted_lifecycles.contains(&s));
        if !state_ok {
            return Err(Error::LifecycleNotAllowed {
                found: claims.lifecycle,
            });
        }
        if let Some(expected) = &self.implementation_id {
            if &claims.implementation_id != expected {
                return Err(Error::ImplementationIdMismatch);
            }
        }
        for (i, c) in claims.software_components.iter().enumerate() {
            let name = c.name(i);
            let expected = c
                .measurement_type
                .as_deref()
                .and_then(|t| self.components.iter().find(|e| e.measurement_type == t));
            let Some(e) = expected else {
                if self.allow_unlisted_components {
                    continue;
                }
                return Err(Error::UnknownComponent { component: name });
            };
            if !e.measurement_values.is_empty()
                && !e.measurement_values.contains(&c.measurement_value)
            {
                return Err(Error::UnexpectedMeasurement { component: name });
            }
            if e.signer_id.as_ref().is_some_and(|s| *s != c.signer_id) {
                return Err(Error::UnexpectedSigner { component: name });
            }
            if let Some(min) = &e.min_version {
                let ok = match (
                    c.version.as_deref().and_then(parse_version),
                    parse_version(min),
                ) {
                    (Some(have), Some(min)) => have >= min,
                    _ => false,
                };
                if !ok {
                    return Err(Error::VersionTooOld { component: name });
                }
            }
        }
        for e in &self.components {
            let present = claims
                .software_components
                .iter()
                .any(|c| c.measurement_type.as_deref() == Some(e.measurement_type.as_str()));
            if !present {
                return Err(Error::MissingComponent {
                    component: ShortText::new(&e.measurement_type),
                });
            }
        }
        Ok(())
    }
}

/// `major.minor.revision[+build]` → comparable tuple; missing parts are 0. `None` when any
/// part is not a decimal number.
fn parse_version(v: &str) -> Option<[u64; 4]> {
    let (core, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let mut out = [0u64; 4];
    let mut parts = core.split('.');
    for slot in out.iter_mut().take(3) {
        if let Some(p) = parts.next() {
            *slot = parse_decimal(p)?;
        }
    }
    if parts.next().is_some() {
        return None;
    }
    if let (Some(b), Some(slot)) = (build, out.get_mut(3)) {
        *slot = parse_decimal(b)?;
    }
    Some(out)
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_with_build() {
        assert!(parse_version("1.10.0") > parse_version("1.9.9"));
        assert!(parse_version("1.3.5+2") > parse_version("1.3.5+1"));
        assert_eq!(parse_version("1.3"), parse_version("1.3.0+0"));
        assert_eq!(parse_version("1.x"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("-1"), None);
    }
}
