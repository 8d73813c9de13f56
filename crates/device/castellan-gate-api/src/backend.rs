//! What the secure-side dispatcher ([`crate::dispatch`]) works over: the caller's memory
//! ([`NsMemory`]), the secure services ([`GateServices`], implemented for
//! `castellan_services::SecureServices` so that firmware and host share it) and the platform
//! ([`GateBackend`]: console, command line, boot record, raw firmware update, reset, power off,
//! what to print or keep about a call).

use castellan_text::{Describe, Sink, TextError};

use crate::Op;
use crate::op::{HASH_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN, TRUST_ANCHOR_LEN};
use crate::records::{BootInfo, ItsSummary, REFUSAL_TEXT_CAP, Refusal, UpdateStatus, refusal_kind};
use crate::sensor::Detector;

/// The access the secure side is about to make to the caller's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// It reads (input).
    Read,
    /// It writes (output).
    Write,
}

/// The non-secure caller's memory, as the secure side may touch it. Every method refuses a
/// range the caller itself may not access (a secure address, an address range that wraps,
/// memory the caller cannot write), so a caller cannot make the secure side read or write for
/// it what it could not.
pub trait NsMemory {
    /// True when the caller may make `access` to all of `addr .. addr + len`.
    fn check(&self, addr: u32, len: u32, access: Access) -> bool;

    /// Copies `dst.len()` bytes at `addr` into `dst`; `Err(PROGRAMMER_ERROR)` when the range is
    /// refused (nothing is read).
    fn read(&mut self, addr: u32, dst: &mut [u8]) -> Result<(), i32>;

    /// Copies `src` to `addr`; `Err(PROGRAMMER_ERROR)` when the range is refused (nothing is
    /// written).
    fn write(&mut self, addr: u32, src: &[u8]) -> Result<(), i32>;
}

/// A service error as the gate passes it on.
pub trait Fault: Describe {
    /// Its PSA status (`< 0`).
    fn status(&self) -> i32;

    /// The reason alone, without a service's prefix (what a log line after "refused: " says).
    fn reason(&self) -> &dyn Describe;

    /// Its [`refusal_kind`] and the values that kind names.
    fn kind(&self) -> (u32, [u64; 2]) {
        (refusal_kind::SERVICE, [0; 2])
    }
}

impl Refusal {
    /// The record of `fault` (its description cut at [`REFUSAL_TEXT_CAP`] bytes).
    pub fn of(fault: &dyn Fault) -> Refusal {
        let mut text = Text::default();
        let _ = fault.describe(&mut text);
        let mut reason = Text::default();
        let _ = fault.reason().describe(&mut reason);
        let (kind, values) = fault.kind();
        let mut r = Refusal::none();
        r.status = fault.status();
        r.kind = kind;
        r.values = values;
        let start = text.total.saturating_sub(reason.total);
        r.set_text(text.as_str(), start);
        r
    }
}

/// A fixed buffer that keeps the first [`REFUSAL_TEXT_CAP`] bytes written and counts all.
struct Text {
    buf: [u8; REFUSAL_TEXT_CAP],
    len: usize,
    total: usize,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            buf: [0; REFUSAL_TEXT_CAP],
            len: 0,
            total: 0,
        }
    }
}

impl Text {
    fn as_str(&self) -> &str {
        let b = self.buf.get(..self.len).unwrap_or(&[]);
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(b.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
        }
    }
}

impl Sink for Text {
    fn put(&mut self, s: &str) -> Result<(), TextError> {
        self.total += s.len();
        let room = REFUSAL_TEXT_CAP - self.len;
        let n = s.len().min(room);
        if let (Some(d), Some(src)) = (
            self.buf.get_mut(self.len..self.len + n),
            s.as_bytes().get(..n),
        ) {
            d.copy_from_slice(src);
        }
        self.len += n;
        Ok(())
    }
}

/// What `UpdateBegin` accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateBegun {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The image size (bytes to download).
    pub image_size: u32,
    /// Where the download continues (0 for a new update).
    pub resume_offset: u32,
}

/// The secure services behind the gate, for the one non-secure caller (client id -1).
pub trait GateServices {
    /// Their error.
    type Error: Fault;

    /// An attestation token over `nonce` into `out`; its length.
    fn attest_token(&mut self, nonce: &[u8], out: &mut [u8]) -> Result<usize, Self::Error>;
    /// The attestation public key.
    fn attest_public_key(&mut self) -> [u8; PUBLIC_KEY_LEN];
    /// Stores `data` under `uid`.
    fn its_set(&mut self, uid: u32, data: &[u8]) -> Result<(), Self::Error>;
    /// Reads asset `uid` into `out`; its length.
    fn its_get(&mut self, uid: u32, out: &mut [u8]) -> Result<usize, Self::Error>;
    /// Trusted storage's state.
    fn its_status(&mut self) -> Result<ItsSummary, Self::Error>;
    /// Provisions the release trust anchor, write-once.
    fn update_anchor(&mut self, key: &[u8; TRUST_ANCHOR_LEN]) -> Result<(), Self::Error>;
    /// Starts or resumes an update from `envelope` (`now`: unix seconds, if known).
    fn update_begin(
        &mut self,
        envelope: &[u8],
        now: Option<u64>,
    ) -> Result<UpdateBegun, Self::Error>;
    /// Writes a payload block at `offset`; the bytes received so far.
    fn update_write(&mut self, offset: u64, data: &[u8]) -> Result<u32, Self::Error>;
    /// Verifies and installs the payload; the PSA success code.
    fn update_finish(&mut self) -> Result<i32, Self::Error>;
    /// Abandons the update in progress.
    fn update_cancel(&mut self) -> Result<(), Self::Error>;
    /// The update client's state.
    fn update_status(&mut self) -> Result<UpdateStatus, Self::Error>;
    /// The device identity key's public key (generated on first use).
    fn identity_key(&mut self) -> Result<[u8; PUBLIC_KEY_LEN], Self::Error>;
    /// The public key of key `id` into `out`; its length.
    fn export_public_key(&mut self, id: u32, out: &mut [u8]) -> Result<usize, Self::Error>;
    /// ECDSA P-256 over a SHA-256 hash with key `id`.
    fn sign_hash(
        &mut self,
        id: u32,
        hash: &[u8; HASH_LEN],
    ) -> Result<[u8; SIGNATURE_LEN], Self::Error>;
    /// Destroys key `id`.
    fn destroy_key(&mut self, id: u32) -> Result<(), Self::Error>;
    /// Generates a persistent P-256 signing key under `id`.
    fn generate_signing_key(&mut self, id: u32) -> Result<(), Self::Error>;
    /// Fills `out` from the secure random source (`psa_generate_random`); fails rather than
    /// return predictable bytes.
    fn generate_random(&mut self, out: &mut [u8]) -> Result<(), Self::Error>;
}

/// Something the dispatcher did, for the platform to print or keep.
#[derive(Debug)]
pub enum Event<'a, E> {
    /// A service refused `op` (or failed it) with `error`.
    Refused {
        /// The operation.
        op: Op,
        /// Why.
        error: &'a E,
    },
    /// `UpdateBegin` refused an envelope longer than [`crate::ENVELOPE_CAP`].
    EnvelopeTooLarge {
        /// Its length.
        len: u32,
    },
    /// An attestation token of `len` bytes was issued.
    TokenIssued {
        /// Its length.
        len: usize,
    },
    /// The release trust anchor was provisioned.
    AnchorProvisioned,
    /// An update began (or resumed).
    UpdateBegun(UpdateBegun),
    /// The update was verified and installed for a trial run.
    UpdateInstalled,
    /// The update was cancelled.
    UpdateCancelled,
}

/// The platform around the services: everything the gate offers that is not a service of
/// `castellan-services`.
pub trait GateBackend {
    /// The secure services.
    type Services: GateServices;

    /// The services.
    fn services(&mut self) -> &mut Self::Services;
    /// Writes console text from the caller.
    fn console_write(&mut self, text: &[u8]);
    /// The operator's command line for this run.
    fn command(&mut self) -> &[u8];
    /// What booted.
    fn boot_info(&mut self) -> BootInfo;
    /// Starts a raw candidate of `size` bytes.
    fn fwu_start(&mut self, size: u32) -> Result<(), i32>;
    /// Writes a chunk of the raw candidate.
    fn fwu_write(&mut self, offset: u32, data: &[u8]) -> Result<(), i32>;
    /// Requests the raw candidate's installation.
    fn fwu_install(&mut self, permanent: bool) -> Result<(), i32>;
    /// Accepts the running image.
    fn fwu_accept(&mut self) -> Result<(), i32>;
    /// Resets the device (returns only when refused: the status).
    fn system_reset(&mut self) -> i32;
    /// Powers the device off with `code` (returns only when refused: the status).
    fn power_off(&mut self, code: u32) -> i32;
    /// Prints or keeps what the dispatcher did.
    fn note(&mut self, event: Event<'_, <Self::Services as GateServices>::Error>);
    /// The last refusal kept (none by default: the platform prints refusals instead).
    fn last_refusal(&mut self) -> Option<Refusal> {
        None
    }
    /// The detector the dispatcher feeds every gate entry to (none by default: the detection
    /// operations then return `NOT_SUPPORTED`).
    fn detector(&mut self) -> Option<&mut dyn Detector> {
        None
    }
}
