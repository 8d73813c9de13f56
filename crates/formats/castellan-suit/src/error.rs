//! The crate's single error type, [`SuitError`], and the small enums it refers to.
//!
//! Every refusal names what failed: the part of the envelope that is malformed, the condition that
//! did not hold and for which component, or the directive whose platform call failed.

use core::fmt;

use castellan_text::Piece::{Dec, Int, Str, Text};
use castellan_text::{Describe, Sink, TextError};

use crate::command::{Condition, Directive, Parameter, Section};

/// Where in the envelope a decoding problem was found.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The outer `SUIT_Envelope` map.
    Envelope,
    /// The `SUIT_Authentication` wrapper (envelope key 2).
    AuthenticationWrapper,
    /// A COSE authentication block inside the wrapper.
    Cose,
    /// A `SUIT_Digest` structure.
    Digest,
    /// The `SUIT_Manifest` map (envelope key 3).
    Manifest,
    /// The `SUIT_Common` map.
    Common,
    /// The component identifier list.
    Components,
    /// A command sequence.
    Sequence,
    /// A parameter map of set/override-parameters.
    Parameters,
    /// The text map (key 23).
    Text,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Envelope => "envelope",
            Part::AuthenticationWrapper => "authentication wrapper",
            Part::Cose => "COSE authentication block",
            Part::Digest => "SUIT_Digest",
            Part::Manifest => "manifest",
            Part::Common => "common section",
            Part::Components => "component list",
            Part::Sequence => "command sequence",
            Part::Parameters => "parameter map",
            Part::Text => "text map",
        }
    }
}

/// An error reported by the device's [`Platform`](crate::Platform) implementation.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The platform does not implement this operation (for example swap).
    Unsupported,
    /// The resource named by a URI could not be obtained.
    FetchFailed,
    /// Reading or writing component storage failed.
    Storage,
    /// Transferring control to the component failed.
    InvokeFailed,
    /// The platform returned more bytes than the buffer it was given.
    ContractViolation,
    /// Any other platform-specific failure, with its code.
    Other(u32),
}

impl Describe for PlatformError {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        match self {
            PlatformError::Unsupported => out.put("operation not supported by the platform"),
            PlatformError::FetchFailed => out.put("fetch failed"),
            PlatformError::Storage => out.put("component storage error"),
            PlatformError::InvokeFailed => out.put("invoke failed"),
            PlatformError::ContractViolation => {
                out.put("platform returned more data than requested")
            }
            PlatformError::Other(code) => out.fill("platform error {}", &[Dec((*code).into())]),
        }
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

/// Why a SUIT envelope was refused or its processing stopped.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuitError {
    /// The CBOR of the named part is malformed, truncated, or not the structure the draft defines.
    Malformed(Part),
    /// A nesting, count or size limit of this no-heap processor was exceeded in the named part.
    LimitExceeded(Part),
    /// No COSE authentication block verified with a trusted key (missing, untrusted or bad signature).
    Unauthenticated,
    /// The digest of the manifest does not match the authenticated `SUIT_Digest`
    /// (the manifest was modified after it was signed).
    ManifestDigestMismatch,
    /// A digest algorithm (COSE algorithm id) this processor does not implement.
    UnsupportedDigestAlgorithm(i64),
    /// The manifest's encoding version is not 1.
    UnsupportedVersion(u64),
    /// The offered manifest is older than the one the device already accepted.
    RolledBack {
        /// Sequence number stored on the device.
        stored: u64,
        /// Sequence number of the offered manifest.
        offered: u64,
    },
    /// A severable element present in the envelope does not match its digest in the manifest.
    SeverableDigestMismatch(Section),
    /// A sequence needed by the procedure was severed from the envelope.
    SeveredMemberMissing(Section),
    /// The manifest uses a feature of an extension draft that is not implemented (dependencies).
    UnsupportedFeature(Section),
    /// The manifest lists a component the device does not have.
    UnsupportedComponent {
        /// Index of the component in the manifest's component list.
        index: usize,
    },
    /// A command sequence of a multi-component manifest does not start with set-component-index.
    MissingComponentIndex(Section),
    /// A component index (set-component-index or source-component) is out of range.
    InvalidComponentIndex(u64),
    /// A command code this processor does not implement.
    UnsupportedCommand(i64),
    /// A parameter this processor does not implement.
    UnsupportedParameter(i64),
    /// Soft-failure was set outside try-each / run-sequence.
    SoftFailureNotAllowed,
    /// A condition did not hold.
    ConditionFailed {
        /// The condition that failed.
        condition: Condition,
        /// The component it was evaluated for.
        component: usize,
    },
    /// A directive needs a parameter that was not set for the component.
    MissingParameter {
        /// The directive that needed it.
        directive: Directive,
        /// The missing parameter.
        parameter: Parameter,
        /// The component.
        component: usize,
    },
    /// The payload written into a component does not match the image digest.
    DigestMismatch {
        /// The component written.
        component: usize,
    },
    /// The payload written into a component is shorter or longer than the image size.
    SizeMismatch {
        /// The component written.
        component: usize,
        /// The image-size parameter.
        expected: u64,
        /// The number of bytes received.
        actual: u64,
    },
    /// More bytes arrived than the image size (or the component's capacity) allows.
    PayloadTooLarge {
        /// The component written.
        component: usize,
        /// The number of bytes that was allowed.
        limit: u64,
    },
    /// A platform operation failed while executing a directive.
    Platform {
        /// The directive being executed.
        directive: Directive,
        /// The component.
        component: usize,
        /// What the platform reported.
        error: PlatformError,
    },
    /// The caller's buffer is too small for the envelope.
    BufferTooSmall,
}

impl SuitError {
    /// True for failures that soft-failure may absorb inside try-each / run-sequence.
    pub fn is_condition_failure(&self) -> bool {
        matches!(self, SuitError::ConditionFailed { .. })
    }
}

impl Describe for SuitError {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        let n = |v: usize| Dec(v as u64);
        match *self {
            SuitError::Malformed(part) => out.fill("malformed {}", &[Str(part.name())]),
            SuitError::LimitExceeded(part) => {
                out.fill("{} exceeds a processor limit", &[Str(part.name())])
            }
            SuitError::Unauthenticated => {
                out.put("manifest not authenticated: no valid signature by a trusted key")
            }
            SuitError::ManifestDigestMismatch => {
                out.put("manifest does not match its signed digest (modified after signing)")
            }
            SuitError::UnsupportedDigestAlgorithm(alg) => {
                out.fill("unsupported digest algorithm {}", &[Int(alg)])
            }
            SuitError::UnsupportedVersion(v) => {
                out.fill("unsupported manifest version {}", &[Dec(v)])
            }
            SuitError::RolledBack { stored, offered } => out.fill(
                "rollback refused: manifest sequence number {} is older than {}",
                &[Dec(offered), Dec(stored)],
            ),
            SuitError::SeverableDigestMismatch(s) => out.fill(
                "severable element {} does not match its digest",
                &[Str(s.name())],
            ),
            SuitError::SeveredMemberMissing(s) => out.fill(
                "sequence {} was severed from the envelope",
                &[Str(s.name())],
            ),
            SuitError::UnsupportedFeature(s) => {
                out.fill("unsupported extension in {}", &[Str(s.name())])
            }
            SuitError::UnsupportedComponent { index } => {
                out.fill("component {} is not present on this device", &[n(index)])
            }
            SuitError::MissingComponentIndex(s) => out.fill(
                "sequence {} of a multi-component manifest does not start with set-component-index",
                &[Str(s.name())],
            ),
            SuitError::InvalidComponentIndex(i) => {
                out.fill("invalid component index {}", &[Dec(i)])
            }
            SuitError::UnsupportedCommand(c) => out.fill("unsupported command {}", &[Int(c)]),
            SuitError::UnsupportedParameter(p) => out.fill("unsupported parameter {}", &[Int(p)]),
            SuitError::SoftFailureNotAllowed => {
                out.put("soft-failure set outside try-each or run-sequence")
            }
            SuitError::ConditionFailed {
                condition,
                component,
            } => out.fill(
                "condition {} failed for component {}",
                &[Str(condition.name()), n(component)],
            ),
            SuitError::MissingParameter {
                directive,
                parameter,
                component,
            } => out.fill(
                "{} needs parameter {} for component {}",
                &[Str(directive.name()), Str(parameter.name()), n(component)],
            ),
            SuitError::DigestMismatch { component } => out.fill(
                "payload for component {} does not match its digest",
                &[n(component)],
            ),
            SuitError::SizeMismatch {
                component,
                expected,
                actual,
            } => out.fill(
                "payload for component {} has {} bytes, image size is {}",
                &[n(component), Dec(actual), Dec(expected)],
            ),
            SuitError::PayloadTooLarge { component, limit } => out.fill(
                "payload for component {} exceeds its limit of {} bytes",
                &[n(component), Dec(limit)],
            ),
            SuitError::Platform {
                directive,
                component,
                error,
            } => out.fill(
                "{} on component {} failed: {}",
                &[Str(directive.name()), n(component), Text(&error)],
            ),
            SuitError::BufferTooSmall => out.put("buffer too small for the envelope"),
        }
    }
}

impl fmt::Display for SuitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SuitError {}
