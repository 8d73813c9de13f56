//! The crate's one error type, [`ServiceError`], and the PSA status codes it maps to, so that a
//! TrustZone call gate can pass every result across the world boundary as one `i32`.
//!
//! ```text
//!  service call ── Result<T, ServiceError> ──▶ call gate: status_of(&result) ──▶ i32 (psa_status_t)
//!                                                0 = PSA_SUCCESS, < 0 = psa::ERROR_*
//! ```

use core::fmt;

use castellan_text::Piece::{Dec, Str, Text};
use castellan_text::{Describe, Sink, TextError};

use castellan_hal::HalError;
use castellan_image::ImageError;

/// PSA status codes (`psa_status_t`): the gate's one definition, re-exported.
pub use castellan_gate_api::psa;

/// Why a secure service refused or failed a call. Every variant says what is wrong and maps to
/// one PSA status code ([`ServiceError::psa_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceError {
    /// An argument is malformed or out of range (uid 0, bad nonce length, wrong hash size, ...);
    /// names the argument and the rule.
    InvalidArgument(&'static str),
    /// The call is well-formed but the policy forbids it (a usage flag is missing, the asset is
    /// write-once, the key is built in, ...); names the rule.
    NotPermitted(&'static str),
    /// The service does not implement this key type, algorithm or flag; names it.
    NotSupported(&'static str),
    /// No key or asset has this identifier (for this caller).
    DoesNotExist,
    /// A persistent key with this identifier already exists.
    AlreadyExists,
    /// The output buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes the output needs.
        needed: usize,
    },
    /// The call is not allowed in the current state (lifecycle, update state machine); names it.
    BadState(&'static str),
    /// The asset is larger than the store accepts.
    AssetTooLarge {
        /// Size of the asset offered.
        size: usize,
        /// Largest asset size the store accepts.
        max: usize,
    },
    /// The store already holds its maximum number of assets (keys included).
    TooManyAssets {
        /// The configured maximum.
        max: usize,
    },
    /// The trusted-storage area has no room for the write, even after compaction.
    StorageFull,
    /// Every volatile key slot is in use.
    KeySlotsFull,
    /// The monotonic counter that protects storage against replay has no values left.
    CounterExhausted,
    /// A signature did not verify (verify-hash, or an update candidate's image signature).
    InvalidSignature,
    /// Stored data failed its integrity check (tampered or corrupted flash); names what.
    StorageCorrupt(&'static str),
    /// The storage holds an older state than the replay counter allows: an old copy of the flash
    /// was put back (or the storage was wiped). The store refuses to mount.
    StorageRollback {
        /// Counter value bound into the newest state found in flash (0: blank storage).
        stored: u32,
        /// Value of the hardware monotonic counter.
        hardware: u32,
    },
    /// The storage root key cannot be unwrapped: its area is corrupt, or the sealing CDI
    /// changed (different boot chain authority or debug mode).
    StorageKeyInvalid,
    /// A hardware operation failed (flash, fuses, counter, RNG); power loss included.
    Hardware(HalError),
    /// A cryptographic primitive failed where it should not (internal error); names it.
    Crypto(&'static str),
    /// The attestation token could not be built (from `castellan-attest`).
    Token(castellan_attest::Error),
    /// A firmware update candidate is not an acceptable image (from `castellan-image`).
    CandidateRejected(castellan_image::ImageError),
    /// The update client refused an update manifest, its payload or a step of the update
    /// (see [`UpdateRefusal`]).
    UpdateRefused(UpdateRefusal),
}

/// Why the update client ([`crate::update`]) refused a manifest, a payload block or a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateRefusal {
    /// No release trust anchor was provisioned: the device refuses every update.
    NoTrustAnchor,
    /// The envelope is larger than the update client keeps.
    EnvelopeTooLarge {
        /// Its length.
        len: usize,
        /// The largest envelope kept ([`crate::update::MAX_ENVELOPE_LEN`]).
        max: usize,
    },
    /// The SUIT processor refused the manifest or the payload: not authenticated by the trust
    /// anchor, another vendor or device class, malformed, or a payload whose size or digest
    /// is not the manifest's.
    Manifest(castellan_suit::SuitError),
    /// The manifest's sequence number is not above the installed one (a rollback, or a
    /// replayed offer of an earlier campaign).
    NotNewer {
        /// The manifest's sequence number.
        offered: u64,
        /// The sequence number of the installed release.
        installed: u64,
    },
    /// Another update with a higher sequence number is already pending.
    OlderThanPending {
        /// The manifest's sequence number.
        offered: u64,
        /// The pending update's sequence number.
        pending: u64,
    },
    /// The release expired (freeze protection): the device's time is at or past the
    /// manifest's `castellan-expires`.
    Expired {
        /// The manifest's expiry, unix seconds.
        expires: u64,
        /// The device's time, unix seconds.
        now: u64,
    },
    /// The shared sequence does not give the image size (needed to refuse endless data).
    NoImageSize,
    /// The shared sequence does not give a SHA-256 image digest.
    NoImageDigest,
    /// The image is larger than the secondary slot takes.
    ImageTooLarge {
        /// The manifest's image size.
        size: u64,
        /// The largest image the slot takes.
        max: u32,
    },
    /// Bytes beyond the manifest's image size were offered ("endless data"); nothing was
    /// written.
    EndlessData {
        /// The manifest's image size.
        image_size: u32,
        /// Where the offered block would have ended.
        end: u64,
    },
    /// A block does not start where the download stands.
    OutOfOrder {
        /// The offset the next block must have.
        expected: u32,
        /// The offset of the block offered.
        offset: u64,
    },
    /// `update_finish` before the whole image was received.
    Incomplete {
        /// Bytes received.
        received: u32,
        /// The manifest's image size.
        image_size: u32,
    },
    /// No update is in progress (call `update_begin` first).
    NothingInProgress,
    /// An update is installed and waits for its reboot, or runs on trial: it must be
    /// accepted, rejected or reverted before another one starts.
    InstallInProgress,
}

impl UpdateRefusal {
    /// The PSA status a call gate returns for this refusal.
    pub const fn psa_status(&self) -> i32 {
        use castellan_suit::SuitError as S;
        match self {
            UpdateRefusal::Manifest(
                S::Unauthenticated
                | S::ManifestDigestMismatch
                | S::DigestMismatch { .. }
                | S::SizeMismatch { .. }
                | S::PayloadTooLarge { .. },
            ) => psa::ERROR_INVALID_SIGNATURE,
            UpdateRefusal::Manifest(S::ConditionFailed { .. } | S::RolledBack { .. })
            | UpdateRefusal::NoTrustAnchor
            | UpdateRefusal::NotNewer { .. }
            | UpdateRefusal::OlderThanPending { .. }
            | UpdateRefusal::Expired { .. } => psa::ERROR_NOT_PERMITTED,
            UpdateRefusal::Manifest(_)
            | UpdateRefusal::EnvelopeTooLarge { .. }
            | UpdateRefusal::NoImageSize
            | UpdateRefusal::NoImageDigest
            | UpdateRefusal::ImageTooLarge { .. }
            | UpdateRefusal::EndlessData { .. }
            | UpdateRefusal::OutOfOrder { .. } => psa::ERROR_INVALID_ARGUMENT,
            UpdateRefusal::Incomplete { .. }
            | UpdateRefusal::NothingInProgress
            | UpdateRefusal::InstallInProgress => psa::ERROR_BAD_STATE,
        }
    }
}

impl Describe for UpdateRefusal {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        use castellan_suit::{Condition, SuitError};
        match *self {
            UpdateRefusal::NoTrustAnchor => {
                out.put("no release trust anchor is provisioned: the device refuses every update")
            }
            UpdateRefusal::EnvelopeTooLarge { len, max } => out.fill("the manifest envelope has {} bytes, more than the {} the device keeps", &[Dec(len as u64), Dec(max as u64)]),
            UpdateRefusal::Manifest(SuitError::ConditionFailed {
                condition: Condition::ClassIdentifier,
                ..
            }) => out.put("the manifest is for another device class"),
            UpdateRefusal::Manifest(SuitError::ConditionFailed {
                condition: Condition::VendorIdentifier,
                ..
            }) => out.put("the manifest is for another vendor"),
            UpdateRefusal::Manifest(SuitError::Unauthenticated) => out
                .put("the manifest is not signed by the release trust anchor (not authenticated)"),
            UpdateRefusal::Manifest(ref e) => out.fill("manifest refused: {}", &[Text(e)]),
            UpdateRefusal::NotNewer { offered, installed } => out.fill("manifest sequence {} is not newer than the installed {}", &[Dec(offered), Dec(installed)]),
            UpdateRefusal::OlderThanPending { offered, pending } => out.fill("manifest sequence {} is older than the pending update's {}", &[Dec(offered), Dec(pending)]),
            UpdateRefusal::Expired { expires, now } => out.fill("the release expired at {} (unix seconds) and the device's time is {}", &[Dec(expires), Dec(now)]),
            UpdateRefusal::NoImageSize => {
                out.put("the manifest's shared sequence gives no image size")
            }
            UpdateRefusal::NoImageDigest => {
                out.put("the manifest's shared sequence gives no SHA-256 image digest")
            }
            UpdateRefusal::ImageTooLarge { size, max } => out.fill("the image has {} bytes, the secondary slot takes at most {}", &[Dec(size), Dec(max.into())]),
            UpdateRefusal::EndlessData { image_size, end } => out.fill("endless data: a block ending at byte {} goes beyond the manifest's image                  size of {} bytes", &[Dec(end), Dec(image_size.into())]),
            UpdateRefusal::OutOfOrder { expected, offset } => out.fill("a block at offset {}, but the download stands at {}", &[Dec(offset), Dec(expected.into())]),
            UpdateRefusal::Incomplete {
                received,
                image_size,
            } => out.fill("only {} of the image's {} bytes were received", &[Dec(received.into()), Dec(image_size.into())]),
            UpdateRefusal::NothingInProgress => {
                out.put("no update is in progress (begin one with a manifest first)")
            }
            UpdateRefusal::InstallInProgress => {
                out.put("an update is installed and waits for its reboot or its acceptance")
            }
        }
    }
}

impl fmt::Display for UpdateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

impl ServiceError {
    /// The `psa_status_t` a call gate returns for this error.
    pub const fn psa_status(&self) -> i32 {
        match self {
            ServiceError::InvalidArgument(_) | ServiceError::AssetTooLarge { .. } => {
                psa::ERROR_INVALID_ARGUMENT
            }
            ServiceError::NotPermitted(_) => psa::ERROR_NOT_PERMITTED,
            ServiceError::NotSupported(_) => psa::ERROR_NOT_SUPPORTED,
            ServiceError::DoesNotExist => psa::ERROR_DOES_NOT_EXIST,
            ServiceError::AlreadyExists => psa::ERROR_ALREADY_EXISTS,
            ServiceError::BufferTooSmall { .. } => psa::ERROR_BUFFER_TOO_SMALL,
            ServiceError::BadState(_) => psa::ERROR_BAD_STATE,
            ServiceError::TooManyAssets { .. }
            | ServiceError::StorageFull
            | ServiceError::CounterExhausted => psa::ERROR_INSUFFICIENT_STORAGE,
            ServiceError::KeySlotsFull => psa::ERROR_INSUFFICIENT_MEMORY,
            ServiceError::InvalidSignature => psa::ERROR_INVALID_SIGNATURE,
            ServiceError::StorageCorrupt(_)
            | ServiceError::StorageRollback { .. }
            | ServiceError::StorageKeyInvalid => psa::ERROR_DATA_CORRUPT,
            ServiceError::Hardware(HalError::RngFailure) => psa::ERROR_INSUFFICIENT_ENTROPY,
            ServiceError::Hardware(_) => psa::ERROR_STORAGE_FAILURE,
            ServiceError::Crypto(_) => psa::ERROR_GENERIC_ERROR,
            ServiceError::Token(castellan_attest::Error::BufferTooSmall { .. }) => {
                psa::ERROR_BUFFER_TOO_SMALL
            }
            ServiceError::Token(castellan_attest::Error::InvalidNonceLength(_)) => {
                psa::ERROR_INVALID_ARGUMENT
            }
            ServiceError::Token(_) => psa::ERROR_GENERIC_ERROR,
            ServiceError::UpdateRefused(r) => r.psa_status(),
            ServiceError::CandidateRejected(e) => match e {
                ImageError::HashMismatch
                | ImageError::MissingKey
                | ImageError::KeyMismatch
                | ImageError::MissingSignature
                | ImageError::AlgorithmMismatch
                | ImageError::BadSignature
                | ImageError::BadPublicKey => psa::ERROR_INVALID_SIGNATURE,
                _ => psa::ERROR_INVALID_ARGUMENT,
            },
        }
    }

    /// True when the error is a power cut: the caller must stop (the device is off).
    pub const fn is_power_loss(&self) -> bool {
        matches!(self, ServiceError::Hardware(HalError::PowerLoss))
    }
}

/// The `psa_status_t` of a service result: [`psa::SUCCESS`] or the error's code.
pub fn status_of<T>(result: &Result<T, ServiceError>) -> i32 {
    match result {
        Ok(_) => psa::SUCCESS,
        Err(e) => e.psa_status(),
    }
}

impl From<HalError> for ServiceError {
    fn from(e: HalError) -> Self {
        ServiceError::Hardware(e)
    }
}

impl From<UpdateRefusal> for ServiceError {
    fn from(r: UpdateRefusal) -> Self {
        ServiceError::UpdateRefused(r)
    }
}

impl From<castellan_attest::Error> for ServiceError {
    fn from(e: castellan_attest::Error) -> Self {
        ServiceError::Token(e)
    }
}

impl Describe for ServiceError {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        match *self {
            ServiceError::InvalidArgument(what) => {
                out.fill("invalid argument: {}", &[Str(what)])
            }
            ServiceError::NotPermitted(why) => out.fill("not permitted: {}", &[Str(why)]),
            ServiceError::NotSupported(what) => out.fill("not supported: {}", &[Str(what)]),
            ServiceError::DoesNotExist => out.put("no key or asset has this identifier"),
            ServiceError::AlreadyExists => out.put("a key with this identifier already exists"),
            ServiceError::BufferTooSmall { needed } => out.fill("output buffer too small: {} bytes needed", &[Dec(needed as u64)]),
            ServiceError::BadState(why) => {
                out.fill("not allowed in the current state: {}", &[Str(why)])
            }
            ServiceError::AssetTooLarge { size, max } => out.fill("asset of {} bytes exceeds the {}-byte limit", &[Dec(size as u64), Dec(max as u64)]),
            ServiceError::TooManyAssets { max } => out.fill("trusted storage already holds its maximum of {} assets", &[Dec(max as u64)]),
            ServiceError::StorageFull => {
                out.put("trusted storage has no room for this write, even after compaction")
            }
            ServiceError::KeySlotsFull => out.put("every volatile key slot is in use"),
            ServiceError::CounterExhausted => {
                out.put("the storage replay-protection counter has no values left")
            }
            ServiceError::InvalidSignature => out.put("signature does not verify"),
            ServiceError::StorageCorrupt(what) => out.fill("trusted storage failed its integrity check: {}", &[Str(what)]),
            ServiceError::StorageRollback { stored, hardware } => out.fill("trusted storage was rolled back: newest state in flash is bound to counter {}, the hardware counter is at {} (an old copy of the flash was put back or the storage was wiped)", &[Dec(stored.into()), Dec(hardware.into())]),
            ServiceError::StorageKeyInvalid => out.put(
                "the storage root key cannot be unwrapped (key area corrupt, or the sealing CDI \
                 changed)",
            ),
            ServiceError::Hardware(ref e) => {
                out.fill("hardware operation failed: {}", &[Text(e)])
            }
            ServiceError::Crypto(what) => {
                out.fill("cryptographic operation failed: {}", &[Str(what)])
            }
            ServiceError::Token(ref e) => out.fill("attestation token: {}", &[Text(e)]),
            ServiceError::CandidateRejected(ref e) => {
                out.fill("update candidate refused: {}", &[Text(e)])
            }
            ServiceError::UpdateRefused(ref r) => out.fill("update refused: {}", &[Text(r)]),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        castellan_text::display(self, f)
    }
}

impl core::error::Error for ServiceError {}
