//! A key held by the crypto service: attributes plus material, wiped on drop, and its record
//! format in trusted storage (persistent keys, namespace "crypto", uid = key id).
//!
//! ```text
//!  record: version 1 · type u16 · bits u16 · usage u32 · algorithm u32 · len u8 · material[len]
//!          (little-endian; the record is encrypted and authenticated by trusted storage)
//! ```

use zeroize::Zeroize;

use super::types::{Algorithm, KeyAttributes, KeyId, KeyType, KeyUsage, Lifetime};
use crate::ServiceError;

/// Largest key material: an uncompressed P-256 public key (65 bytes).
pub(crate) const MAX_KEY_LEN: usize = 65;
/// Length of a key record before the material.
const RECORD_HEAD: usize = 14;
/// Largest key record.
pub(crate) const MAX_RECORD_LEN: usize = RECORD_HEAD + MAX_KEY_LEN;
/// Version of the key record.
const RECORD_VERSION: u8 = 1;

/// A key and its policy. Not `Clone`; the material is zeroed when it is dropped.
pub(crate) struct Key {
    pub(crate) id: KeyId,
    pub(crate) attrs: KeyAttributes,
    material: [u8; MAX_KEY_LEN],
}

impl Key {
    /// A key with `material` (its length must be `attrs.material_len()`).
    pub(crate) fn new(
        id: KeyId,
        attrs: KeyAttributes,
        material: &[u8],
    ) -> Result<Self, ServiceError> {
        let mut key = Key {
            id,
            attrs,
            material: [0; MAX_KEY_LEN],
        };
        key.material
            .get_mut(..attrs.material_len())
            .filter(|m| m.len() == material.len())
            .ok_or(ServiceError::InvalidArgument("key material length"))?
            .copy_from_slice(material);
        Ok(key)
    }

    /// The key material.
    pub(crate) fn material(&self) -> &[u8] {
        self.material
            .get(..self.attrs.material_len())
            .unwrap_or_default()
    }

    /// Writes the storage record into `out`; returns its length.
    pub(crate) fn encode(&self, out: &mut [u8; MAX_RECORD_LEN]) -> usize {
        let a = &self.attrs;
        let m = self.material();
        let mut head = [0u8; RECORD_HEAD];
        head[0] = RECORD_VERSION;
        head[1..3].copy_from_slice(&a.key_type.0.to_le_bytes());
        head[3..5].copy_from_slice(&a.bits.to_le_bytes());
        head[5..9].copy_from_slice(&a.usage.0.to_le_bytes());
        head[9..13].copy_from_slice(&a.algorithm.0.to_le_bytes());
        head[13] = m.len() as u8;
        let (h, rest) = out.split_at_mut(RECORD_HEAD);
        h.copy_from_slice(&head);
        for (d, s) in rest.iter_mut().zip(m) {
            *d = *s;
        }
        RECORD_HEAD + m.len()
    }

    /// Parses a storage record of persistent key `id`.
    pub(crate) fn decode(id: KeyId, record: &[u8]) -> Result<Self, ServiceError> {
        let bad = ServiceError::StorageCorrupt("persistent key record is malformed");
        let head: &[u8; RECORD_HEAD] = record
            .get(..RECORD_HEAD)
            .and_then(|h| h.try_into().ok())
            .ok_or(bad)?;
        if head[0] != RECORD_VERSION {
            return Err(bad);
        }
        let attrs = KeyAttributes {
            key_type: KeyType(u16::from_le_bytes([head[1], head[2]])),
            bits: u16::from_le_bytes([head[3], head[4]]),
            usage: KeyUsage(u32::from_le_bytes([head[5], head[6], head[7], head[8]])),
            algorithm: Algorithm(u32::from_le_bytes([head[9], head[10], head[11], head[12]])),
            lifetime: Lifetime::PERSISTENT,
            id,
        };
        let len = usize::from(head[13]);
        let material = record.get(RECORD_HEAD..RECORD_HEAD + len).ok_or(bad)?;
        if record.len() != RECORD_HEAD + len || len != attrs.material_len() {
            return Err(bad);
        }
        Key::new(id, attrs, material).map_err(|_| bad)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.material.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_garbage() {
        let attrs = KeyAttributes::new(KeyType::AES)
            .with_bits(128)
            .with_usage(KeyUsage::ENCRYPT)
            .with_algorithm(Algorithm::GCM)
            .persistent(9);
        let key = Key::new(9, attrs, &[7; 16]).unwrap();
        let mut rec = [0u8; MAX_RECORD_LEN];
        let n = key.encode(&mut rec);
        assert_eq!(n, RECORD_HEAD + 16);
        let back = Key::decode(9, &rec[..n]).unwrap();
        assert_eq!(back.attrs, attrs);
        assert_eq!(back.material(), &[7; 16]);
        assert!(Key::decode(9, &rec[..n - 1]).is_err());
        assert!(Key::new(9, attrs, &[1; 15]).is_err());
    }
}
