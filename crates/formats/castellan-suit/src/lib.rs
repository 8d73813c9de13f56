//! SUIT manifests (draft-ietf-suit-manifest-34): a `no_std`, heap-free manifest processor for
//! devices, and (feature `std`) an envelope builder/signer and a human-readable `describe`.
//!
//! ```text
//!  bytes ─▶ Envelope::parse ─▶ authenticate (COSE_Sign1 ES256/ESP256/EdDSA + manifest digest)
//!        ─▶ AuthenticatedManifest ─▶ Processor::process(Procedure) ─▶ Platform callbacks
//!                                     rollback · shared sequence · fetch/install/validate
//!                                     or validate/load/invoke
//! ```
//!
//! Security properties (RFC 9124 threats, each with a named test):
//! nothing of the manifest is interpreted before its signature and digest verify; the processed
//! bytes are the authenticated bytes (borrowed immutably); rolled-back sequence numbers and
//! incompatible vendor/class identifiers are refused; payloads are hashed while they stream, may
//! not exceed the image size by a single byte, and are committed only when size and digest match;
//! image-match re-hashes the component when it runs, so a payload replaced after verification is
//! caught.
//!
//! Decisions where the draft leaves room (each is tested):
//! - Procedures: update = payload-fetch, install, validate; invoke = validate, load, invoke. Each
//!   sequence is preceded by the shared sequence with parameters cleared and component index 0;
//!   when none of a procedure's sequences is present the shared sequence still runs once.
//! - A manifest whose sequence number equals the stored one is accepted (re-applying or booting
//!   the current manifest); lower is refused.
//! - Commands always run strictly in order (strict-order = false only *permits* parallelism).
//! - fetch, copy and write check the destination's image size and digest while streaming when
//!   those parameters are set; without an image size the platform's capacity is the limit.
//! - Try-each does not roll back parameters set by a failed alternative (the draft asks for
//!   none); soft-failure is scoped to the sequence as the draft says, and setting it outside
//!   try-each / run-sequence aborts.
//! - Multi-component manifests must start every top-level sequence with set-component-index.
//! - Not implemented (refused with a typed error, never ignored): dependencies and
//!   process-dependency (trust-domains draft), encryption info, unknown commands/parameters.
//!   Custom parameters (< -256) are ignored by the commands, as the draft allows; a device reads
//!   one it defines from the shared sequence with `AuthenticatedManifest::custom_parameter`
//!   (Castellan's release expiry, -257 "castellan-expires": `AuthenticatedManifest::expires`). COSE_Sign/Mac blocks are
//!   skipped; at least one COSE_Sign1 must verify with a trusted key.
//!
//! Features, all default: `std` (host builder and `describe`; brings the two others), `eddsa`
//! (EdDSA/Ed25519 COSE_Sign1 and Ed25519 trust anchors) and `sha512` (SHA-384/SHA-512
//! `SUIT_Digest`s). ES256/ESP256 and SHA-256 are always built in; a device that only takes
//! ES256 manifests with SHA-256 digests turns default features off and links neither Ed25519
//! nor SHA-512 (EdDSA blocks are then skipped as an unsupported algorithm, SHA-384/512 digests
//! are `SuitError::UnsupportedDigestAlgorithm`).

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod cbor;
pub mod command;
mod cose;
mod digest;
mod envelope;
mod error;
pub mod ids;
mod manifest;
mod platform;
mod processor;
mod transfer;

#[cfg(feature = "std")]
pub mod builder;
#[cfg(feature = "std")]
mod describe;

pub use command::{CUSTOM_PARAMETER_EXPIRES, Command, Condition, Directive, Parameter, Section};
pub use cose::{SignatureAlgorithm, TrustAnchor};
pub use digest::{DigestAlgorithm, SuitDigest};
pub use envelope::{
    AuthenticatedManifest, Envelope, MAX_AUTH_BLOCKS, MAX_ENVELOPE_ENTRIES, authenticate,
    authenticate_copy,
};
pub use error::{Part, PlatformError, SuitError};
pub use manifest::{ComponentId, MAX_COMPONENT_ID_SEGMENTS, MAX_COMPONENTS, Segments};
pub use platform::{Component, DeviceIdentity, Identifier, Platform, Record};
pub use processor::{MAX_NESTING, Procedure, Processor, SharedParameters, process};
pub use transfer::CHUNK_SIZE;

#[cfg(feature = "std")]
pub use describe::describe;
