//! On-flash formats of trusted storage: log entries (data, tombstone, commit) and the key-area
//! record that holds the wrapped storage root key.
//!
//! ```text
//!  entry (little-endian), padded with zeros to the flash write size:
//!  0  magic  C5 'I' 'T' 'S'     first byte neither 0x00 nor 0xFF: a started write is never "erased"
//!  4  kind   1 data · 2 tombstone · 3 commit
//!  5  flags  PSA storage flags of the asset (commit: 0)
//!  6  ns     namespace: 0 client (psa_its_*), 1 crypto keystore, 2 update client
//!  7  0
//!  8  seq    u32  sequence number of the transaction that wrote the entry
//!  12 c      u32  replay counter value bound to that transaction
//!  16 uid    u64  (commit: 0)
//!  24 len    u32  data: plaintext length · tombstone: 0 · commit: entries in the transaction
//!  28 nonce  [12] random AES-GCM nonce
//!  40 data   [len] ciphertext (plaintext for NO_CONFIDENTIALITY assets)
//!  .. tag    [16] AES-256-GCM tag under the storage root key, AAD = bytes 0..40
//!                 (NO_CONFIDENTIALITY: AAD = bytes 0..40+len, nothing encrypted;
//!                  commit: AAD = bytes 0..40 ‖ SHA-256 of the transaction's entries as written)
//!
//!  key-area record:
//!  0 magic C3 'S' 'R' 'K' · 4 version 1, 0, 0, 0 · 8 nonce [12] · 20 wrapped SRK [32] · 52 tag [16]
//!  AES-256-GCM under the storage wrapping key (from CDI_Seal), AAD = bytes 0..8
//! ```

use crate::aead::{GCM_NONCE_LEN, GCM_TAG_LEN};

/// First bytes of every log entry.
pub(crate) const MAGIC: [u8; 4] = [0xC5, b'I', b'T', b'S'];
/// Entry header length.
pub(crate) const HEADER_LEN: usize = 40;
/// Header plus tag: the size of an entry without data or padding.
pub(crate) const ENTRY_OVERHEAD: usize = HEADER_LEN + GCM_TAG_LEN;
/// Largest asset a store can be configured to accept (bytes of plaintext).
pub const ITS_MAX_ASSET_SIZE: usize = 512;
/// Most assets a store can hold (all namespaces together: client assets and persistent keys).
pub const ITS_MAX_ASSETS: usize = 32;
/// Largest flash write size the format supports (padding and buffers are sized for it).
pub(crate) const MAX_WRITE_SIZE: usize = 64;
/// Size of a buffer that holds any entry.
pub(crate) const ENTRY_BUF_LEN: usize = ENTRY_OVERHEAD + ITS_MAX_ASSET_SIZE + MAX_WRITE_SIZE;

/// Magic of the key-area record.
pub(crate) const KEY_MAGIC: [u8; 4] = [0xC3, b'S', b'R', b'K'];
/// Version of the key-area record.
pub(crate) const KEY_VERSION: u8 = 1;
/// Length of the storage root key.
pub(crate) const SRK_LEN: usize = 32;
/// Length of the key-area record before padding.
pub(crate) const KEY_RECORD_LEN: usize = 8 + GCM_NONCE_LEN + SRK_LEN + GCM_TAG_LEN;
/// Size of a buffer that holds the padded key-area record.
pub(crate) const KEY_RECORD_BUF_LEN: usize = KEY_RECORD_LEN + MAX_WRITE_SIZE;

/// What a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A stored value of an asset.
    Data = 1,
    /// The removal of an asset.
    Tombstone = 2,
    /// The end of a transaction: the entries since the previous commit take effect.
    Commit = 3,
}

/// Namespaces of the store: a client can only reach [`Namespace::Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    /// Assets of `psa_its_*` callers.
    Client = 0,
    /// Persistent keys of the crypto service.
    Crypto = 1,
    /// The update client's state: release trust anchor, installed sequence number, download.
    Update = 2,
    /// The detector's state: the last detection report's counter.
    #[cfg_attr(not(feature = "detect"), allow(dead_code))]
    Detect = 3,
}

/// A parsed entry header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) flags: u8,
    pub(crate) ns: u8,
    pub(crate) seq: u32,
    pub(crate) c: u32,
    pub(crate) uid: u64,
    pub(crate) len: u32,
    pub(crate) nonce: [u8; GCM_NONCE_LEN],
}

impl Header {
    /// The header's bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        put(&mut b, 0, &MAGIC);
        put(&mut b, 4, &[self.kind as u8, self.flags, self.ns, 0]);
        put(&mut b, 8, &self.seq.to_le_bytes());
        put(&mut b, 12, &self.c.to_le_bytes());
        put(&mut b, 16, &self.uid.to_le_bytes());
        put(&mut b, 24, &self.len.to_le_bytes());
        put(&mut b, 28, &self.nonce);
        b
    }

    /// Parses a header; `None` when the magic, kind or reserved byte is wrong (a torn or foreign
    /// entry). Lengths are checked by the caller against the store's limits.
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Option<Header> {
        if b.get(..4)? != MAGIC || *b.get(7)? != 0 {
            return None;
        }
        let kind = match b.get(4)? {
            1 => Kind::Data,
            2 => Kind::Tombstone,
            3 => Kind::Commit,
            _ => return None,
        };
        Some(Header {
            kind,
            flags: *b.get(5)?,
            ns: *b.get(6)?,
            seq: u32::from_le_bytes(b.get(8..12)?.try_into().ok()?),
            c: u32::from_le_bytes(b.get(12..16)?.try_into().ok()?),
            uid: u64::from_le_bytes(b.get(16..24)?.try_into().ok()?),
            len: u32::from_le_bytes(b.get(24..28)?.try_into().ok()?),
            nonce: b.get(28..40)?.try_into().ok()?,
        })
    }

    /// Bytes of data after the header (0 for tombstones and commits).
    pub(crate) fn payload_len(&self) -> usize {
        match self.kind {
            Kind::Data => self.len as usize,
            Kind::Tombstone | Kind::Commit => 0,
        }
    }

    /// Size of the whole entry on flash (padded to the write size `ws`).
    pub(crate) fn entry_size(&self, ws: usize) -> usize {
        entry_size(self.payload_len(), ws)
    }
}

/// Size on flash of an entry with `payload` bytes of data.
/// Saturates instead of overflowing: a hostile length read from flash gives a size no bank
/// holds, never a panic or a wrapped small size.
pub(crate) fn entry_size(payload: usize, ws: usize) -> usize {
    round_up(ENTRY_OVERHEAD.saturating_add(payload), ws)
}

/// `n` rounded up to a multiple of `ws` (a power of two, at least 1), saturating.
pub(crate) fn round_up(n: usize, ws: usize) -> usize {
    let ws = ws.max(1);
    n.div_ceil(ws).saturating_mul(ws)
}

/// Copies `src` into `b` at `at` (the callers' offsets are constants inside `b`).
fn put(b: &mut [u8], at: usize, src: &[u8]) {
    if let Some(dst) = b.get_mut(at..at + src.len()) {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_foreign_bytes() {
        let h = Header {
            kind: Kind::Data,
            flags: 5,
            ns: 1,
            seq: 7,
            c: 9,
            uid: 0x1122_3344_5566_7788,
            len: 300,
            nonce: [0xAB; 12],
        };
        let b = h.encode();
        assert_eq!(Header::parse(&b), Some(h));
        assert_eq!(h.entry_size(16), 368);
        assert_eq!(h.entry_size(1), 356);
        for erased in [0x00u8, 0xFF] {
            assert_eq!(Header::parse(&[erased; HEADER_LEN]), None);
            assert_ne!(MAGIC[0], erased);
        }
        let mut bad = b;
        bad[4] = 9;
        assert_eq!(Header::parse(&bad), None);
        let mut bad = b;
        bad[7] = 1;
        assert_eq!(Header::parse(&bad), None);
    }
}
