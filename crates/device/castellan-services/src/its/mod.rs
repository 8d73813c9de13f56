//! Internal trusted storage after PSA ITS 1.0 (`psa_its_set/get/get_info/remove`): a
//! log-structured, authenticated-encrypted, replay-protected store over two flash banks that is
//! atomic under power loss, torn writes included.
//!
//! ```text
//!  ITS area (a partition, split in two banks of whole sectors)       key area (≥ 1 sector)
//!  ┌───────────────────────────────┬───────────────────────────────┐ ┌──────────────────────┐
//!  │ bank 0: [compaction txn] [txn] │ bank 1: stale or erased       │ │ SRK wrapped under SWK│
//!  │  txn = entry… commit           │                               │ └──────────────────────┘
//!  └───────────────────────────────┴───────────────────────────────┘
//!  SWK = HKDF(CDI_Seal)  ·  SRK = random, made at format  ·  entries: AES-256-GCM under SRK
//! ```
//!
//! # Transactions
//!
//! Every change is a transaction: its entries, then a commit entry written last whose tag covers
//! the SHA-256 of those entries as written, the transaction's sequence number `seq` and its
//! replay-counter value `c`. A set appends `[data][commit]`, a remove `[tombstone][commit]`.
//! When the active bank has no room (or its tail is not clean after a power cut), the change is
//! made by *compaction* instead: the other bank is erased, every live entry is copied into it
//! (minus the one being replaced or removed), the new entry follows, then one commit. A bank
//! therefore always starts with a compaction (or the format's genesis commit) holding the whole
//! state, and mounting replays the committed transactions of the bank with the highest `seq`.
//! Anything after the last valid commit (a torn entry, a missing commit) is ignored; a bank whose
//! tail is not erased is never appended to again.
//!
//! # Replay protection
//!
//! Two hardware monotonic counters protect against an attacker who puts back an older copy of
//! the flash: INTENT (`I`) and COMMIT (`K`), equal at rest. A protected write with `c = I + 1`:
//!
//! 1. raise INTENT to `c`;
//! 2. write the transaction's entries and its commit, bound to `c`;
//! 3. raise COMMIT to `c`. The call returns success only after that.
//!
//! At mount, with `L` the counter value of the newest committed transaction in flash:
//!
//! ```text
//!  I == K:  L == I   → mount                 L <  I → refuse: rollback (an old copy)
//!  I >  K:  L == I   → raise K to I          (step 3 was cut: roll forward)
//!           L == K   → resync: a new empty transaction with c = I + 1, steps 1-3
//!                      (step 2 did not land, or the attacker put back the image from before it)
//!           otherwise → refuse: rollback
//! ```
//!
//! Why two counters: with one counter, "write, then raise" leaves an orphan image (commit
//! written, counter not raised) that an attacker can keep, put back the previous image, let
//! the device write something else with the same counter value, then swap the orphan in: a
//! fork. "Raise, then write" bricks or must accept `L == counter - 1`, which replays the
//! previous state at any time. With INTENT/COMMIT a cut anywhere leaves `L ∈ {K, I}`; both are
//! states the caller may see (the last acknowledged one, or the one being written), and the
//! resync moves past every value an orphan could carry, so no image older than the newest
//! acknowledged write ever mounts once a later protected write returned. No cut bricks the
//! store: every case above either mounts or is an image the device never left behind.
//!
//! Assets created with `NO_REPLAY_PROTECTION` are written with `c = L` and no counter step (no
//! counter wear); an old copy that differs only in such assets mounts. Compaction keeps `c`.
//! A blank store is `L = 0`: it is formatted when `K = 0` (first boot, or a first format cut
//! by a power loss) and refused as a rollback to the factory state otherwise.
//!
//! # Keys and crypto-erase
//!
//! The storage root key (SRK) is random, made when the store is formatted, and kept in the key
//! area wrapped under the storage wrapping key, HKDF-SHA-256 of `CDI_Seal` with the label
//! "its storage wrapping key" (AES-256-GCM, record format in `format.rs`): sealed data survives updates signed by the same authority, not a change of authority
//! or a switch to debug mode. [`Its::crypto_erase`] erases the key area, then both banks: once
//! the key area is gone no copy of any entry can be decrypted, even by code that can derive
//! `CDI_Seal` again.

mod format;
mod scan;
mod write;

use crate::aead::Gcm256;
use crate::{Platform, STORAGE_COMMIT_COUNTER, STORAGE_INTENT_COUNTER, ServiceError};
use castellan_hal::{Flash, MonotonicCounter, Partition, RandomSource};

pub(crate) use format::Namespace;
pub use format::{ITS_MAX_ASSET_SIZE, ITS_MAX_ASSETS};

/// PSA storage flags (`psa_storage_create_flags_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ItsFlags(pub u32);

impl ItsFlags {
    /// `PSA_STORAGE_FLAG_NONE`.
    pub const NONE: ItsFlags = ItsFlags(0);
    /// `PSA_STORAGE_FLAG_WRITE_ONCE`: the asset can be neither modified nor removed.
    pub const WRITE_ONCE: ItsFlags = ItsFlags(1 << 0);
    /// `PSA_STORAGE_FLAG_NO_CONFIDENTIALITY`: stored in clear (still authenticated).
    pub const NO_CONFIDENTIALITY: ItsFlags = ItsFlags(1 << 1);
    /// `PSA_STORAGE_FLAG_NO_REPLAY_PROTECTION`: writes do not step the replay counter, so an
    /// older copy of this asset may come back with an older flash image.
    pub const NO_REPLAY_PROTECTION: ItsFlags = ItsFlags(1 << 2);
    /// Every flag this store supports.
    pub const SUPPORTED: ItsFlags = ItsFlags(0b111);

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: ItsFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: ItsFlags) -> ItsFlags {
        ItsFlags(self.0 | other.0)
    }
}

/// What `psa_its_get_info` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItsInfo {
    /// Allocated size of the asset (equals `size` in this store).
    pub capacity: usize,
    /// Size of the asset in bytes.
    pub size: usize,
    /// The flags it was created with.
    pub flags: ItsFlags,
}

/// Where trusted storage lives and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItsConfig {
    /// The log: an even number of sectors, split in two banks.
    pub area: Partition,
    /// The wrapped storage root key (at least one sector, separate from `area`).
    pub key_area: Partition,
    /// Id of the INTENT replay counter in the platform's [`MonotonicCounter`].
    pub intent_counter: usize,
    /// Id of the COMMIT replay counter in the platform's [`MonotonicCounter`].
    pub commit_counter: usize,
    /// Most assets the store holds (all namespaces), at most [`ITS_MAX_ASSETS`].
    pub max_assets: usize,
    /// Largest asset in bytes, at most [`ITS_MAX_ASSET_SIZE`].
    pub max_asset_size: usize,
}

impl ItsConfig {
    /// A store in `area` with its key in `key_area`, the replay counters of
    /// [`crate::OtpCounterMap::castellan`] ([`STORAGE_INTENT_COUNTER`],
    /// [`STORAGE_COMMIT_COUNTER`]) and the largest limits ([`ITS_MAX_ASSETS`],
    /// [`ITS_MAX_ASSET_SIZE`]).
    pub const fn new(area: Partition, key_area: Partition) -> Self {
        ItsConfig {
            area,
            key_area,
            intent_counter: STORAGE_INTENT_COUNTER,
            commit_counter: STORAGE_COMMIT_COUNTER,
            max_assets: ITS_MAX_ASSETS,
            max_asset_size: ITS_MAX_ASSET_SIZE,
        }
    }
}

/// Counts that tell how full the store is (for tools and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItsStatus {
    /// Live assets, all namespaces.
    pub assets: usize,
    /// Bytes of flash the live entries take.
    pub live_bytes: usize,
    /// Bytes of a bank.
    pub bank_size: usize,
    /// The bank holding the current state (0 or 1).
    pub active_bank: u8,
    /// Offset in the active bank where the next transaction would go.
    pub write_offset: usize,
    /// Sequence number of the newest committed transaction.
    pub seq: u32,
    /// Replay-counter value bound to the newest committed transaction.
    pub counter: u32,
}

/// One live asset in the RAM index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) ns: u8,
    pub(crate) uid: u64,
    pub(crate) flags: u8,
    pub(crate) len: u32,
    /// Offset of the entry in the active bank.
    pub(crate) offset: u32,
    /// Size of the entry on flash.
    pub(crate) size: u32,
    /// Sequence number in the entry's header (checked again on every read).
    pub(crate) seq: u32,
}

/// Run-time flash geometry of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) ws: usize,
    pub(crate) bank_size: u32,
    pub(crate) erased: u8,
}

/// A mounted trusted store. It owns no hardware: every call borrows the [`Platform`].
pub struct Its {
    config: ItsConfig,
    geo: Geometry,
    /// AES-256-GCM under the storage root key.
    cipher: Gcm256,
    index: [Option<Slot>; ITS_MAX_ASSETS],
    active: u8,
    write_pos: u32,
    dirty: bool,
    last_seq: u32,
    last_c: u32,
    /// A change failed half-way (power loss, flash error): rescan before the next call.
    broken: bool,
}

impl core::fmt::Debug for Its {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Its")
            .field("config", &self.config)
            .field("status", &self.status())
            .field("srk", &"<redacted>")
            .finish()
    }
}

impl Its {
    /// `psa_its_set`: creates or replaces client asset `uid` with `data`.
    ///
    /// Refuses uid 0 ([`ServiceError::InvalidArgument`]), unknown flags
    /// ([`ServiceError::NotSupported`]), an existing write-once asset
    /// ([`ServiceError::NotPermitted`]), data above the size limit
    /// ([`ServiceError::AssetTooLarge`]), a new asset beyond the count limit
    /// ([`ServiceError::TooManyAssets`]) and a write that cannot fit ([`ServiceError::StorageFull`]).
    /// On any error the store holds the old value; after a power loss it holds the old or the
    /// new one.
    pub fn set<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        uid: u64,
        data: &[u8],
        flags: ItsFlags,
    ) -> Result<(), ServiceError> {
        self.set_in(p, Namespace::Client, uid, data, flags)
    }

    /// `psa_its_get`: copies up to `out.len()` bytes of client asset `uid` from `offset` on and
    /// returns how many. `offset` beyond the asset's size is [`ServiceError::InvalidArgument`];
    /// data that fails authentication is [`ServiceError::StorageCorrupt`].
    pub fn get<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        uid: u64,
        offset: usize,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        self.get_in(p, Namespace::Client, uid, offset, out)
    }

    /// `psa_its_get_info`: size and flags of client asset `uid`.
    pub fn get_info<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        uid: u64,
    ) -> Result<ItsInfo, ServiceError> {
        self.get_info_in(p, Namespace::Client, uid)
    }

    /// `psa_its_remove`: removes client asset `uid` ([`ServiceError::NotPermitted`] if it is
    /// write-once, [`ServiceError::DoesNotExist`] if absent).
    pub fn remove<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        uid: u64,
    ) -> Result<(), ServiceError> {
        self.remove_in(p, Namespace::Client, uid)
    }

    /// How full the store is.
    pub fn status(&self) -> ItsStatus {
        let live = self.index.iter().flatten();
        ItsStatus {
            assets: live.clone().count(),
            live_bytes: live.map(|s| s.size as usize).sum(),
            bank_size: self.geo.bank_size as usize,
            active_bank: self.active,
            write_offset: self.write_pos as usize,
            seq: self.last_seq,
            counter: self.last_c,
        }
    }

    /// The configuration the store was mounted with.
    pub fn config(&self) -> &ItsConfig {
        &self.config
    }

    /// Crypto-erases trusted storage: erases the key area (after which no entry can ever be
    /// decrypted), then both banks. Works on a store that does not mount. The next
    /// [`Its::mount`] reports a rollback to blank unless the replay counter is still 0: call
    /// [`Its::format`] to start a new store.
    pub fn crypto_erase<F: Flash>(config: &ItsConfig, flash: &mut F) -> Result<(), ServiceError> {
        config.key_area.erase_all(flash)?;
        config.area.erase_all(flash)?;
        Ok(())
    }

    pub(crate) fn get_info_in<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        ns: Namespace,
        uid: u64,
    ) -> Result<ItsInfo, ServiceError> {
        self.ensure_ready(p)?;
        let slot = self.find(ns, uid).ok_or(ServiceError::DoesNotExist)?;
        Ok(ItsInfo {
            capacity: slot.len as usize,
            size: slot.len as usize,
            flags: ItsFlags(u32::from(slot.flags)),
        })
    }

    /// True when `ns`/`uid` holds an asset.
    pub(crate) fn contains(&self, ns: Namespace, uid: u64) -> bool {
        self.find(ns, uid).is_some()
    }

    fn find(&self, ns: Namespace, uid: u64) -> Option<Slot> {
        self.index
            .iter()
            .flatten()
            .find(|s| s.ns == ns as u8 && s.uid == uid)
            .copied()
    }

    /// The partition of bank `bank` (0 or 1).
    fn bank(&self, bank: u8) -> Partition {
        bank_partition(&self.config, self.geo, bank)
    }
}

/// The partition of bank `bank` of `config.area`.
fn bank_partition(config: &ItsConfig, geo: Geometry, bank: u8) -> Partition {
    Partition::new(
        config.area.offset + u32::from(bank) * geo.bank_size,
        geo.bank_size,
    )
}
