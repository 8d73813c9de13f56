//! The crate's one error type, shared by the `no_std` encoder and the `std` verifier, and
//! [`ShortText`], the inline (heap-free, `Copy`) text an error uses to name a component or profile.

use core::fmt;

use castellan_text::Piece::{Dec, Hex, Int, Str, Text};
use castellan_text::{Describe, Sink, TextError};

/// Everything that can go wrong while building, decoding, verifying or appraising a token.
///
/// Every refusal names what is wrong. The type is `Copy` so the device side can pass it through
/// a call gate unchanged.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An output buffer is too small: `needed` bytes are required, `available` were given.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the caller's buffer has.
        available: usize,
    },
    /// The nonce (challenge) is not 32, 48 or 64 bytes long; holds the length given.
    InvalidNonceLength(usize),
    /// A claim given to the encoder breaks the RFC 9783 rules; names the claim and the rule.
    InvalidClaim(&'static str),
    /// The encoder cannot produce this profile (the legacy `PSA_IOT_PROFILE_1` is decode-only).
    UnsupportedProfile,
    /// The caller's signer refused; holds the status it returned (e.g. a `psa_status_t`).
    SignerFailed(i32),
    /// The token is not well-formed CBOR/COSE or a claim has the wrong type or size; names what.
    Malformed(&'static str),
    /// A mandatory claim is absent; names the claim.
    MissingClaim(&'static str),
    /// The COSE algorithm is not one this verifier accepts (ES256/ESP256, HMAC 256/256);
    /// holds the algorithm identifier found (0 when it is not an integer).
    UnsupportedAlgorithm(i64),
    /// The token's protection does not match the key: a MAC key for a signed token or a
    /// signature key for a MACed token.
    KeyMismatch,
    /// The key material given to the verifier cannot be used; names the problem.
    InvalidKey(&'static str),
    /// The signature or MAC tag does not verify with the given key (tampered token or wrong key).
    BadSignature,
    /// The token's nonce differs from the challenge the verifier sent (replayed or stale token).
    NonceMismatch,
    /// The token's profile is unknown or not in the accepted list; holds the profile text.
    UnknownProfile(ShortText),
    /// The security lifecycle is not one of the accepted states; holds the raw value found.
    LifecycleNotAllowed {
        /// Raw PSA lifecycle value in the token (e.g. `0x3000` secured).
        found: u16,
    },
    /// The implementation id differs from the expected one.
    ImplementationIdMismatch,
    /// A software component's measurement value differs from every accepted reference value.
    UnexpectedMeasurement {
        /// The component's measurement type (or `#index` when the token gives none).
        component: ShortText,
    },
    /// A software component's signer id differs from the expected one.
    UnexpectedSigner {
        /// The component's measurement type (or `#index`).
        component: ShortText,
    },
    /// A software component's version is absent, unreadable or below the minimum version.
    VersionTooOld {
        /// The component's measurement type (or `#index`).
        component: ShortText,
    },
    /// A component named in the reference values is not in the token.
    MissingComponent {
        /// The expected component's measurement type.
        component: ShortText,
    },
    /// The token reports a component the reference values do not know.
    UnknownComponent {
        /// The component's measurement type (or `#index`).
        component: ShortText,
    },
}

/// The name the verifier's API uses for [`Error`].
pub type AppraisalError = Error;

impl Describe for Error {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        match *self {
            Error::BufferTooSmall { needed, available } => out.fill(
                "buffer too small: the token needs {} bytes, the buffer has {}",
                &[Dec(needed as u64), Dec(available as u64)],
            ),
            Error::InvalidNonceLength(n) => out.fill(
                "nonce is {} bytes; PSA requires 32, 48 or 64",
                &[Dec(n as u64)],
            ),
            Error::InvalidClaim(what) => out.fill("invalid claim: {}", &[Str(what)]),
            Error::UnsupportedProfile => {
                out.put("the encoder cannot produce the legacy PSA_IOT_PROFILE_1 profile")
            }
            Error::SignerFailed(code) => out.fill(
                "the attestation signer failed (status {})",
                &[Int(code.into())],
            ),
            Error::Malformed(what) => out.fill("malformed token: {}", &[Str(what)]),
            Error::MissingClaim(what) => {
                out.fill("token lacks the mandatory claim: {}", &[Str(what)])
            }
            Error::UnsupportedAlgorithm(alg) => out.fill(
                "COSE algorithm {} is not accepted (ES256, ESP256 or HMAC 256/256)",
                &[Int(alg)],
            ),
            Error::KeyMismatch => out.put(
                "the token's protection (signature or MAC) does not match the kind of key given",
            ),
            Error::InvalidKey(what) => out.fill("verification key unusable: {}", &[Str(what)]),
            Error::BadSignature => out.put(
                "signature/MAC does not verify: the token was altered or signed by another key",
            ),
            Error::NonceMismatch => {
                out.put("nonce differs from the challenge: the token is stale or replayed")
            }
            Error::UnknownProfile(p) => out.fill("profile \"{}\" is not accepted", &[Text(&p)]),
            Error::LifecycleNotAllowed { found } => out.fill(
                "security lifecycle {} ({}) is not accepted",
                &[Hex(found.into(), 4), Str(crate::Lifecycle::name_of(found))],
            ),
            Error::ImplementationIdMismatch => {
                out.put("implementation id differs from the expected one")
            }
            Error::UnexpectedMeasurement { component } => out.fill(
                "software component \"{}\": measurement value matches no reference value",
                &[Text(&component)],
            ),
            Error::UnexpectedSigner { component } => out.fill(
                "software component \"{}\": signer id differs from the expected signer",
                &[Text(&component)],
            ),
            Error::VersionTooOld { component } => out.fill(
                "software component \"{}\": version is missing, unreadable or below the minimum",
                &[Text(&component)],
            ),
            Error::MissingComponent { component } => out.fill(
                "expected software component \"{}\" is not in the token",
                &[Text(&component)],
            ),
            Error::UnknownComponent { component } => out.fill(
                "software component \"{}\" is not in the reference values",
                &[Text(&component)],
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Capacity of [`ShortText`] in bytes.
pub const SHORT_TEXT_CAP: usize = 48;

/// Up to [`SHORT_TEXT_CAP`] bytes of UTF-8 text held inline, so [`Error`] stays `Copy` and
/// heap-free. Longer text is cut at a character boundary and shown with a trailing `…`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    bytes: [u8; SHORT_TEXT_CAP],
    len: u8,
    truncated: bool,
}

impl ShortText {
    /// Copies `s` (cut to the capacity at a character boundary).
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(SHORT_TEXT_CAP);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; SHORT_TEXT_CAP];
        let src = s.as_bytes().get(..end).unwrap_or_default();
        if let Some(dst) = bytes.get_mut(..end) {
            dst.copy_from_slice(src);
        }
        ShortText {
            bytes,
            len: end as u8,
            truncated: end < s.len(),
        }
    }

    /// Names an unnamed item by its position: `#3`.
    pub fn index(i: usize) -> Self {
        let mut digits = [0u8; 24];
        let mut pos = digits.len();
        let mut n = i;
        loop {
            pos -= 1;
            if let Some(d) = digits.get_mut(pos) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || pos == 1 {
                break;
            }
        }
        pos -= 1;
        if let Some(d) = digits.get_mut(pos) {
            *d = b'#';
        }
        let s = digits
            .get(pos..)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("#?");
        Self::new(s)
    }

    /// The text held (possibly cut).
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        core::str::from_utf8(b).unwrap_or("")
    }

    /// True when the original text was longer than the capacity.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Describe for ShortText {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        out.put(self.as_str())?;
        if self.truncated {
            out.put("…")?;
        }
        Ok(())
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl PartialEq<str> for ShortText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_cuts_at_char_boundary_and_marks_truncation() {
        let t = ShortText::new("PRoT");
        assert_eq!(t, "PRoT");
        assert!(!t.is_truncated());
        let long = "é".repeat(40); // 80 bytes
        let t = ShortText::new(&long);
        assert_eq!(t.as_str().len(), 48);
        assert!(t.is_truncated());
        assert!(t.to_string().ends_with('…'));
    }

    #[test]
    fn short_text_index_names_position() {
        assert_eq!(ShortText::index(0), "#0");
        assert_eq!(ShortText::index(42), "#42");
        assert_eq!(
            ShortText::index(usize::MAX).as_str(),
            format!("#{}", usize::MAX)
        );
    }
}
