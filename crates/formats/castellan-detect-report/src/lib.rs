//! Castellan detection reports: what the secure partition's detector says about the device's
//! behaviour, signed there with the attestation key, read and verified by the fleet service.
//!
//! ```text
//!  18([ h'A2 01 26 03 78 28 "application/castellan-detect-report+cbor"',   ; protected
//!       {},                                                                  ; unprotected
//!       h'<report map>',                                                     ; payload
//!       h'<r‖s>' ])                                                          ; ES256
//!  Sig_structure = ["Signature1", protected, h'"castellan/detect-report/v1"', payload]
//!
//!  report map (keys in this order, shortest integer encodings, nothing else):
//!   1 counter       uint   monotonic per device (trusted storage), never repeats
//!   2 window        [first event, events]   the events this report covers
//!   3 score         uint   highest window score in the period (milli-nats of excess surprise)
//!   4 crossed       bool   the window score crossed the alarm threshold in the period
//!   5 counters      [8 × uint]   gate entries, refused pointers, refused calls, app events,
//!                                app events flooded, floods, faults, PC samples (since boot)
//!   6 model         bstr .size 32   SHA-256 of the model that scored
//!   7 instance id   bstr .size 33   the attestation instance id (0x01 ‖ SHA-256(IAK))
//!   8 alarm         uint   the alarm threshold (milli-nats)
//! ```
//!
//! A report can never be taken for an attestation token, nor a token for a report: the
//! protected header names its own content type (a token's is `{1: -7}` alone) and the
//! signature covers a domain tag as external AAD (a token's is empty), so the same key's
//! signature over one never verifies as the other.
//!
//! [`encode_report`] is `no_std` and heap-free (the secure partition builds reports in one
//! buffer); [`parse_report`] is the one strict parser of hostile bytes (fuzzed:
//! `fuzz_targets/detect_report.rs`); [`verify_report`] (`std`) checks the ES256 signature
//! with the device's registered attestation public key.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod cbor;
mod decode;
mod encode;

#[cfg(feature = "std")]
pub use decode::verify_report;
pub use decode::{ParsedReport, parse_report};
pub use encode::{ReportSigner, encode_report, report_len};

/// The content type in the protected header.
pub const CONTENT_TYPE: &str = "application/castellan-detect-report+cbor";
/// The domain tag signed as external AAD.
pub const DOMAIN_TAG: &[u8] = b"castellan/detect-report/v1";
/// Number of event counters a report carries.
pub const COUNTERS: usize = 8;
/// Length of the instance id.
pub const INSTANCE_ID_LEN: usize = 33;
/// Largest encoded report.
pub const REPORT_MAX: usize = 384;
/// Length of an ES256 signature (`r‖s`).
pub const SIGNATURE_LEN: usize = 64;

/// What a report says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Monotonic report counter (never repeats on one device).
    pub counter: u64,
    /// Index of the first event the report covers (events scored since the device started).
    pub first_event: u64,
    /// Events the report covers.
    pub events: u64,
    /// Highest window score in the period (milli-nats).
    pub score_milli: u32,
    /// The window score crossed the alarm threshold in the period.
    pub crossed: bool,
    /// The sensors' counters, in `castellan_gate_api::Counters` order.
    pub counters: [u32; COUNTERS],
    /// SHA-256 of the model.
    pub model_digest: [u8; 32],
    /// The attestation instance id.
    pub instance_id: [u8; INSTANCE_ID_LEN],
    /// The alarm threshold (milli-nats).
    pub alarm_milli: u32,
}

/// Why a report was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// The bytes are not a report (the field or structure named).
    Malformed(&'static str),
    /// The output buffer is too small.
    BufferTooSmall,
    /// The signer failed with this status.
    Signer(i32),
    /// The verification key is not a P-256 public key.
    BadKey,
    /// The signature does not verify with the key.
    BadSignature,
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReportError::Malformed(what) => write!(f, "not a detection report: {what}"),
            ReportError::BufferTooSmall => f.write_str("detection report buffer too small"),
            ReportError::Signer(s) => write!(f, "the report signer failed (status {s})"),
            ReportError::BadKey => f.write_str("the key is not a P-256 public key"),
            ReportError::BadSignature => {
                f.write_str("the detection report's signature does not verify")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReportError {}
