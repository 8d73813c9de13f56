//! Operator passwords: Argon2id (RFC 9106) with the `argon2` crate's defaults (19 MiB, two
//! passes, one lane: OWASP's recommended minimum), a random salt per hash, stored as a PHC
//! string. Verification of an unknown account runs against a fixed hash of the same cost, so the
//! answer's timing does not tell which account names exist.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash};
use argon2::{Algorithm, Argon2};

/// The shortest password accepted (NIST SP 800-63B asks for at least 8; operators of a fleet
/// get 12).
pub const MIN_PASSWORD_LEN: usize = 12;

/// The longest password accepted (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Why a password could not be set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_LEN`] characters.
    TooShort,
    /// Longer than [`MAX_PASSWORD_LEN`] bytes.
    TooLong,
    /// The hash could not be computed (no randomness for the salt).
    Hashing,
}

impl core::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PasswordError::TooShort => write!(
                f,
                "password too short: at least {MIN_PASSWORD_LEN} characters"
            ),
            PasswordError::TooLong => {
                write!(f, "password too long: at most {MAX_PASSWORD_LEN} bytes")
            }
            PasswordError::Hashing => f.write_str("password hashing failed (no randomness)"),
        }
    }
}

impl std::error::Error for PasswordError {}

fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::default(),
    )
}

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Whether `password` matches the PHC string `phc` (false for a malformed hash, or a hash of
/// another algorithm than Argon2id).
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spend the time of one verification for an account that does not exist (against a hash of
/// the same cost, made once).
pub(crate) fn verify_nothing(password: &str) {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy =
        DECOY.get_or_init(|| hash_password("castellan-no-such-operator").unwrap_or_default());
    let _ = verify_password(decoy, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let phc = hash_password("correct horse battery").unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        let again = hash_password("correct horse battery").unwrap_or_default();
        assert_ne!(phc, again, "a fresh salt per hash");
    }

    #[test]
    fn weak_or_oversized_passwords_and_foreign_hashes_are_refused() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(hash_password(&"x".repeat(300)), Err(PasswordError::TooLong));
        assert!(!verify_password("not a phc string", "whatever password"));
        let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!verify_password(argon2i, "whatever password"));
    }
}
