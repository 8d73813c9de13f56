//! Why an X.509 certificate or CSR was refused, or a CSR could not be built.

/// Everything that can go wrong in this crate. The messages are the ones the fleet's PKI
/// reports for the same failures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// Input that should be DER or PEM (a certificate, CSR or public key) is not well-formed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate or CSR carries a key other than ECDSA P-256, or the key is not a valid
    /// point on the curve.
    #[error(
        "the {what} does not hold a valid ECDSA P-256 public key (the only key type the fleet accepts)"
    )]
    UnsupportedKey {
        /// Where the key was found.
        what: &'static str,
    },
    /// A signature algorithm other than ecdsa-with-SHA256 was used.
    #[error("the {what} is not signed with ecdsa-with-SHA256 (the only algorithm accepted)")]
    UnsupportedSignatureAlgorithm {
        /// Where it was found.
        what: &'static str,
    },
    /// The CSR's self-signature does not verify: whoever sent it does not hold the private key.
    #[error(
        "the CSR's self-signature does not verify: the requester does not prove possession of the private key"
    )]
    CsrSignatureInvalid,
    /// A certificate's signature does not verify with the key of the CA it claims as issuer.
    #[error("the certificate's signature does not verify with the issuing CA's key")]
    SignatureInvalid,
    /// A certificate's issuer name is not the subject of the certificate it was checked against.
    #[error("the certificate was not issued by this fleet's manufacturer or operational CA")]
    UnknownIssuer,
    /// A certificate is outside its validity period.
    #[error(
        "the certificate is not valid now (valid from {not_before} to {not_after}, now {now}, Unix seconds)"
    )]
    NotValidNow {
        /// The certificate's notBefore (Unix seconds).
        not_before: i64,
        /// The certificate's notAfter (Unix seconds).
        not_after: i64,
        /// The time it was checked at (Unix seconds).
        now: i64,
    },
    /// A name to put in a CSR (a device serial) is not acceptable.
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// Which name.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Encoding a CSR (or, for a CA, a certificate or CRL) failed.
    #[error("encoding failed: {detail}")]
    Encode {
        /// The encoder's message.
        detail: String,
    },
    /// The signer (a device's secure service) failed to sign.
    #[error("the signer failed: {detail}")]
    SignerFailed {
        /// The signer's message.
        detail: String,
    },
    /// A signer returned a signature that does not verify with its own public key.
    #[error("the signer returned a signature that does not verify with its public key")]
    SignerProducedBadSignature,
}
