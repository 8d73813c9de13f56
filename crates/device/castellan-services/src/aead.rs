//! AES-GCM (RustCrypto `aes-gcm`) with detached tags over caller buffers: the one AEAD of the
//! crate, used by trusted storage (AES-256, records and the wrapped storage root key) and by the
//! crypto service's AES keys (128 or 256 bits).

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};

use crate::ServiceError;

/// AES-GCM nonce length (96 bits).
pub const GCM_NONCE_LEN: usize = 12;
/// AES-GCM tag length (128 bits).
pub const GCM_TAG_LEN: usize = 16;

/// An AES-256-GCM key with its expanded schedule, kept for repeated use (trusted storage).
/// The schedule is wiped on drop (`aes-gcm`'s `zeroize` feature).
pub(crate) struct Gcm256(Aes256Gcm);

impl Gcm256 {
    /// Expands `key`.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Gcm256(Aes256Gcm::new(key.into()))
    }

    /// Encrypts `buf` in place; returns the tag.
    pub(crate) fn encrypt(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; GCM_TAG_LEN], ServiceError> {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            .map_err(|_| ServiceError::InvalidArgument("AES-GCM message or AAD too long"))?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place if `tag` authenticates it; false (and `buf` unchanged) if not.
    pub(crate) fn decrypt(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; GCM_TAG_LEN],
    ) -> bool {
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
            .is_ok()
    }
}

/// Encrypts `buf` in place under `key` (16 or 32 bytes); returns the tag.
pub(crate) fn gcm_encrypt(
    key: &[u8],
    nonce: &[u8; GCM_NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; GCM_TAG_LEN], ServiceError> {
    let nonce = Nonce::from(*nonce);
    let tag = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| ServiceError::Crypto("AES-128 key"))?
            .encrypt_inout_detached(&nonce, aad, buf.into()),
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| ServiceError::Crypto("AES-256 key"))?
            .encrypt_inout_detached(&nonce, aad, buf.into()),
        _ => {
            return Err(ServiceError::InvalidArgument(
                "AES key must be 128 or 256 bits",
            ));
        }
    }
    .map_err(|_| ServiceError::InvalidArgument("AES-GCM message or AAD too long"))?;
    Ok(tag.into())
}

/// Decrypts `buf` in place under `key` if `tag` authenticates it; `Ok(false)` (and `buf`
/// unchanged) when it does not.
pub(crate) fn gcm_decrypt(
    key: &[u8],
    nonce: &[u8; GCM_NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; GCM_TAG_LEN],
) -> Result<bool, ServiceError> {
    let nonce = Nonce::from(*nonce);
    let tag = Tag::from(*tag);
    let ok = match key.len() {
        16 => Aes128Gcm::new_from_slice(key)
            .map_err(|_| ServiceError::Crypto("AES-128 key"))?
            .decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
        32 => Aes256Gcm::new_from_slice(key)
            .map_err(|_| ServiceError::Crypto("AES-256 key"))?
            .decrypt_inout_detached(&nonce, aad, buf.into(), &tag),
        _ => {
            return Err(ServiceError::InvalidArgument(
                "AES key must be 128 or 256 bits",
            ));
        }
    };
    Ok(ok.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        for key in [&[3u8; 16][..], &[4u8; 32][..]] {
            let nonce = [9u8; 12];
            let mut buf = *b"attack at dawn";
            let tag = gcm_encrypt(key, &nonce, b"aad", &mut buf).unwrap();
            assert_ne!(&buf, b"attack at dawn");
            let mut flipped = buf;
            flipped[0] ^= 1;
            assert!(!gcm_decrypt(key, &nonce, b"aad", &mut flipped, &tag).unwrap());
            let mut wrong_aad = buf;
            assert!(!gcm_decrypt(key, &nonce, b"aaD", &mut wrong_aad, &tag).unwrap());
            assert!(gcm_decrypt(key, &nonce, b"aad", &mut buf, &tag).unwrap());
            assert_eq!(&buf, b"attack at dawn");
        }
        assert!(gcm_encrypt(&[0; 24], &[0; 12], b"", &mut []).is_err());
    }
}
