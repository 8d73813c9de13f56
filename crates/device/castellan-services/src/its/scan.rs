//! Mounting trusted storage: unwrapping the storage root key, scanning both banks for the newest
//! committed state, the replay check and roll-forward, formatting, and the read path (`get`).
//!
//! ```text
//!  mount ── key area ──▶ SRK (or: blank & counter 0 → format)
//!        ── probe bank 0, bank 1 ──▶ winner = highest committed seq
//!        ── replay winner's transactions into the RAM index
//!        ── c_newest < H: refuse (rollback) · c_newest > H: raise H (roll forward)
//! ```

use castellan_hal::{Flash, MonotonicCounter, Partition, RandomSource};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::format::{
    ENTRY_BUF_LEN, HEADER_LEN, Header, ITS_MAX_ASSET_SIZE, ITS_MAX_ASSETS, KEY_MAGIC,
    KEY_RECORD_BUF_LEN, KEY_RECORD_LEN, KEY_VERSION, Kind, MAX_WRITE_SIZE, Namespace, SRK_LEN,
    entry_size, round_up,
};
use super::{Geometry, Its, ItsConfig, ItsFlags, Slot};
use crate::aead::{GCM_NONCE_LEN, GCM_TAG_LEN, Gcm256, gcm_decrypt, gcm_encrypt};
use crate::{Platform, ServiceError, kdf};

/// What scanning one bank found.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BankScan {
    /// At least one transaction is committed.
    committed: bool,
    /// Sequence number of the last committed transaction.
    last_seq: u32,
    /// Replay counter value of the last committed transaction.
    last_c: u32,
    /// Offset just after the last commit.
    end: u32,
    /// Something other than erased flash follows the last commit (a torn or uncommitted write,
    /// or tampering): never append to this bank again.
    dirty: bool,
}

/// Outcome of a rescan.
pub(super) enum Rescan {
    /// The store is mounted.
    Mounted,
    /// Nothing is committed and the commit counter is 0: a blank store to format.
    NeedsFormat,
}

/// State of the key area.
enum KeyArea {
    Valid(Zeroizing<[u8; SRK_LEN]>),
    Blank,
    Invalid,
}

impl Its {
    /// Mounts the store in `config` with the sealing CDI `cdi_seal`.
    ///
    /// On a blank device (key area and banks erased, replay counter 0) it formats the store
    /// (first boot). It refuses an older state than the replay counter allows
    /// ([`ServiceError::StorageRollback`], also for a wiped store once the counter is above 0),
    /// a key area it cannot unwrap ([`ServiceError::StorageKeyInvalid`]) and flash that fails
    /// its integrity checks ([`ServiceError::StorageCorrupt`]). A write cut by a power loss after
    /// its commit is rolled forward (the counter is raised).
    pub fn mount<F: Flash, C: MonotonicCounter, R: RandomSource>(
        config: ItsConfig,
        cdi_seal: &[u8; kdf::KEY_LEN],
        p: &mut Platform<F, C, R>,
    ) -> Result<Its, ServiceError> {
        let geo = geometry(&config, &p.flash)?;
        let swk = kdf::storage_wrapping_key(cdi_seal)?;
        let (intent, commit) = read_counters(&config, &p.counter)?;
        let srk = match read_key_area(&config, geo, &swk, &mut p.flash)? {
            KeyArea::Valid(srk) => srk,
            KeyArea::Blank | KeyArea::Invalid if commit == 0 => {
                return Self::format_with(config, geo, &swk, p);
            }
            KeyArea::Blank => {
                return Err(ServiceError::StorageRollback {
                    stored: 0,
                    hardware: intent,
                });
            }
            KeyArea::Invalid => return Err(ServiceError::StorageKeyInvalid),
        };
        let mut its = Its::empty(config, geo, srk);
        match its.rescan(p)? {
            Rescan::Mounted => Ok(its),
            // Key written, genesis not committed: a first format cut by a power loss.
            Rescan::NeedsFormat => Self::format_with(config, geo, &swk, p),
        }
    }

    /// Formats a new, empty store (new random storage root key), destroying any content. The
    /// provisioning flow calls it; [`Its::mount`] calls it by itself on a blank device.
    pub fn format<F: Flash, C: MonotonicCounter, R: RandomSource>(
        config: ItsConfig,
        cdi_seal: &[u8; kdf::KEY_LEN],
        p: &mut Platform<F, C, R>,
    ) -> Result<Its, ServiceError> {
        let geo = geometry(&config, &p.flash)?;
        let swk = kdf::storage_wrapping_key(cdi_seal)?;
        Self::format_with(config, geo, &swk, p)
    }

    fn format_with<F: Flash, C: MonotonicCounter, R: RandomSource>(
        config: ItsConfig,
        geo: Geometry,
        swk: &[u8; kdf::KEY_LEN],
        p: &mut Platform<F, C, R>,
    ) -> Result<Its, ServiceError> {
        read_counters(&config, &p.counter)?;
        Its::crypto_erase(&config, &mut p.flash)?;
        let mut srk = Zeroizing::new([0u8; SRK_LEN]);
        p.rng.fill(srk.as_mut_slice())?;
        write_key_area(&config, geo, swk, &srk, p)?;
        let mut its = Its::empty(config, geo, srk);
        // The genesis transaction: no entries, a commit binding a fresh counter value.
        let c = its.begin_protected(p)?;
        let genesis = Sha256::new().finalize();
        let bank = its.bank(0);
        let commit_len = its.write_commit(p, bank, 0, 1, c, 0, genesis.as_slice())?;
        its.finish_protected(p, c)?;
        its.last_seq = 1;
        its.last_c = c;
        its.write_pos = commit_len as u32;
        Ok(its)
    }

    fn empty(config: ItsConfig, geo: Geometry, srk: Zeroizing<[u8; SRK_LEN]>) -> Its {
        Its {
            config,
            geo,
            cipher: Gcm256::new(&srk),
            index: [None; ITS_MAX_ASSETS],
            active: 0,
            write_pos: 0,
            dirty: false,
            last_seq: 0,
            last_c: 0,
            broken: false,
        }
    }

    /// Rebuilds the RAM state from flash and applies the replay rules (module doc).
    pub(super) fn rescan<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
    ) -> Result<Rescan, ServiceError> {
        let (intent, commit) = read_counters(&self.config, &p.counter)?;
        self.index = [None; ITS_MAX_ASSETS];
        let s0 = self.scan_bank(&mut p.flash, 0, false)?;
        let s1 = self.scan_bank(&mut p.flash, 1, false)?;
        let winner = match (s0.committed, s1.committed) {
            (false, false) if commit == 0 => return Ok(Rescan::NeedsFormat),
            (false, false) => {
                return Err(ServiceError::StorageRollback {
                    stored: 0,
                    hardware: intent,
                });
            }
            (true, false) => 0,
            (false, true) => 1,
            (true, true) if s0.last_seq > s1.last_seq => 0,
            (true, true) if s1.last_seq > s0.last_seq => 1,
            (true, true) => {
                return Err(ServiceError::StorageCorrupt(
                    "both banks end with the same transaction",
                ));
            }
        };
        let st = self.scan_bank(&mut p.flash, winner, true)?;
        let newest = st.last_c;
        let rollback = ServiceError::StorageRollback {
            stored: newest,
            hardware: intent,
        };
        let ahead =
            ServiceError::StorageCorrupt("newest transaction is ahead of the replay counters");
        let resync = if newest > intent {
            return Err(ahead);
        } else if intent == commit {
            if newest < intent {
                return Err(if st.dirty {
                    ServiceError::StorageCorrupt(
                        "a committed transaction fails its integrity check",
                    )
                } else {
                    rollback
                });
            }
            false
        } else if newest == intent {
            // Step 3 of a protected write was cut: complete it.
            p.counter.increment_to(self.config.commit_counter, intent)?;
            false
        } else if newest == commit {
            // Step 2 did not land (or this is the image from before it): move past it.
            true
        } else {
            return Err(rollback);
        };
        self.active = winner;
        self.write_pos = st.end;
        self.dirty = st.dirty;
        self.last_seq = st.last_seq;
        self.last_c = newest;
        self.broken = false;
        if resync {
            let r = self.resync(p);
            self.guard(r)?;
        }
        Ok(Rescan::Mounted)
    }

    /// Rescans first if a change failed half-way.
    pub(super) fn ensure_ready<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
    ) -> Result<(), ServiceError> {
        if self.broken {
            if let Rescan::NeedsFormat = self.rescan(p)? {
                return Err(ServiceError::StorageCorrupt(
                    "the store vanished from flash while mounted",
                ));
            }
        }
        Ok(())
    }

    /// Reads `ns`/`uid` (see [`Its::get`]).
    pub(crate) fn get_in<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        p: &mut Platform<F, C, R>,
        ns: Namespace,
        uid: u64,
        offset: usize,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        self.ensure_ready(p)?;
        let slot = self.find(ns, uid).ok_or(ServiceError::DoesNotExist)?;
        let len = slot.len as usize;
        if offset > len {
            return Err(ServiceError::InvalidArgument(
                "offset is beyond the end of the asset",
            ));
        }
        let mut buf = Zeroizing::new([0u8; ENTRY_BUF_LEN]);
        let plain = self.read_entry(&mut p.flash, &slot, buf.as_mut_slice())?;
        let src = plain.get(offset..).unwrap_or_default();
        let n = src.len().min(out.len());
        out.get_mut(..n)
            .ok_or(ServiceError::Crypto("length"))?
            .copy_from_slice(src.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Reads, checks and decrypts the entry of `slot` into `buf`; returns the plaintext.
    fn read_entry<'b, F: Flash>(
        &self,
        flash: &mut F,
        slot: &Slot,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], ServiceError> {
        let corrupt = ServiceError::StorageCorrupt("asset entry does not match the index");
        let entry = buf.get_mut(..slot.size as usize).ok_or(corrupt)?;
        self.bank(self.active).read(flash, slot.offset, entry)?;
        let hb: &[u8; HEADER_LEN] = entry
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(corrupt)?;
        let h = Header::parse(hb).ok_or(corrupt)?;
        if h.kind != Kind::Data
            || h.ns != slot.ns
            || h.uid != slot.uid
            || h.seq != slot.seq
            || h.len != slot.len
            || h.flags != slot.flags
        {
            return Err(corrupt);
        }
        let len = slot.len as usize;
        let tag: [u8; GCM_TAG_LEN] = entry
            .get(HEADER_LEN + len..HEADER_LEN + len + GCM_TAG_LEN)
            .and_then(|t| t.try_into().ok())
            .ok_or(corrupt)?;
        let ok = if ItsFlags(u32::from(h.flags)).contains(ItsFlags::NO_CONFIDENTIALITY) {
            let aad = entry.get(..HEADER_LEN + len).ok_or(corrupt)?;
            self.cipher.decrypt(&h.nonce, aad, &mut [], &tag)
        } else {
            let (aad, body) = entry.split_at_mut(HEADER_LEN);
            let body = body.get_mut(..len).ok_or(corrupt)?;
            self.cipher.decrypt(&h.nonce, aad, body, &tag)
        };
        if !ok {
            return Err(ServiceError::StorageCorrupt(
                "asset failed its authentication check",
            ));
        }
        buf.get(HEADER_LEN..HEADER_LEN + len).ok_or(corrupt)
    }

    /// Scans bank `bank`; with `apply`, replays its committed transactions into the index.
    fn scan_bank<F: Flash>(
        &mut self,
        flash: &mut F,
        bank: u8,
        apply: bool,
    ) -> Result<BankScan, ServiceError> {
        let part = self.bank(bank);
        let size = self.geo.bank_size as usize;
        let ws = self.geo.ws;
        let erased = self.geo.erased;
        let mut st = BankScan::default();
        let mut pos = 0usize;
        let mut txn_start = 0usize;
        let mut count = 0u32;
        let mut max_seq = 0u32;
        let mut max_c = 0u32;
        let mut hasher = Sha256::new();
        loop {
            let mut hb = [0u8; HEADER_LEN];
            if pos + HEADER_LEN > size {
                break;
            }
            part.read(flash, pos as u32, &mut hb)?;
            if hb.iter().take(4).all(|b| *b == erased) {
                break;
            }
            let Some(h) = Header::parse(&hb) else {
                break;
            };
            let esize = h.entry_size(ws);
            let in_bounds = pos.saturating_add(esize) <= size;
            let sane = match h.kind {
                Kind::Data => h.len as usize <= ITS_MAX_ASSET_SIZE,
                Kind::Tombstone => h.len == 0,
                Kind::Commit => h.flags == 0 && h.ns == 0 && h.uid == 0,
            };
            if !in_bounds || !sane || count as usize > ITS_MAX_ASSETS {
                break;
            }
            if h.kind != Kind::Commit {
                hash_range(flash, part, pos, esize, &mut hasher)?;
                count += 1;
                max_seq = max_seq.max(h.seq);
                max_c = max_c.max(h.c);
                pos += esize;
                continue;
            }
            let digest = hasher.finalize_reset();
            let valid = h.len == count
                && h.seq > st.last_seq
                && h.c >= st.last_c
                && max_seq <= h.seq
                && max_c <= h.c
                && self.commit_tag_ok(flash, part, pos, &hb, &h, digest.as_slice())?;
            if !valid {
                break;
            }
            if apply {
                self.apply_txn(flash, part, txn_start, pos)?;
            }
            st.committed = true;
            st.last_seq = h.seq;
            st.last_c = h.c;
            pos += esize;
            st.end = pos as u32;
            txn_start = pos;
            count = 0;
            max_seq = 0;
            max_c = 0;
        }
        // Clean only if nothing follows the last commit: an uncommitted entry, a torn write or
        // a failed check leaves the bank dirty, and it is never appended to again.
        let end = st.end as usize;
        st.dirty = !part.is_erased(flash, st.end, (size - end) as u32)?;
        Ok(st)
    }

    fn commit_tag_ok<F: Flash>(
        &self,
        flash: &mut F,
        part: Partition,
        pos: usize,
        hb: &[u8; HEADER_LEN],
        h: &Header,
        digest: &[u8],
    ) -> Result<bool, ServiceError> {
        let mut tag = [0u8; GCM_TAG_LEN];
        part.read(flash, (pos + HEADER_LEN) as u32, &mut tag)?;
        let aad = commit_aad(hb, digest);
        Ok(self.cipher.decrypt(&h.nonce, &aad, &mut [], &tag))
    }

    /// Replays the entries in `from..to` of `part` (a committed transaction) into the index.
    fn apply_txn<F: Flash>(
        &mut self,
        flash: &mut F,
        part: Partition,
        from: usize,
        to: usize,
    ) -> Result<(), ServiceError> {
        let corrupt = ServiceError::StorageCorrupt("committed transaction changed while mounting");
        let mut pos = from;
        while pos < to {
            let mut hb = [0u8; HEADER_LEN];
            part.read(flash, pos as u32, &mut hb)?;
            let h = Header::parse(&hb).ok_or(corrupt)?;
            let esize = h.entry_size(self.geo.ws);
            if h.len as usize > ITS_MAX_ASSET_SIZE || pos.saturating_add(esize) > to {
                return Err(corrupt);
            }
            match h.kind {
                Kind::Data => {
                    let slot = Slot {
                        ns: h.ns,
                        uid: h.uid,
                        flags: h.flags,
                        len: h.len,
                        offset: pos as u32,
                        size: esize as u32,
                        seq: h.seq,
                    };
                    self.upsert(slot).map_err(|_| {
                        ServiceError::StorageCorrupt("more assets in flash than the store holds")
                    })?;
                }
                Kind::Tombstone => self.drop_slot(h.ns, h.uid),
                Kind::Commit => return Err(corrupt),
            }
            pos += esize;
        }
        Ok(())
    }

    /// Inserts or replaces the slot of `slot.ns`/`slot.uid`.
    pub(super) fn upsert(&mut self, slot: Slot) -> Result<(), ServiceError> {
        let same = |s: &Option<Slot>| s.is_some_and(|s| s.ns == slot.ns && s.uid == slot.uid);
        let at =
            match self.index.iter().position(same) {
                Some(i) => i,
                None => self.index.iter().position(Option::is_none).ok_or(
                    ServiceError::TooManyAssets {
                        max: ITS_MAX_ASSETS,
                    },
                )?,
            };
        if let Some(s) = self.index.get_mut(at) {
            *s = Some(slot);
        }
        Ok(())
    }

    /// Forgets the slot of `ns`/`uid` (if any).
    pub(super) fn drop_slot(&mut self, ns: u8, uid: u64) {
        for s in self.index.iter_mut() {
            if s.is_some_and(|s| s.ns == ns && s.uid == uid) {
                *s = None;
            }
        }
    }
}

/// AAD of a commit: its header, then the SHA-256 of its transaction's entries.
pub(super) fn commit_aad(hb: &[u8; HEADER_LEN], digest: &[u8]) -> [u8; HEADER_LEN + 32] {
    let mut aad = [0u8; HEADER_LEN + 32];
    let (head, tail) = aad.split_at_mut(HEADER_LEN);
    head.copy_from_slice(hb);
    for (d, s) in tail.iter_mut().zip(digest) {
        *d = *s;
    }
    aad
}

/// Feeds `len` bytes of `part` from `pos` into `hasher`.
fn hash_range<F: Flash>(
    flash: &mut F,
    part: Partition,
    pos: usize,
    len: usize,
    hasher: &mut Sha256,
) -> Result<(), ServiceError> {
    let mut chunk = [0u8; 64];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        let c = chunk.get_mut(..n).ok_or(ServiceError::Crypto("chunk"))?;
        part.read(flash, (pos + done) as u32, c)?;
        hasher.update(&*c);
        done += n;
    }
    Ok(())
}

/// Reads (INTENT, COMMIT); COMMIT ahead of INTENT cannot happen and is refused.
pub(super) fn read_counters<C: MonotonicCounter>(
    config: &ItsConfig,
    counter: &C,
) -> Result<(u32, u32), ServiceError> {
    let intent = counter.read(config.intent_counter)?;
    let commit = counter.read(config.commit_counter)?;
    if commit > intent {
        return Err(ServiceError::StorageCorrupt(
            "the commit counter is ahead of the intent counter",
        ));
    }
    Ok((intent, commit))
}

/// Checks the configuration against the flash and returns the store's geometry.
pub(super) fn geometry<F: Flash>(config: &ItsConfig, flash: &F) -> Result<Geometry, ServiceError> {
    let bad = ServiceError::InvalidArgument;
    let ws = flash.write_size();
    let es = flash.erase_size() as u32;
    if ws == 0 || !ws.is_power_of_two() || ws > MAX_WRITE_SIZE {
        return Err(bad(
            "flash write size must be a power of two of at most 64 bytes",
        ));
    }
    config
        .area
        .validate(flash)
        .map_err(|_| bad("ITS area must be sector-aligned and inside the flash"))?;
    config
        .key_area
        .validate(flash)
        .map_err(|_| bad("ITS key area must be sector-aligned and inside the flash"))?;
    let (a, k) = (config.area, config.key_area);
    if a.offset < k.offset + k.size && k.offset < a.offset + a.size {
        return Err(bad("ITS area and key area overlap"));
    }
    let sectors = config.area.size / es.max(1);
    if sectors < 2 || sectors % 2 != 0 {
        return Err(bad("ITS area must be an even number (≥ 2) of sectors"));
    }
    if (config.key_area.size as usize) < round_up(KEY_RECORD_LEN, ws) {
        return Err(bad("ITS key area is too small"));
    }
    if config.intent_counter == config.commit_counter {
        return Err(bad("ITS needs two distinct replay counters"));
    }
    if config.max_assets == 0 || config.max_assets > ITS_MAX_ASSETS {
        return Err(bad("max_assets must be 1..=ITS_MAX_ASSETS"));
    }
    if config.max_asset_size > ITS_MAX_ASSET_SIZE {
        return Err(bad("max_asset_size must be at most ITS_MAX_ASSET_SIZE"));
    }
    let bank_size = config.area.size / 2;
    if (bank_size as usize) < entry_size(config.max_asset_size, ws) + entry_size(0, ws) {
        return Err(bad("an ITS bank cannot hold one asset of the maximum size"));
    }
    Ok(Geometry {
        ws,
        bank_size,
        erased: flash.erased_value(),
    })
}

fn read_key_area<F: Flash>(
    config: &ItsConfig,
    geo: Geometry,
    swk: &[u8; kdf::KEY_LEN],
    flash: &mut F,
) -> Result<KeyArea, ServiceError> {
    let len = round_up(KEY_RECORD_LEN, geo.ws);
    let mut buf = Zeroizing::new([0u8; KEY_RECORD_BUF_LEN]);
    let rec = buf.get_mut(..len).ok_or(ServiceError::Crypto("length"))?;
    config.key_area.read(flash, 0, rec)?;
    if rec.iter().all(|b| *b == geo.erased) {
        return Ok(KeyArea::Blank);
    }
    let (head, rest) = rec.split_at_mut(8);
    if head.get(..4) != Some(&KEY_MAGIC[..]) || head.get(4) != Some(&KEY_VERSION) {
        return Ok(KeyArea::Invalid);
    }
    let (nonce, rest) = rest.split_at_mut(GCM_NONCE_LEN);
    let (wrapped, rest) = rest.split_at_mut(SRK_LEN);
    let nonce: [u8; GCM_NONCE_LEN] = (&*nonce)
        .try_into()
        .map_err(|_| ServiceError::Crypto("nonce"))?;
    let tag: [u8; GCM_TAG_LEN] = rest
        .get(..GCM_TAG_LEN)
        .and_then(|t| t.try_into().ok())
        .ok_or(ServiceError::Crypto("tag"))?;
    if !gcm_decrypt(swk, &nonce, head, wrapped, &tag)? {
        return Ok(KeyArea::Invalid);
    }
    let mut srk = Zeroizing::new([0u8; SRK_LEN]);
    srk.copy_from_slice(wrapped);
    Ok(KeyArea::Valid(srk))
}

fn write_key_area<F: Flash, C, R: RandomSource>(
    config: &ItsConfig,
    geo: Geometry,
    swk: &[u8; kdf::KEY_LEN],
    srk: &[u8; SRK_LEN],
    p: &mut Platform<F, C, R>,
) -> Result<(), ServiceError> {
    let len = round_up(KEY_RECORD_LEN, geo.ws);
    let mut buf = Zeroizing::new([0u8; KEY_RECORD_BUF_LEN]);
    let rec = buf.get_mut(..len).ok_or(ServiceError::Crypto("length"))?;
    let mut nonce = [0u8; GCM_NONCE_LEN];
    p.rng.fill(&mut nonce)?;
    let (head, rest) = rec.split_at_mut(8);
    head.copy_from_slice(&[
        KEY_MAGIC[0],
        KEY_MAGIC[1],
        KEY_MAGIC[2],
        KEY_MAGIC[3],
        KEY_VERSION,
        0,
        0,
        0,
    ]);
    let (n, rest) = rest.split_at_mut(GCM_NONCE_LEN);
    n.copy_from_slice(&nonce);
    let (wrapped, rest) = rest.split_at_mut(SRK_LEN);
    wrapped.copy_from_slice(srk);
    let tag = gcm_encrypt(swk, &nonce, head, wrapped)?;
    rest.get_mut(..GCM_TAG_LEN)
        .ok_or(ServiceError::Crypto("tag"))?
        .copy_from_slice(&tag);
    config.key_area.write(&mut p.flash, 0, rec)?;
    Ok(())
}
