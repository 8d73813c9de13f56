//! Why a PKI operation failed: one error type for the whole crate, each variant naming what is
//! wrong (a certificate from a device, a CSR, a key file, the HSM, ...).

use core::fmt;

/// Which of the fleet's certificate authorities an operation was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CaKind {
    /// The self-signed root CA (the trust anchor devices, brokers and operators install).
    Root,
    /// The manufacturer CA: issues IDevIDs in the factory.
    Manufacturer,
    /// The operational CA: issues LDevIDs at onboarding, the service's TLS certificate and
    /// operator client certificates.
    Operational,
    /// The service CA: issues the client certificates of service identities (`svc:<name>`, the
    /// fleet-wide MQTT role). Its key stays offline with the root's.
    Service,
}

impl CaKind {
    /// A short lowercase name, used in file names and PKCS#11 labels.
    pub fn name(self) -> &'static str {
        match self {
            CaKind::Root => "root",
            CaKind::Manufacturer => "manufacturer",
            CaKind::Operational => "operational",
            CaKind::Service => "service",
        }
    }
}

impl fmt::Display for CaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} CA", self.name())
    }
}

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiError {
    /// A file of the PKI state directory could not be read or written.
    Io {
        /// What was being accessed (for example "operational CA key file").
        what: &'static str,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
    },
    /// A key file is not an ECDSA P-256 private key in PKCS#8 PEM.
    KeyFile {
        /// Which file.
        what: &'static str,
    },
    /// A CA certificate on disk does not belong to the key that is supposed to sign with it.
    KeyMismatch {
        /// Which CA.
        ca: CaKind,
    },
    /// A CA certificate on disk could not be used (not parseable, or its subject cannot be
    /// reproduced exactly in the certificates it issues).
    BadCaCertificate {
        /// Which CA.
        ca: CaKind,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The PKCS#11 module or token refused an operation.
    Pkcs11 {
        /// The operation (for example "C_Sign").
        op: &'static str,
        /// The module's error, as text.
        detail: String,
    },
    /// No key with this label exists in the PKCS#11 token.
    Pkcs11KeyNotFound {
        /// The CKA_LABEL looked for.
        label: String,
    },
    /// Input that should be DER (a certificate, CSR or public key) is not well-formed.
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate or CSR carries a key other than ECDSA P-256 (the only algorithm the fleet
    /// accepts), or the key is not a valid point on the curve.
    UnsupportedKey {
        /// Where the key was found.
        what: &'static str,
    },
    /// A signature algorithm other than ecdsa-with-SHA256 was used.
    UnsupportedSignatureAlgorithm {
        /// Where it was found.
        what: &'static str,
    },
    /// The CSR's self-signature does not verify: whoever sent it does not hold the private key.
    CsrSignatureInvalid,
    /// A certificate's signature does not verify with the key of the CA it claims as issuer.
    SignatureInvalid,
    /// A certificate was not issued by any of this PKI's issuing CAs.
    UnknownIssuer,
    /// A certificate is outside its validity period.
    NotValidNow {
        /// The certificate's notBefore (Unix seconds).
        not_before: i64,
        /// The certificate's notAfter (Unix seconds).
        not_after: i64,
        /// The time it was checked at (Unix seconds).
        now: i64,
    },
    /// A certificate lacks the extended key usage its use requires.
    WrongKeyUsage {
        /// What was required.
        required: &'static str,
    },
    /// A device serial, device id, device class or host name is not acceptable.
    InvalidName {
        /// Which name.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Encoding a certificate, CSR or CRL failed.
    Encode {
        /// The encoder's message.
        detail: String,
    },
    /// A signer (a CA key or a device's secure service) failed to sign.
    SignerFailed {
        /// The signer's message.
        detail: String,
    },
    /// A signer returned a signature that does not verify with its own public key.
    SignerProducedBadSignature,
    /// The operating system's random source failed.
    Random,
    /// The operation needs a CA's private key, and this PKI holds only its certificate (the
    /// key is kept offline, or by the factory).
    CaKeyOffline {
        /// Which CA.
        ca: CaKind,
    },
    /// The root CA's private key is in reach of the online service (a file in its PKI
    /// directory, or a key in its token): a compromise of the service would yield the root of
    /// the whole PKI.
    RootKeyInReach {
        /// Where the key was found.
        location: String,
    },
    /// A CA certificate the service needs is not in the PKI directory.
    MissingCa {
        /// Which CA.
        ca: CaKind,
        /// The file looked for.
        path: std::path::PathBuf,
    },
    /// A client certificate claims a role its issuing CA may not issue (for example a service
    /// identity from the manufacturer CA).
    RoleNotIssuedBy {
        /// The role the certificate claims.
        role: &'static str,
        /// The CA that issued it.
        ca: CaKind,
    },
    /// A certificate or CSR was refused by `castellan-x509` for a reason without a variant
    /// of its own here.
    X509(castellan_x509::X509Error),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::Io { what, kind } => write!(f, "cannot access the {what}: {kind}"),
            PkiError::KeyFile { what } => {
                write!(
                    f,
                    "the {what} is not an ECDSA P-256 private key in PKCS#8 PEM"
                )
            }
            PkiError::KeyMismatch { ca } => write!(
                f,
                "the {ca} certificate does not match its private key (the key file or token \
                 holds a different key)"
            ),
            PkiError::BadCaCertificate { ca, reason } => {
                write!(f, "the {ca} certificate cannot be used: {reason}")
            }
            PkiError::Pkcs11 { op, detail } => write!(f, "PKCS#11 {op} failed: {detail}"),
            PkiError::Pkcs11KeyNotFound { label } => {
                write!(f, "no key labelled {label:?} in the PKCS#11 token")
            }
            PkiError::Malformed { what, reason } => write!(f, "malformed {what}: {reason}"),
            PkiError::UnsupportedKey { what } => write!(
                f,
                "the {what} does not hold a valid ECDSA P-256 public key (the only key type the \
                 fleet accepts)"
            ),
            PkiError::UnsupportedSignatureAlgorithm { what } => write!(
                f,
                "the {what} is not signed with ecdsa-with-SHA256 (the only algorithm accepted)"
            ),
            PkiError::CsrSignatureInvalid => f.write_str(
                "the CSR's self-signature does not verify: the requester does not prove \
                 possession of the private key",
            ),
            PkiError::SignatureInvalid => {
                f.write_str("the certificate's signature does not verify with the issuing CA's key")
            }
            PkiError::UnknownIssuer => f.write_str(
                "the certificate was not issued by one of this fleet's issuing CAs \
                 (manufacturer, operational or service CA; the root issues no client certificates)",
            ),
            PkiError::NotValidNow {
                not_before,
                not_after,
                now,
            } => write!(
                f,
                "the certificate is not valid now (valid from {not_before} to {not_after}, now \
                 {now}, Unix seconds)"
            ),
            PkiError::WrongKeyUsage { required } => {
                write!(f, "the certificate lacks the {required} extended key usage")
            }
            PkiError::InvalidName { what, reason } => write!(f, "invalid {what}: {reason}"),
            PkiError::Encode { detail } => write!(f, "encoding failed: {detail}"),
            PkiError::SignerFailed { detail } => write!(f, "the signer failed: {detail}"),
            PkiError::SignerProducedBadSignature => f.write_str(
                "the signer returned a signature that does not verify with its public key",
            ),
            PkiError::Random => f.write_str("the operating system's random source failed"),
            PkiError::CaKeyOffline { ca } => write!(
                f,
                "the {ca}'s private key is not held here (it is kept offline or by the factory): \
                 do this where the key lives"
            ),
            PkiError::RootKeyInReach { location } => write!(
                f,
                "the root CA's private key is in reach of the online service ({location}); a \
                 compromise of the service would yield the root of the whole PKI"
            ),
            PkiError::MissingCa { ca, path } => {
                write!(f, "the {ca} certificate is missing ({})", path.display())
            }
            PkiError::RoleNotIssuedBy { role, ca } => {
                write!(f, "the {ca} may not issue {role} certificates")
            }
            PkiError::X509(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PkiError {}

impl PkiError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> PkiError {
        move |e| PkiError::Io {
            what,
            kind: e.kind(),
        }
    }
}
