//! X.509 for the fleet's devices and services: the one parser for certificates and PKCS#10 CSRs
//! from the outside world (devices, TLS clients, the broker's DER), their P-256 signature checks,
//! and CSR building around a signer whose private key this process never holds (a device's
//! secure service). Hostile input gives a typed [`X509Error`], never a panic; fuzzed by
//! `fuzz/fuzz_targets/x509_cert.rs`.
//!
//! ```text
//!  device ─ secure service ─sign─▶ build_csr ──CSR──▶ verify_csr ──▶ CsrInfo      (castellan-pki CA)
//!  TLS peer / broker ──DER/PEM──▶ parse_certificate ──▶ ParsedCertificate ──▶ verify_signed_by
//! ```
//!
//! Only ECDSA P-256 with SHA-256 is built or accepted; x509-parser only parses, rcgen only
//! encodes, RustCrypto's p256 checks every signature. The CA itself (issuing, CRLs, key storage)
//! is `castellan-pki`, which builds on this crate.

#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod csr;
mod der;
mod error;
mod key;
mod parse;
mod pem;
pub mod signing;

pub use csr::build_csr;
pub use der::strip_leading_zeros;
pub use error::X509Error;
pub use key::{parse_public_key, sec1_uncompressed, verify_raw};
pub use parse::{
    CsrInfo, MAX_DER_LEN, ParsedCertificate, parse_certificate, parse_certificate_pem, verify_csr,
    verify_signed_by,
};
pub use pem::{der_to_pem, pem_to_der};
