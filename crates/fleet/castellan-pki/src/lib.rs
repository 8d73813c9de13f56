//! The fleet's PKI: a root CA kept offline, a manufacturer CA that issues IDevIDs (IEEE
//! 802.1AR) in the factory, an operational CA that issues LDevIDs at onboarding plus the
//! service's TLS and operator certificates, a service CA (offline) for service identities; the
//! offline ceremony that hands the service only what it uses online ([`ceremony`]); which CA
//! may issue which client role ([`Pki::identify_client`]); CA keys in PKCS#8 files or a PKCS#11
//! token; CSRs signed by a device's secure service; CRLs and the connect-time revocation check. Certificates and CSRs from the
//! outside world are parsed by `castellan-x509` (re-exported here with [`PkiError`] errors).
//!
//! ```text
//!  device ── CSR ──▶ Pki::issue_idevid / issue_ldevid ──▶ certificate (passes `openssl verify`)
//!  broker ── DER ──▶ Pki::identify_client ──▶ ClientIdentity ──▶ RevocationSet::is_revoked
//!  store  ── revocations ──▶ Pki::crl ──▶ X.509 CRL (passes `openssl crl -verify`)
//! ```
//!
//! Only ECDSA P-256 with SHA-256 is issued or accepted. All signatures are made through
//! [`CaSigner`] and checked with RustCrypto's p256; rcgen only encodes, castellan-x509 parses.

#![forbid(unsafe_code)]

mod ca;
mod error;
mod pkcs11;
mod revocation;
mod signer;
mod x509;

pub use ca::ceremony;
pub use ca::{
    ClientIdentity, ClientRole, Credentials, Crl, IssuedCertificate, KeyBackend, LdevidKey, Pki,
    PkiConfig,
};
pub use error::{CaKind, PkiError};
pub use pkcs11::{Pkcs11Key, Pkcs11Token, SOFTHSM2_MODULE};
pub use revocation::{RevocationReason, RevocationSet, RevokedCert};
pub use signer::{CaSigner, FileKey};
pub use x509::{
    CsrInfo, MAX_DER_LEN, ParsedCertificate, build_csr, der_to_pem, parse_certificate,
    parse_certificate_pem, parse_public_key, pem_to_der, verify_csr, verify_signed_by,
};
