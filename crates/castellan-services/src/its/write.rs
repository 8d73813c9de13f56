//! The write side of trusted storage: set and remove as transactions, appended to the active
//! bank or made by compaction into the other bank, then the replay-counter step.
//!
//! ```text
//!  append:      active bank  …[txn][txn][entry][commit]              → counter step
//!  compaction:  other bank   erase · [live entries…][new entry][commit] → counter step
//! ```
//! Nothing in RAM changes before the last flash or counter operation succeeded; any hardware
//! error marks the store for a rescan before its next call.

use castellan_hal::{Flash, MonotonicCounter, Partition, RandomSource};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::format::{
    ENTRY_BUF_LEN, HEADER_LEN, Header, ITS_MAX_ASSETS, Kind, Namespace, entry_size,
};
use super::scan::commit_aad;
use super::{Its, ItsFlags, Slot};
use crate::aead::{GCM_NONCE_LEN, GCM_TAG_LEN, gcm_encrypt};
use crate::{Platform, ServiceError};

/// One change to the store.
#[derive(Clone, Copy)]
enum Change<'a> {
    Set {
        ns: u8,
        uid: u64,
        flags: u8,
        data: &'a [u8],
    },
    Remove {
        ns: u8,
        uid: u64,
        flags: u8,
    },
}

impl Its {
    /// `set` in namespace `ns` (see [`Its::set`]).
    pub(crate) fn set_in<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        ns: Namespace,
        uid: u64,
        data: &[u8],
        flags: ItsFlags,
    ) -> Result<(), ServiceError> {
        if uid == 0 {
            return Err(ServiceError::InvalidArgument("uid 0 is not a valid asset id"));
        }
        if flags.0 & !ItsFlags::SUPPORTED.0 != 0 {
            return Err(ServiceError::NotSupported("unknown storage flag"));
        }
        if data.len() > self.config.max_asset_size {
            return Err(ServiceError::AssetTooLarge {
                size: data.len(),
                max: self.config.max_asset_size,
            });
        }
        self.ensure_ready(p)?;
        let existing = self.find(ns, uid);
        if existing.is_some_and(|e| e.flags & ItsFlags::WRITE_ONCE.0 as u8 != 0) {
            return Err(ServiceError::NotPermitted("the asset is write-once"));
        }
        let live = self.index.iter().flatten().count();
        if existing.is_none() && live >= self.config.max_assets {
            return Err(ServiceError::TooManyAssets {
                max: self.config.max_assets,
            });
        }
        let unprotected = ItsFlags::NO_REPLAY_PROTECTION.0 as u8;
        let protected = flags.0 as u8 & unprotected == 0
            || existing.is_some_and(|e| e.flags & unprotected == 0);
        let change = Change::Set {
            ns: ns as u8,
            uid,
            flags: flags.0 as u8,
            data,
        };
        let r = self.commit_change(p, change, protected);
        self.guard(r)
    }

    /// `remove` in namespace `ns` (see [`Its::remove`]).
    pub(crate) fn remove_in<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        ns: Namespace,
        uid: u64,
    ) -> Result<(), ServiceError> {
        self.ensure_ready(p)?;
        let slot = self.find(ns, uid).ok_or(ServiceError::DoesNotExist)?;
        if slot.flags & ItsFlags::WRITE_ONCE.0 as u8 != 0 {
            return Err(ServiceError::NotPermitted("the asset is write-once"));
        }
        let protected = slot.flags & ItsFlags::NO_REPLAY_PROTECTION.0 as u8 == 0;
        let change = Change::Remove {
            ns: slot.ns,
            uid,
            flags: slot.flags,
        };
        let r = self.commit_change(p, change, protected);
        self.guard(r)
    }

    /// Marks the store for a rescan when `r` failed in the hardware or in an integrity check.
    fn guard<T>(&mut self, r: Result<T, ServiceError>) -> Result<T, ServiceError> {
        if let Err(
            ServiceError::Hardware(_) | ServiceError::StorageCorrupt(_) | ServiceError::Crypto(_),
        ) = &r
        {
            self.broken = true;
        }
        r
    }

    fn commit_change<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        change: Change<'_>,
        protected: bool,
    ) -> Result<(), ServiceError> {
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or(ServiceError::CounterExhausted)?;
        let c = if protected {
            self.next_protected_c(p)?
        } else {
            self.last_c
        };
        let mut buf = Zeroizing::new([0u8; ENTRY_BUF_LEN]);
        let (ns, uid, new_slot) = match change {
            Change::Set {
                ns,
                uid,
                flags,
                data,
            } => {
                let size = self.build_data_entry(p, buf.as_mut_slice(), ns, uid, flags, seq, c, data)?;
                let slot = Slot {
                    ns,
                    uid,
                    flags,
                    len: data.len() as u32,
                    offset: 0,
                    size: size as u32,
                    seq,
                };
                (ns, uid, Some(slot))
            }
            Change::Remove { ns, uid, .. } => (ns, uid, None),
        };
        let commit_len = entry_size(0, self.geo.ws);
        let entry_len = match (change, new_slot) {
            (_, Some(s)) => s.size as usize,
            (Change::Remove { flags, .. }, None) => {
                self.build_tombstone(p, buf.as_mut_slice(), ns, uid, flags, seq, c)?
            }
            (Change::Set { .. }, None) => return Err(ServiceError::Crypto("entry")),
        };
        let fits = !self.dirty
            && self.write_pos as usize + entry_len + commit_len <= self.geo.bank_size as usize;
        if !fits {
            let extra = match new_slot {
                Some(slot) => Some((slot, buf.get(..entry_len).unwrap_or_default())),
                None => None,
            };
            return self.compact(p, (ns, uid), extra, seq, c, protected);
        }
        let bank = self.bank(self.active);
        let at = self.write_pos as usize;
        let entry = buf.get(..entry_len).ok_or(ServiceError::Crypto("entry"))?;
        bank.write(&mut p.flash, at as u32, entry)?;
        let digest = Sha256::digest(entry);
        self.write_commit(p, bank, at + entry_len, seq, c, 1, digest.as_slice())?;
        if protected {
            self.step_counter(p, c)?;
        }
        match new_slot {
            Some(slot) => self.upsert(Slot {
                offset: at as u32,
                ..slot
            })?,
            None => self.drop_slot(ns, uid),
        }
        self.write_pos = (at + entry_len + commit_len) as u32;
        self.last_seq = seq;
        self.last_c = c;
        Ok(())
    }

    /// Writes the whole state, minus `skip` and plus `extra`, into the other bank as one
    /// transaction, which then becomes the active bank.
    fn compact<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        skip: (u8, u64),
        extra: Option<(Slot, &[u8])>,
        seq: u32,
        c: u32,
        protected: bool,
    ) -> Result<(), ServiceError> {
        let keep = |s: &Slot| (s.ns, s.uid) != skip;
        let commit_len = entry_size(0, self.geo.ws);
        let live: usize = self
            .index
            .iter()
            .flatten()
            .filter(|s| keep(s))
            .map(|s| s.size as usize)
            .sum();
        let extra_len = extra.map_or(0, |(_, e)| e.len());
        if live + extra_len + commit_len > self.geo.bank_size as usize {
            return Err(ServiceError::StorageFull);
        }
        let source = self.bank(self.active);
        let target_id = 1 - self.active;
        let target = self.bank(target_id);
        target.erase_all(&mut p.flash)?;
        let mut hasher = Sha256::new();
        let mut offsets = [0u32; ITS_MAX_ASSETS];
        let mut pos = 0usize;
        let mut count = 0u32;
        let mut copy = Zeroizing::new([0u8; ENTRY_BUF_LEN]);
        for (slot, new_offset) in self.index.iter().zip(offsets.iter_mut()) {
            let Some(slot) = slot.filter(keep) else {
                continue;
            };
            let entry = copy
                .get_mut(..slot.size as usize)
                .ok_or(ServiceError::Crypto("entry"))?;
            source.read(&mut p.flash, slot.offset, entry)?;
            check_copy(entry, &slot)?;
            target.write(&mut p.flash, pos as u32, entry)?;
            hasher.update(&*entry);
            *new_offset = pos as u32;
            pos += slot.size as usize;
            count += 1;
        }
        let mut extra_at = 0usize;
        if let Some((_, entry)) = extra {
            target.write(&mut p.flash, pos as u32, entry)?;
            hasher.update(entry);
            extra_at = pos;
            pos += entry.len();
            count += 1;
        }
        let digest = hasher.finalize();
        self.write_commit(p, target, pos, seq, c, count, digest.as_slice())?;
        if protected {
            self.step_counter(p, c)?;
        }
        for (slot, new_offset) in self.index.iter_mut().zip(offsets) {
            match slot {
                Some(s) if keep(s) => s.offset = new_offset,
                _ => *slot = None,
            }
        }
        if let Some((slot, _)) = extra {
            self.upsert(Slot {
                offset: extra_at as u32,
                ..slot
            })?;
        }
        self.active = target_id;
        self.write_pos = (pos + commit_len) as u32;
        self.dirty = false;
        self.last_seq = seq;
        self.last_c = c;
        Ok(())
    }

    /// The counter value of the next protected transaction: one above the current value, two
    /// above for the first after a mount (see the module doc).
    pub(super) fn next_protected_c<F, C: MonotonicCounter, R>(
        &self,
        p: &Platform<F, C, R>,
    ) -> Result<u32, ServiceError> {
        let h = p.counter.read(self.config.counter_id)?;
        let step = if self.fresh_session { 2 } else { 1 };
        let c = self
            .last_c
            .max(h)
            .checked_add(step)
            .ok_or(ServiceError::CounterExhausted)?;
        if c > p.counter.max_value() {
            return Err(ServiceError::CounterExhausted);
        }
        Ok(c)
    }

    /// Raises the replay counter to `c` (the last step of a protected transaction).
    pub(super) fn step_counter<F, C: MonotonicCounter, R>(
        &mut self,
        p: &mut Platform<F, C, R>,
        c: u32,
    ) -> Result<(), ServiceError> {
        p.counter.increment_to(self.config.counter_id, c)?;
        self.fresh_session = false;
        Ok(())
    }

    /// Writes a commit entry at `at` of `bank`; returns its size.
    #[allow(clippy::too_many_arguments)] // one call per field of the commit
    pub(super) fn write_commit<F: Flash, C, R: RandomSource>(
        &self,
        p: &mut Platform<F, C, R>,
        bank: Partition,
        at: usize,
        seq: u32,
        c: u32,
        count: u32,
        digest: &[u8],
    ) -> Result<usize, ServiceError> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        p.rng.fill(&mut nonce)?;
        let header = Header {
            kind: Kind::Commit,
            flags: 0,
            ns: 0,
            seq,
            c,
            uid: 0,
            len: count,
            nonce,
        };
        let hb = header.encode();
        let tag = gcm_encrypt(self.srk.as_slice(), &nonce, &commit_aad(&hb, digest), &mut [])?;
        let size = header.entry_size(self.geo.ws);
        let mut buf = [0u8; HEADER_LEN + GCM_TAG_LEN + super::format::MAX_WRITE_SIZE];
        let (h, t) = buf.split_at_mut(HEADER_LEN);
        h.copy_from_slice(&hb);
        t.get_mut(..GCM_TAG_LEN)
            .ok_or(ServiceError::Crypto("tag"))?
            .copy_from_slice(&tag);
        let entry = buf.get(..size).ok_or(ServiceError::Crypto("commit"))?;
        bank.write(&mut p.flash, at as u32, entry)?;
        Ok(size)
    }

    /// Builds a data entry in `buf`; returns its size.
    #[allow(clippy::too_many_arguments)] // one call per field of the entry
    fn build_data_entry<F, C, R: RandomSource>(
        &self,
        p: &mut Platform<F, C, R>,
        buf: &mut [u8],
        ns: u8,
        uid: u64,
        flags: u8,
        seq: u32,
        c: u32,
        data: &[u8],
    ) -> Result<usize, ServiceError> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        p.rng.fill(&mut nonce)?;
        let header = Header {
            kind: Kind::Data,
            flags,
            ns,
            seq,
            c,
            uid,
            len: data.len() as u32,
            nonce,
        };
        let size = header.entry_size(self.geo.ws);
        let len = data.len();
        let err = ServiceError::Crypto("entry buffer");
        let entry = buf.get_mut(..size).ok_or(err)?;
        entry.fill(0);
        entry.get_mut(..HEADER_LEN).ok_or(err)?.copy_from_slice(&header.encode());
        entry
            .get_mut(HEADER_LEN..HEADER_LEN + len)
            .ok_or(err)?
            .copy_from_slice(data);
        let tag = if ItsFlags(u32::from(flags)).contains(ItsFlags::NO_CONFIDENTIALITY) {
            let aad = entry.get(..HEADER_LEN + len).ok_or(err)?;
            gcm_encrypt(self.srk.as_slice(), &nonce, aad, &mut [])?
        } else {
            let (aad, body) = entry.split_at_mut(HEADER_LEN);
            gcm_encrypt(self.srk.as_slice(), &nonce, aad, body.get_mut(..len).ok_or(err)?)?
        };
        entry
            .get_mut(HEADER_LEN + len..HEADER_LEN + len + GCM_TAG_LEN)
            .ok_or(err)?
            .copy_from_slice(&tag);
        Ok(size)
    }

    /// Builds a tombstone entry in `buf`; returns its size.
    #[allow(clippy::too_many_arguments)] // one call per field of the entry
    fn build_tombstone<F, C, R: RandomSource>(
        &self,
        p: &mut Platform<F, C, R>,
        buf: &mut [u8],
        ns: u8,
        uid: u64,
        flags: u8,
        seq: u32,
        c: u32,
    ) -> Result<usize, ServiceError> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        p.rng.fill(&mut nonce)?;
        let header = Header {
            kind: Kind::Tombstone,
            flags,
            ns,
            seq,
            c,
            uid,
            len: 0,
            nonce,
        };
        let size = header.entry_size(self.geo.ws);
        let err = ServiceError::Crypto("entry buffer");
        let entry = buf.get_mut(..size).ok_or(err)?;
        entry.fill(0);
        let hb = header.encode();
        entry.get_mut(..HEADER_LEN).ok_or(err)?.copy_from_slice(&hb);
        let tag = gcm_encrypt(self.srk.as_slice(), &nonce, &hb, &mut [])?;
        entry
            .get_mut(HEADER_LEN..HEADER_LEN + GCM_TAG_LEN)
            .ok_or(err)?
            .copy_from_slice(&tag);
        Ok(size)
    }
}

/// Checks that an entry read for compaction is the one the index names.
fn check_copy(entry: &[u8], slot: &Slot) -> Result<(), ServiceError> {
    let corrupt = ServiceError::StorageCorrupt("asset entry does not match the index");
    let hb: &[u8; HEADER_LEN] = entry
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(corrupt)?;
    let h = Header::parse(hb).ok_or(corrupt)?;
    let same = h.kind == Kind::Data
        && h.ns == slot.ns
        && h.uid == slot.uid
        && h.seq == slot.seq
        && h.len == slot.len;
    if same { Ok(()) } else { Err(corrupt) }
}
