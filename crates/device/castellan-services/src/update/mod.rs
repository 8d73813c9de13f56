//! The SUIT update client of the secure services: manifests are processed in the secure world
//! (as TF-M does), so a compromised non-secure side can move bytes but never decide what is
//! installed. The same calls serve the simulated agent and the QEMU secure partition's gate.
//!
//! ```text
//!  offer ─▶ update_begin(envelope, now)   authenticate (release trust anchor in ITS), sequence
//!                                          above the installed one, vendor/class (shared sequence),
//!                                          image size and digest, expiry; envelope kept in ITS;
//!                                          FWU start (or resume at the stored offset)
//!  bytes ─▶ update_write(offset, block)   in order, never past the image size ("endless data");
//!                                          progress stored at sector boundaries
//!  done  ─▶ update_finish()               SUIT update procedure over the staged slot (fetch reads
//!                                          the slot back, write compares: size and digest checked
//!                                          in one place), FWU finish (MCUboot verification),
//!                                          FWU install (test swap at the next reboot)
//!  reboot: bootloader swaps ─▶ trial ─▶ fwu_accept ─▶ installed sequence number stored
//! ```
//!
//! # What is kept where
//!
//! In trusted storage, in a namespace of its own that `psa_its_*` callers cannot reach:
//!
//! | uid | what | flags |
//! |---|---|---|
//! | [`ITS_UID_TRUST_ANCHOR`] `0xca57_0100` | release key, P-256 SEC1 (65 bytes) | write-once |
//! | [`ITS_UID_INSTALLED_SEQUENCE`] `0xca57_0101` | sequence number of the installed release (u64 LE) | replay-protected |
//! | `0xca57_0102` | the pending update: phase, sequence, image size and digest, resume offset, SHA-256 of the envelope | no replay protection |
//! | `0xca57_0110…` | the pending envelope, in parts of the store's largest asset | no replay protection |
//!
//! The pending state is written without replay protection on purpose: each protected write
//! takes a value of a wearing counter, and a download writes its progress several times. An
//! old copy of it that comes back with an old flash image can only make the device download
//! again: the installed sequence number (protected) still refuses anything older, and the
//! envelope is authenticated again and the payload checked again at `update_finish`.
//!
//! # Power loss
//!
//! The pending record is written before the slot is erased, the progress offset only at
//! sector boundaries of bytes already written, the phase "installed" before the install request
//! (so that a download is never resumed into a secondary slot a swap has filled with the
//! previous image). After a cut the device boots the old image (or, once the request is written, the
//! bootloader swaps the new one in for trial) and [`UpdateState`] says what to do: resume the
//! download (`update_begin` with the same envelope erases from the stored offset on and
//! continues), accept the trial image, or report the failure and start again. The installed
//! sequence number is stored only once the new image runs confirmed (rolled forward on the
//! next update call if a cut came between the confirmation and the write).

mod client;
mod slot;

pub(crate) use client::{Ctx, UpdateClient, provision_anchor, read_anchor};

/// ITS uid (update namespace) of the release trust anchor.
pub const ITS_UID_TRUST_ANCHOR: u64 = 0xca57_0100;
/// ITS uid (update namespace) of the installed release's sequence number.
pub const ITS_UID_INSTALLED_SEQUENCE: u64 = 0xca57_0101;
/// ITS uid (update namespace) of the pending update's record.
pub(crate) const ITS_UID_PENDING: u64 = 0xca57_0102;
/// First ITS uid (update namespace) of the pending envelope's parts.
pub(crate) const ITS_UID_ENVELOPE: u64 = 0xca57_0110;
/// Largest envelope the update client keeps (a Castellan release's is about 300 bytes).
pub const MAX_ENVELOPE_LEN: usize = 1024;
/// Most ITS assets an envelope is split into.
pub(crate) const MAX_ENVELOPE_PARTS: usize = 8;
/// The one component a Castellan manifest names: the application (the secondary slot).
pub const COMPONENT: [&[u8]; 2] = [b"castellan", b"app"];
/// Length of a release trust anchor (P-256 SEC1 uncompressed).
pub const TRUST_ANCHOR_LEN: usize = 65;

/// Which manifests are for this device: the vendor and class identifiers its manifests must
/// name (`castellan_suit::ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateConfig {
    /// Vendor id (UUID), e.g. `castellan_suit::ids::vendor_id(DEFAULT_VENDOR)`.
    pub vendor_id: [u8; 16],
    /// Class id (UUID) of the device's class, `castellan_suit::ids::class_id(vendor, class)`.
    pub class_id: [u8; 16],
}

impl UpdateConfig {
    /// The identifiers of device class `class` of vendor `vendor` (names, as the fleet uses
    /// them: vendor `"castellan"`, class `"sensor-v1"`).
    pub fn for_class(vendor: &str, class: &str) -> Self {
        let vendor_id = castellan_suit::ids::vendor_id(vendor);
        UpdateConfig {
            vendor_id,
            class_id: castellan_suit::ids::class_id(&vendor_id, class),
        }
    }
}

/// What `update_begin` accepted: the facts of the manifest and where the download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdatePlan {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// The image size (bytes to download).
    pub image_size: u32,
    /// The image's SHA-256 digest.
    pub digest: [u8; 32],
    /// Where the download continues (0 for a new update).
    pub resume_offset: u32,
    /// The release's expiry (unix seconds), if it has one.
    pub expires: Option<u64>,
}

/// Where the update client stands (see [`UpdateStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// No update in progress.
    Idle,
    /// The image is being received: `received` of `image_size` bytes. After a reboot
    /// `received` is the stored resume offset, and `update_begin` with the same envelope
    /// continues from there.
    Downloading {
        /// Bytes received (or the resume offset after a reboot).
        received: u32,
        /// The image size.
        image_size: u32,
    },
    /// Verified and installed: the bootloader swaps it in for a trial run at the next reboot.
    Staged,
    /// The new image runs on trial: `fwu_accept` keeps it (and stores the sequence number);
    /// a reboot without it reverts to the previous image.
    Trial,
    /// The trial image was rejected; the previous image comes back at the next reboot.
    Rejected,
    /// The trial image was not accepted and the previous image runs again.
    Reverted,
    /// The update failed after it was installed (the bootloader refused the candidate, or
    /// the install request was lost); `error` is the PSA status of the reason.
    Failed {
        /// PSA status of the reason.
        error: i32,
    },
}

/// `update_status`: the state, the pending manifest's sequence number and the installed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateStatus {
    /// Where the update stands.
    pub state: UpdateState,
    /// Sequence number of the pending update's manifest, if one is pending.
    pub sequence: Option<u64>,
    /// Sequence number of the installed release (0 before the first update).
    pub installed_sequence: u64,
}

/// Phase of the pending update, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Downloading; `offset` is where a resumed download starts.
    Downloading = 1,
    /// Verified and the install request written.
    Installed = 2,
    /// It failed after the install (`error`); kept until cancelled or replaced.
    Failed = 3,
}

/// The pending update record (`ITS_UID_PENDING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) phase: Phase,
    pub(crate) sequence: u64,
    pub(crate) image_size: u32,
    /// Resume offset: a sector boundary up to which every byte was written.
    pub(crate) offset: u32,
    pub(crate) envelope_len: u32,
    pub(crate) error: i32,
    pub(crate) envelope_hash: [u8; 32],
    pub(crate) digest: [u8; 32],
}

/// Magic and version of the record.
const RECORD_MAGIC: [u8; 4] = *b"CUP1";
/// Length of the encoded record.
pub(crate) const RECORD_LEN: usize = 96;

impl Pending {
    pub(crate) fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        let fields: [(usize, &[u8]); 9] = [
            (0, &RECORD_MAGIC),
            (4, &[self.phase as u8]),
            (8, &self.sequence.to_le_bytes()),
            (16, &self.image_size.to_le_bytes()),
            (20, &self.offset.to_le_bytes()),
            (24, &self.envelope_len.to_le_bytes()),
            (28, &self.error.to_le_bytes()),
            (32, &self.envelope_hash),
            (64, &self.digest),
        ];
        for (at, v) in fields {
            if let Some(dst) = b.get_mut(at..at + v.len()) {
                dst.copy_from_slice(v);
            }
        }
        b
    }

    /// Decodes a record; `None` for anything that is not one (treated as no pending update).
    pub(crate) fn decode(b: &[u8]) -> Option<Pending> {
        if b.len() != RECORD_LEN || b.get(..4)? != RECORD_MAGIC {
            return None;
        }
        let u32_at = |at: usize| Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let phase = match *b.get(4)? {
            1 => Phase::Downloading,
            2 => Phase::Installed,
            3 => Phase::Failed,
            _ => return None,
        };
        Some(Pending {
            phase,
            sequence: u64::from_le_bytes(b.get(8..16)?.try_into().ok()?),
            image_size: u32_at(16)?,
            offset: u32_at(20)?,
            envelope_len: u32_at(24)?,
            error: i32::from_le_bytes(b.get(28..32)?.try_into().ok()?),
            envelope_hash: b.get(32..64)?.try_into().ok()?,
            digest: b.get(64..96)?.try_into().ok()?,
        })
    }
}

/// How far a download advances between two stored progress records: at least a sector, and
/// about an eighth of the image (a handful of storage writes per update).
pub(crate) fn progress_step(image_size: u32, sector: u32) -> u32 {
    let sector = sector.max(1);
    (image_size / 8)
        .div_ceil(sector)
        .max(1)
        .saturating_mul(sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_garbage_is_no_record() {
        let p = Pending {
            phase: Phase::Installed,
            sequence: 0x0102_0304_0506_0708,
            image_size: 12_345,
            offset: 8192,
            envelope_len: 301,
            error: -149,
            envelope_hash: [7; 32],
            digest: [9; 32],
        };
        assert_eq!(Pending::decode(&p.encode()), Some(p));
        let mut bad = p.encode();
        bad[4] = 9;
        assert_eq!(Pending::decode(&bad), None);
        assert_eq!(Pending::decode(&p.encode()[..95]), None);
        assert_eq!(Pending::decode(&[0; RECORD_LEN]), None);
    }

    #[test]
    fn progress_is_stored_every_sector_or_eighth_of_the_image() {
        assert_eq!(progress_step(12 * 1024, 4096), 4096);
        assert_eq!(progress_step(1 << 20, 4096), 128 * 1024);
        assert_eq!(progress_step(1400, 512), 512);
        assert_eq!(progress_step(0, 512), 512);
    }
}
