//! The call gate between the non-secure application and the secure partition: the only way
//! in. Each entry point is an `extern "cmse-nonsecure-entry"` function of the secure partition
//! (GNU ld puts an `SG; B.W` veneer for it in the non-secure-callable page); this crate holds
//! what both sides must agree on — names, status codes, shared structures — and, with the
//! `client` feature, the non-secure side's declarations and safe wrappers.
//!
//! ```text
//!  non-secure app ── BL csl_x (veneer, NSC page) ── SG ── B.W __acle_se_csl_x ── secure code
//!                                                         │ every pointer: TTAT range check
//!                                                         │ copy in, work, copy out
//!                  ◀──────────────── BXNS lr (registers scrubbed) ─────────────┘
//! ```
//!
//! Entry points take at most four 32-bit arguments (registers only: the secure side never reads
//! the non-secure stack) and return a PSA status (`< 0`) or a non-negative result.
#![no_std]
#![cfg_attr(not(feature = "client"), forbid(unsafe_code))]

/// PSA status codes the gate returns (values from the PSA Certified APIs).
pub mod status {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// A pointer or length from the caller is not memory the caller may access: the secure
    /// side refused to touch it (TF-M's `PSA_ERROR_PROGRAMMER_ERROR`).
    pub const PROGRAMMER_ERROR: i32 = -129;
    /// Unspecified failure.
    pub const GENERIC_ERROR: i32 = -132;
    /// Not allowed in the current state or for this caller.
    pub const NOT_PERMITTED: i32 = -133;
    /// Not supported.
    pub const NOT_SUPPORTED: i32 = -134;
    /// An argument is invalid.
    pub const INVALID_ARGUMENT: i32 = -135;
    /// The operation is not valid in the current state.
    pub const BAD_STATE: i32 = -137;
    /// The output buffer is too small.
    pub const BUFFER_TOO_SMALL: i32 = -138;
    /// The item already exists (a write-once asset that is set).
    pub const ALREADY_EXISTS: i32 = -139;
    /// The item does not exist.
    pub const DOES_NOT_EXIST: i32 = -140;
    /// Not enough memory.
    pub const INSUFFICIENT_MEMORY: i32 = -141;
    /// Not enough storage (the image does not fit, storage is full).
    pub const INSUFFICIENT_STORAGE: i32 = -142;
    /// Storage failure.
    pub const STORAGE_FAILURE: i32 = -146;
    /// Not enough entropy.
    pub const INSUFFICIENT_ENTROPY: i32 = -148;
    /// The image or data failed verification.
    pub const INVALID_SIGNATURE: i32 = -149;
    /// Stored data is corrupt (or rolled back).
    pub const DATA_CORRUPT: i32 = -152;
    /// Data is invalid (a malformed manifest or image).
    pub const DATA_INVALID: i32 = -153;
    /// Success, and a reboot completes the operation (`PSA_SUCCESS_REBOOT`).
    pub const SUCCESS_REBOOT: i32 = 1;

    /// A short name for a status, for logs.
    pub fn name(s: i32) -> &'static str {
        match s {
            SUCCESS => "success",
            PROGRAMMER_ERROR => "programmer error (pointer refused)",
            GENERIC_ERROR => "generic error",
            NOT_PERMITTED => "not permitted",
            NOT_SUPPORTED => "not supported",
            INVALID_ARGUMENT => "invalid argument",
            BAD_STATE => "bad state",
            BUFFER_TOO_SMALL => "buffer too small",
            ALREADY_EXISTS => "already exists",
            DOES_NOT_EXIST => "does not exist",
            INSUFFICIENT_MEMORY => "insufficient memory",
            INSUFFICIENT_STORAGE => "insufficient storage",
            STORAGE_FAILURE => "storage failure",
            INSUFFICIENT_ENTROPY => "insufficient entropy",
            INVALID_SIGNATURE => "invalid signature",
            DATA_CORRUPT => "data corrupt",
            DATA_INVALID => "data invalid",
            SUCCESS_REBOOT => "success, reboot required",
            _ => "unknown status",
        }
    }
}

/// What the bootloader did about upgrades on this boot ([`BootInfo::upgrade`]).
pub mod upgrade {
    /// Nothing to do.
    pub const NONE: u32 = 0;
    /// A candidate was swapped in for a test run (reverted at the next boot unless accepted).
    pub const INSTALLED_TEST: u32 = 1;
    /// A candidate was swapped in and confirmed at once.
    pub const INSTALLED_PERMANENT: u32 = 2;
    /// An unaccepted test image was swapped back out: the previous image runs again.
    pub const REVERTED: u32 = 3;
    /// A candidate was copied over the primary slot (overwrite-only mode).
    pub const INSTALLED_OVERWRITE: u32 = 4;
    /// The candidate was refused (the reason is in [`super::BootInfo::text`]).
    pub const REFUSED: u32 = 5;
    /// A revert was needed but the previous image is not acceptable.
    pub const REVERT_REFUSED: u32 = 6;

    /// A short name for an upgrade code.
    pub fn name(code: u32) -> &'static str {
        match code {
            NONE => "none",
            INSTALLED_TEST => "installed for a test run",
            INSTALLED_PERMANENT => "installed permanently",
            REVERTED => "reverted to the previous image",
            INSTALLED_OVERWRITE => "installed (overwrite)",
            REFUSED => "refused",
            REVERT_REFUSED => "revert refused",
            _ => "unknown",
        }
    }
}

/// Bytes of text in [`BootInfo`].
pub const BOOT_TEXT_CAP: usize = 192;

/// What the secure side tells the application about this boot (`csl_boot_info`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// Running image version: major, minor, revision, build.
    pub version: [u32; 4],
    /// Its security counter.
    pub security_counter: u32,
    /// Anti-rollback counter in OTP after this boot.
    pub counter: u32,
    /// PSA lifecycle (0x3000 = secured).
    pub lifecycle: u32,
    /// 1 when the running image is confirmed; 0 while it is on trial.
    pub confirmed: u32,
    /// [`upgrade`] code.
    pub upgrade: u32,
    /// Bootloader version: major, minor, revision, build.
    pub bootloader_version: [u32; 4],
    /// SHA-256 measurement of the running image.
    pub digest: [u8; 32],
    /// Length of `text`.
    pub text_len: u32,
    /// Why an upgrade was refused (UTF-8).
    pub text: [u8; BOOT_TEXT_CAP],
}

impl BootInfo {
    /// An all-zero record.
    pub const fn zeroed() -> Self {
        BootInfo {
            version: [0; 4],
            security_counter: 0,
            counter: 0,
            lifecycle: 0,
            confirmed: 0,
            upgrade: 0,
            bootloader_version: [0; 4],
            digest: [0; 32],
            text_len: 0,
            text: [0; BOOT_TEXT_CAP],
        }
    }

    /// The refusal text.
    pub fn text(&self) -> &str {
        let n = (self.text_len as usize).min(BOOT_TEXT_CAP);
        core::str::from_utf8(self.text.get(..n).unwrap_or(&[])).unwrap_or("")
    }
}

/// Size of [`BootInfo`] in bytes.
pub const BOOT_INFO_SIZE: usize = core::mem::size_of::<BootInfo>();

/// Largest attestation token the gate returns.
pub const TOKEN_CAP: usize = 1024;

/// Largest SUIT envelope `csl_update_begin` takes (it is copied into secure memory whole; the
/// update client keeps at most this much: `castellan_services::update::MAX_ENVELOPE_LEN`).
pub const ENVELOPE_CAP: usize = 1024;

/// Largest block `csl_update_write` takes in one call.
pub const UPDATE_BLOCK_CAP: usize = 1024;

/// Length of a release trust anchor (`csl_update_anchor`): a P-256 public key, SEC1
/// uncompressed.
pub const TRUST_ANCHOR_LEN: usize = 65;

/// The device class this firmware belongs to: manifests must name its class id
/// (`castellan_suit::ids::class_id(vendor_id("castellan"), "an505-v1")`).
pub const DEVICE_CLASS: &str = "an505-v1";

/// The vendor name the device's vendor id derives from (`castellan_suit::ids::DEFAULT_VENDOR`).
pub const VENDOR: &str = "castellan";

/// What `csl_update_status` reports about the secure partition's SUIT update client.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateStatus {
    /// [`update_state`] code.
    pub state: u32,
    /// 1 when a release trust anchor is provisioned.
    pub anchor: u32,
    /// PSA status of why the last update failed after its installation (0 if none).
    pub error: i32,
    /// Bytes of the payload received so far (or the resume offset after a reboot).
    pub received: u32,
    /// The image size the pending manifest names (0 when none is downloading).
    pub image_size: u32,
    /// Reserved (0).
    pub reserved: u32,
    /// Sequence number of the pending manifest (0 when none).
    pub sequence: u64,
    /// Sequence number of the installed release (0 before the first update).
    pub installed_sequence: u64,
}

impl UpdateStatus {
    /// An all-zero record.
    pub const fn zeroed() -> Self {
        UpdateStatus {
            state: 0,
            anchor: 0,
            error: 0,
            received: 0,
            image_size: 0,
            reserved: 0,
            sequence: 0,
            installed_sequence: 0,
        }
    }
}

/// Size of [`UpdateStatus`] in bytes.
pub const UPDATE_STATUS_SIZE: usize = core::mem::size_of::<UpdateStatus>();

/// States of the SUIT update client ([`UpdateStatus::state`]), after
/// `castellan_services::update::UpdateState`.
pub mod update_state {
    /// No update in progress.
    pub const IDLE: u32 = 0;
    /// A manifest is authenticated; the payload is being received.
    pub const DOWNLOADING: u32 = 1;
    /// Verified and installed: the bootloader swaps it in for a trial at the next reboot.
    pub const STAGED: u32 = 2;
    /// The new image runs on trial: accept keeps it.
    pub const TRIAL: u32 = 3;
    /// The trial image was rejected; the previous image comes back at the next reboot.
    pub const REJECTED: u32 = 4;
    /// The trial image was not accepted and the previous image runs again.
    pub const REVERTED: u32 = 5;
    /// The update failed after its installation ([`super::UpdateStatus::error`]).
    pub const FAILED: u32 = 6;

    /// A short name for a state.
    pub fn name(s: u32) -> &'static str {
        match s {
            IDLE => "idle",
            DOWNLOADING => "downloading",
            STAGED => "staged for the next boot",
            TRIAL => "trial",
            REJECTED => "rejected",
            REVERTED => "reverted",
            FAILED => "failed",
            _ => "unknown",
        }
    }
}

#[cfg(feature = "client")]
pub mod client;
