//! The write side of trusted storage: set and remove as transactions, appended to the active
//! bank or made by compaction into the other bank, then the replay-counter step.
//!
//! ```text
//!  protected:   INTENT := c  ·  write the transaction (bound to c)  ·  COMMIT := c
//!  append:      active bank  …[txn][txn][entry][commit]
//!  compaction:  other bank   erase · [live entries…][new entry][commit]
//! ```
//! Nothing in RAM changes before the last flash or counter operation succeeded; any hardware
//! error marks the store for a rescan before its next call.

use castellan_hal::{Flash, MonotonicCounter, Partition, RandomSource};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::format::{ENTRY_BUF_LEN, HEADER_LEN, Header, Kind, Namespace, entry_size};
use super::scan::commit_aad;
use super::{Its, ItsFlags, Slot};
use crate::aead::{GCM_NONCE_LEN, GCM_TAG_LEN};
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
    /// An empty protected transaction (mount after a cut before step 2, see the module doc).
    Resync,
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
            return Err(ServiceError::InvalidArgument(
                "uid 0 is not a valid asset id",
            ));
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

    /// Writes an empty protected transaction (a fresh counter value, no change of content).
    pub(super) fn resync<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
    ) -> Result<(), ServiceError> {
        self.commit_change(p, Change::Resync, true)
    }

    /// Marks the store for a rescan when `r` failed in the hardware or in an integrity check.
    pub(super) fn guard<T>(&mut self, r: Result<T, ServiceError>) -> Result<T, ServiceError> {
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
        let ws = self.geo.ws;
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or(ServiceError::CounterExhausted)?;
        let (skip, entry_len) = match change {
            Change::Set { ns, uid, data, .. } => ((ns, uid), entry_size(data.len(), ws)),
            Change::Remove { ns, uid, .. } => ((ns, uid), entry_size(0, ws)),
            Change::Resync => ((u8::MAX, 0), 0),
        };
        let commit_len = entry_size(0, ws);
        let bank_size = self.geo.bank_size as usize;
        let append = !self.dirty && self.write_pos as usize + entry_len + commit_len <= bank_size;
        if !append {
            let added = if let Change::Set { .. } = change {
                entry_len
            } else {
                0
            };
            if self.live_bytes_without(skip) + added + commit_len > bank_size {
                return Err(ServiceError::StorageFull);
            }
        }
        // Every refusal is behind us: from here on only the hardware can fail.
        let c = if protected {
            self.begin_protected(p)?
        } else {
            self.last_c
        };
        let mut buf = Zeroizing::new([0u8; ENTRY_BUF_LEN]);
        let new_slot = match change {
            Change::Set {
                ns,
                uid,
                flags,
                data,
            } => {
                let size =
                    self.build_data_entry(p, buf.as_mut_slice(), ns, uid, flags, seq, c, data)?;
                Some(Slot {
                    ns,
                    uid,
                    flags,
                    len: data.len() as u32,
                    offset: 0,
                    size: size as u32,
                    seq,
                })
            }
            Change::Remove { ns, uid, flags } => {
                self.build_tombstone(p, buf.as_mut_slice(), ns, uid, flags, seq, c)?;
                None
            }
            Change::Resync => None,
        };
        let entry = buf.get(..entry_len).ok_or(ServiceError::Crypto("entry"))?;
        if append {
            let bank = self.bank(self.active);
            let at = self.write_pos as usize;
            if !entry.is_empty() {
                bank.write(&mut p.flash, at as u32, entry)?;
            }
            let count = u32::from(!entry.is_empty());
            let digest = Sha256::digest(entry);
            self.write_commit(p, bank, at + entry_len, seq, c, count, digest.as_slice())?;
            if protected {
                self.finish_protected(p, c)?;
            }
            match (change, new_slot) {
                (_, Some(slot)) => self.upsert(Slot {
                    offset: at as u32,
                    ..slot
                })?,
                (Change::Remove { ns, uid, .. }, None) => self.drop_slot(ns, uid),
                _ => {}
            }
            self.write_pos = (at + entry_len + commit_len) as u32;
        } else {
            let extra = new_slot.map(|slot| (slot, entry));
            self.compact(p, skip, extra, seq, c)?;
            if protected {
                self.finish_protected(p, c)?;
            }
            self.switch_to_compacted(skip, new_slot)?;
        }
        self.last_seq = seq;
        self.last_c = c;
        Ok(())
    }

    /// Bytes of flash the live entries take, `skip` excluded.
    fn live_bytes_without(&self, skip: (u8, u64)) -> usize {
        self.index
            .iter()
            .flatten()
            .filter(|s| (s.ns, s.uid) != skip)
            .map(|s| s.size as usize)
            .sum()
    }

    /// Writes the whole state, minus `skip` and plus `extra`, into the other bank as one
    /// transaction (flash only: [`Its::switch_to_compacted`] updates RAM once it is complete).
    fn compact<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        skip: (u8, u64),
        extra: Option<(Slot, &[u8])>,
        seq: u32,
        c: u32,
    ) -> Result<(), ServiceError> {
        let source = self.bank(self.active);
        let target = self.bank(1 - self.active);
        target.erase_all(&mut p.flash)?;
        let mut hasher = Sha256::new();
        let mut pos = 0usize;
        let mut count = 0u32;
        let mut copy = Zeroizing::new([0u8; ENTRY_BUF_LEN]);
        for slot in self.index.iter().flatten() {
            if (slot.ns, slot.uid) == skip {
                continue;
            }
            let entry = copy
                .get_mut(..slot.size as usize)
                .ok_or(ServiceError::Crypto("entry"))?;
            source.read(&mut p.flash, slot.offset, entry)?;
            check_copy(entry, slot)?;
            target.write(&mut p.flash, pos as u32, entry)?;
            hasher.update(&*entry);
            pos += slot.size as usize;
            count += 1;
        }
        if let Some((_, entry)) = extra {
            target.write(&mut p.flash, pos as u32, entry)?;
            hasher.update(entry);
            pos += entry.len();
            count += 1;
        }
        let digest = hasher.finalize();
        self.write_commit(p, target, pos, seq, c, count, digest.as_slice())?;
        Ok(())
    }

    /// Points the RAM index at the bank [`Its::compact`] wrote (same order, same sizes).
    fn switch_to_compacted(
        &mut self,
        skip: (u8, u64),
        extra: Option<Slot>,
    ) -> Result<(), ServiceError> {
        let mut pos = 0u32;
        for entry in self.index.iter_mut() {
            match entry {
                Some(s) if (s.ns, s.uid) != skip => {
                    s.offset = pos;
                    pos += s.size;
                }
                _ => *entry = None,
            }
        }
        if let Some(slot) = extra {
            self.upsert(Slot {
                offset: pos,
                ..slot
            })?;
            pos += slot.size;
        }
        self.active = 1 - self.active;
        self.write_pos = pos + entry_size(0, self.geo.ws) as u32;
        self.dirty = false;
        Ok(())
    }

    /// Step 1 of a protected transaction: raises INTENT to a fresh value and returns it.
    pub(super) fn begin_protected<F, C: MonotonicCounter, R>(
        &self,
        p: &mut Platform<F, C, R>,
    ) -> Result<u32, ServiceError> {
        let intent = p.counter.read(self.config.intent_counter)?;
        let c = intent
            .max(self.last_c)
            .checked_add(1)
            .ok_or(ServiceError::CounterExhausted)?;
        if c > p.counter.max_value() {
            return Err(ServiceError::CounterExhausted);
        }
        p.counter
            .increment_to(self.config.intent_counter, c)
            .map_err(|e| match e {
                castellan_hal::HalError::CounterExhausted => ServiceError::CounterExhausted,
                e => ServiceError::Hardware(e),
            })?;
        Ok(c)
    }

    /// Step 3 of a protected transaction: raises COMMIT to `c`.
    pub(super) fn finish_protected<F, C: MonotonicCounter, R>(
        &self,
        p: &mut Platform<F, C, R>,
        c: u32,
    ) -> Result<(), ServiceError> {
        p.counter.increment_to(self.config.commit_counter, c)?;
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
        let tag = self
            .cipher
            .encrypt(&nonce, &commit_aad(&hb, digest), &mut [])?;
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
        entry
            .get_mut(..HEADER_LEN)
            .ok_or(err)?
            .copy_from_slice(&header.encode());
        entry
            .get_mut(HEADER_LEN..HEADER_LEN + len)
            .ok_or(err)?
            .copy_from_slice(data);
        let tag = if ItsFlags(u32::from(flags)).contains(ItsFlags::NO_CONFIDENTIALITY) {
            let aad = entry.get(..HEADER_LEN + len).ok_or(err)?;
            self.cipher.encrypt(&nonce, aad, &mut [])?
        } else {
            let (aad, body) = entry.split_at_mut(HEADER_LEN);
            self.cipher
                .encrypt(&nonce, aad, body.get_mut(..len).ok_or(err)?)?
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
        let tag = self.cipher.encrypt(&nonce, &hb, &mut [])?;
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
