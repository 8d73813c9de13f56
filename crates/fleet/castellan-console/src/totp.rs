//! The optional second factor: TOTP (RFC 6238) as authenticator apps implement it — HMAC-SHA-1,
//! six digits, 30-second steps, one step of clock skew either way — with a 160-bit random
//! secret. A code is accepted once: the store records the last step used and refuses any step
//! not later than it (RFC 6238 §5.2).

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Why a second factor could not be set up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TotpError {
    /// No randomness for the secret.
    Random,
    /// The stored secret is not base32, or the account name cannot be in an otpauth URL.
    Invalid(String),
}

impl core::fmt::Display for TotpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TotpError::Random => f.write_str("no randomness for the TOTP secret"),
            TotpError::Invalid(why) => write!(f, "TOTP: {why}"),
        }
    }
}

impl std::error::Error for TotpError {}

fn totp(secret_base32: &str, account: &str) -> Result<Totp, TotpError> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|e| TotpError::Invalid(format!("secret: {e:?}")))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("Castellan"))
        .build()
        .map_err(|e| TotpError::Invalid(format!("{e:?}")))
}

/// A new secret, base32 (what the store keeps and an authenticator app is given).
pub fn new_totp_secret() -> Result<String, TotpError> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|_| TotpError::Random)?;
    Ok(Secret::from(bytes.to_vec()).to_base32())
}

/// The `otpauth://` URL an authenticator app enrols from (as text or a QR code).
pub fn otpauth_url(secret_base32: &str, account: &str) -> Result<String, TotpError> {
    totp(secret_base32, account)?
        .to_url()
        .map_err(|e| TotpError::Invalid(format!("{e:?}")))
}

/// The code for Unix time `at` (tests, and operators checking their enrolment).
pub fn totp_code(secret_base32: &str, at: u64) -> Result<String, TotpError> {
    Ok(totp(secret_base32, "operator")?.generate(at).to_string())
}

/// The time step `code` is valid for at Unix time `now`, if it is.
pub(crate) fn check(secret_base32: &str, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret_base32, "operator").ok()?.check(code, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_valid_in_its_step_and_the_next_only() {
        let secret = new_totp_secret().unwrap_or_default();
        assert_eq!(secret.len(), 32, "160 bits in base32");
        let code = totp_code(&secret, 1_000_000).unwrap_or_default();
        assert_eq!(check(&secret, &code, 1_000_000), Some(1_000_000 / 30));
        assert!(
            check(&secret, &code, 1_000_030).is_some(),
            "one step of skew"
        );
        assert_eq!(
            check(&secret, &code, 1_000_090),
            None,
            "not three steps later"
        );
        assert_eq!(check(&secret, "12345", 1_000_000), None);
        assert_eq!(check(&secret, "abcdef", 1_000_000), None);
        let url = otpauth_url(&secret, "alice").unwrap_or_default();
        assert!(url.starts_with("otpauth://totp/Castellan:alice?"), "{url}");
    }
}
