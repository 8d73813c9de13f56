//! Castellan boot: the immutable ROM stage and the bootloader of the chain of trust, `no_std`,
//! without heap, generic over the `castellan-hal` traits (the simulator and the Cortex-M33
//! platform implement them).
//!
//! ```text
//!  OTP: root-key hash · app-key hash · lifecycle · anti-rollback counters      UDS
//!    │                                                                          │
//!  rom_stage ── lifecycle gate ── verify bootloader (root key) ── counter ── DICE CDIs ── lock UDS
//!    │ RomHandoff { lifecycle, bootloader measurement, CDIs }
//!  bootloader_stage ── resume / install / refuse / revert upgrade ── verify primary
//!    │                  ── security counter ≥ OTP counter ── raise it if confirmed
//!    ▼ BootReport { measurements, boot record, upgrade action, counter, application CDIs }
//!  application (confirm_image / request_upgrade)
//! ```
//!
//! [`boot`] runs both stages and returns a [`BootReport`] (or a [`BootError`] naming why nothing
//! boots). The application side uses [`confirm_image`] and [`request_upgrade`] (MCUboot's
//! `boot_set_confirmed` / `boot_set_pending`); provisioning uses the functions of the OTP map.
//!
//! What the running image and its secure partition share with this crate (the slot layout, the
//! slot trailer, measurements, the boot report and the error type) lives in `castellan-slots`,
//! as MCUboot keeps `bootutil_public` apart from the loader, and is re-exported here: the secure
//! partition links that crate without the swap engine.
//!
//! # Flash layout
//!
//! ```text
//!  ┌────────────┬──────────────────────┬──────────────────────┬─────────┬────────┐
//!  │ bootloader │ primary slot (S sec.) │ secondary slot (S)   │ scratch │ status │
//!  │ (ROM verif)│ image … trailer      │ image … trailer      │ 1 sector│ journal│
//!  └────────────┴──────────────────────┴──────────────────────┴─────────┴────────┘
//! ```
//!
//! Partitions are named `bootloader`, `primary`, `secondary`, `scratch`, `status`
//! ([`FlashLayout::from_table`]). Images are MCUboot images; the slot trailer keeps MCUboot's
//! format and offsets (magic, image_ok, copy_done, swap_info, swap_size, `max_align = max(8,
//! write size)`), so slot dumps read the same in `castellan image info` and MCUboot's tools.
//! An image must end before the trailer area (`4 × max_align + align_up(16, max_align)` bytes).
//!
//! # Upgrades: swap with scratch, journaled
//!
//! Castellan swaps through a scratch sector, as MCUboot's swap-scratch, but keeps the swap's
//! progress in a journal partition of its own instead of in the moving slot trailers:
//!
//! ```text
//!  for each used sector i, then the trailer sector (last):
//!     secondary[i] ──(1)──▶ scratch        (1) erase scratch, copy       → record step
//!     primary[i]   ──(2)──▶ secondary[i]   (2) erase secondary[i], copy  → record step
//!     scratch      ──(3)──▶ primary[i]     (3) erase primary[i], copy    → record step
//!                                          (trailer sector: + write the primary trailer)
//! ```
//!
//! Why this choice rather than swap-move: every step is an erase followed by a copy from a
//! place no earlier step of the same sector has touched, so redoing a step from its start is
//! always right, whatever a cut (before, torn, after) left behind; the trailer areas are
//! never copied, only erased and rewritten, and the journal is the only state the recovery
//! needs. Cost: one scratch sector and one status partition (at least
//! `align_up(16, write) + 3 × S × write` bytes) of flash; three erases per swapped sector
//! (the scratch sector takes one erase per swapped sector, so it wears S times faster than a
//! slot sector: size its endurance accordingly, as with MCUboot's swap-scratch); and the
//! journal is erased once per swap. Only the sectors the larger image uses are swapped, plus
//! the trailer sector. The journal's rules (header checked with its complement, a step unit
//! counts as done if it is anything but erased) are in the `journal` module doc.
//!
//! Decision table (MCUboot's swap types), evaluated when no swap is in progress:
//!
//! | secondary trailer | primary trailer | action |
//! |---|---|---|
//! | magic good, swap_info erased, image_ok unset | any | verify; **test** swap, or refuse + mark |
//! | magic good, swap_info erased, image_ok set | any | verify; **permanent** swap, or refuse + mark |
//! | anything else | magic good, copy_done set, image_ok not set | verify the old image; **revert** |
//! | anything else | anything else | boot the primary slot |
//!
//! A refused candidate gets swap_info = Fail (MCUboot's BOOT_SWAP_TYPE_FAIL) so it is not
//! retried; a flash read error is never taken for a bad image (see [`SlotReader`]). A test
//! image that was not confirmed (image_ok exactly 0x01, written by [`confirm_image`]; a torn
//! write counts as not confirmed) is swapped back at the next boot. In overwrite-only mode the
//! candidate is verified, copied over the primary slot, the copy verified and confirmed, and
//! only then is the request consumed and the secondary erased.
//!
//! # Anti-rollback and downgrades
//!
//! The running image's security counter (SEC_CNT TLV; none counts as 0) must be at least the
//! OTP counter, or nothing boots ([`BootError::PrimaryRollback`]). The counter is raised to the
//! image's value only once the image is confirmed, so a test image can still be reverted. A
//! candidate below the counter or above what the counter can hold is refused
//! ([`UpgradeRefusal`]); so is one with a lower version than the running image under
//! [`DowngradePolicy::Version`] (the default). Under [`DowngradePolicy::SecurityCounter`]
//! (MCUboot's `MCUBOOT_HW_ROLLBACK_PROT`, as TF-M ships it) the counter alone decides, so a
//! fleet can roll back to the previous release and block a vulnerable one by raising the
//! counter of its fix. The counters are thermometer codes in OTP: nothing, not even a torn
//! program, can lower them.
//!
//! # OTP map and lifecycle policy
//!
//! Programmed and read with [`program_root_key_hash`], [`program_app_key_hash`],
//! [`advance_lifecycle`], [`read_lifecycle`] and [`read_security_counter`]:
//!
//! ```text
//!  words 0..8    root-key hash (SHA-256 of SPKI)     locked when entering Secured
//!  words 8..16   application-key hash, or zero       locked when entering Secured
//!  word  16      lifecycle thermometer               0 A&T, 1 provisioning, 2 secured, 3 decommissioned
//!  words 24..28  application anti-rollback counter   0..=128
//!  words 28..32  bootloader anti-rollback counter    0..=128
//! ```
//!
//! | lifecycle | boots? | requires | DICE mode |
//! |---|---|---|---|
//! | 0x1000 assembly and test | yes | root-key hash | NotConfigured |
//! | 0x2000 PSA RoT provisioning | yes | root-key hash | NotConfigured |
//! | 0x3000 secured | yes | root-key hash, key fuses locked | Normal |
//! | 0x6000 decommissioned | no | — | — |
//!
//! Verification is never off: without a root-key hash nothing boots in any state. The PSA
//! debug states (0x4000, 0x5000) are reversible in PSA and cannot be expressed with one-way
//! fuses alone; they are not supported.
//!
//! # DICE
//!
//! The ROM derives the bootloader's CDI_Attest and CDI_Seal from the UDS with the bootloader's
//! digest as code input and its signer (SHA-256 of the root key) as authority
//! (`castellan_dice::rom_stage_cdis`), then locks the UDS; the bootloader derives the
//! application's CDIs from its own the same way and drops its own (wiped).

#![no_std]
#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

mod bootloader;
mod flashio;
mod journal;
mod otp_map;
mod rom;
mod swap;
mod upgrade;

pub use bootloader::{
    AppKey, BOOTLOADER_STAGE_CONFIG, BootConfig, app_trusted_key, boot, bootloader_stage,
    measure_slot,
};
pub use journal::JournalState;
pub use otp_map::{
    APP_KEY_HASH_WORD, COUNTER_FIRST_WORD, COUNTER_WORDS, CounterId, LIFECYCLE_WORD,
    OTP_WORDS_NEEDED, ROOT_KEY_HASH_WORD, advance_lifecycle, check_otp, key_regions_locked,
    lock_key_regions, program_app_key_hash, program_root_key_hash, raise_security_counter,
    read_app_key_hash, read_lifecycle, read_root_key_hash, read_security_counter,
    security_counter_max,
};
pub use rom::{RomHandoff, rom_stage};
pub use upgrade::UpgradeMode;
// What the running image and the secure partition share with the bootloader lives in
// castellan-slots; re-exported so that the bootloader's API stays whole.
pub use castellan_slots::{
    BOOT_RECORD_CAPACITY, BootError, BootRecord, BootReport, CounterChange, DowngradePolicy,
    FlashLayout, Geometry, InstallKind, Lifecycle, Measurement, PARTITION_BOOTLOADER,
    PARTITION_PRIMARY, PARTITION_SCRATCH, PARTITION_SECONDARY, PARTITION_STATUS, SW_TYPE_MAX, Slot,
    SlotReader, SlotTrailer, SwType, UpgradeAction, UpgradeRefusal, confirm_image,
    read_slot_trailer, request_upgrade,
};

/// The swap journal's state, for tools that inspect a device (`castellan sim status`).
pub fn read_journal<F: castellan_hal::Flash>(
    flash: &mut F,
    layout: &FlashLayout,
) -> Result<JournalState, BootError> {
    let g = Geometry::of(flash)?;
    let status = layout
        .status
        .ok_or(BootError::Layout("no status partition"))?;
    journal::read(flash, &g, status, layout.slot_sectors(&g))
}
