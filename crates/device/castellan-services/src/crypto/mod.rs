//! Crypto service after the PSA Certified Crypto API: keys by identifier with a policy (type,
//! size, usage flags, one permitted algorithm, lifetime), generated or imported, used inside the
//! service and never handed out unless their policy says `EXPORT`.
//!
//! ```text
//!  caller ── KeyId ──▶ KeyStore ── volatile: RAM slots (wiped on destroy / drop)
//!                               └─ persistent: trusted storage, namespace "crypto" (encrypted)
//!  ECC P-256: sign-hash / verify-hash (ECDSA, SHA-256) · export-public (SEC1 uncompressed)
//!  AES-128/256: GCM encrypt / decrypt · derive secrets: HKDF-SHA-256 into a new key
//! ```
//!
//! Every operation checks, in this order: the key exists, the usage flag, the algorithm equals
//! the key's permitted algorithm (ECDSA and deterministic ECDSA are verification-equivalent),
//! then the arguments. No call returns key material except `export_key` with the `EXPORT` flag;
//! persistent keys sit in a storage namespace that `psa_its_*` callers cannot reach.

pub(crate) mod ecc;
mod key;
pub mod types;

use castellan_hal::{Flash, MonotonicCounter, RandomSource};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::aead::{GCM_NONCE_LEN, GCM_TAG_LEN, gcm_decrypt, gcm_encrypt};
use crate::its::{Its, ItsFlags, Namespace};
use crate::{Platform, ServiceError, kdf};
use key::{Key, MAX_KEY_LEN, MAX_RECORD_LEN};
use types::{Algorithm, KEY_ID_VOLATILE_MIN, KeyAttributes, KeyId, KeyType, KeyUsage, Lifetime};

/// Volatile key slots.
pub const MAX_VOLATILE_KEYS: usize = 8;
/// Length of an ECDSA P-256 signature (`r‖s`).
pub const ECDSA_P256_SIGNATURE_LEN: usize = 64;
/// Length of an exported P-256 public key (SEC1 uncompressed, `04‖x‖y`).
pub const P256_PUBLIC_KEY_LEN: usize = 65;
/// Length of a SHA-256 hash.
pub const SHA256_LEN: usize = 32;

/// Trusted storage as the crypto service sees it: mounted, or the reason it is not.
pub(crate) type Storage = Result<Its, ServiceError>;

/// The key store: volatile slots in RAM, persistent keys in trusted storage.
pub(crate) struct KeyStore {
    slots: [Option<Key>; MAX_VOLATILE_KEYS],
    next_volatile: KeyId,
}

impl KeyStore {
    pub(crate) fn new() -> Self {
        KeyStore {
            slots: core::array::from_fn(|_| None),
            next_volatile: KEY_ID_VOLATILE_MIN,
        }
    }

    /// Wipes every volatile key.
    pub(crate) fn clear(&mut self) {
        for slot in self.slots.iter_mut() {
            *slot = None;
        }
    }

    /// `psa_generate_key`.
    pub(crate) fn generate<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        attrs: &KeyAttributes,
    ) -> Result<KeyId, ServiceError> {
        let attrs = attrs.resolved(None)?;
        let mut material = Zeroizing::new([0u8; MAX_KEY_LEN]);
        let len = attrs.material_len();
        let m = material
            .get_mut(..len)
            .ok_or(ServiceError::Crypto("length"))?;
        match attrs.key_type {
            KeyType::ECC_KEY_PAIR_SECP_R1 => random_p256_scalar(p, m)?,
            KeyType::ECC_PUBLIC_KEY_SECP_R1 => {
                return Err(ServiceError::InvalidArgument(
                    "a public key cannot be generated; generate a key pair",
                ));
            }
            _ => p.rng.fill(m)?,
        }
        self.store(storage, p, attrs, m)
    }

    /// `psa_import_key`: P-256 private keys as the 32-byte big-endian scalar, public keys as
    /// SEC1 uncompressed points (65 bytes), AES and derive keys as raw bytes.
    pub(crate) fn import<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        attrs: &KeyAttributes,
        data: &[u8],
    ) -> Result<KeyId, ServiceError> {
        let attrs = attrs.resolved(Some(data.len()))?;
        match attrs.key_type {
            KeyType::ECC_KEY_PAIR_SECP_R1 if !ecc::private_key_ok(data) => {
                return Err(ServiceError::InvalidArgument(
                    "not a valid P-256 private key",
                ));
            }
            KeyType::ECC_PUBLIC_KEY_SECP_R1 if !ecc::public_key_ok(data) => {
                return Err(ServiceError::InvalidArgument("not a P-256 point"));
            }
            _ => {}
        }
        self.store(storage, p, attrs, data)
    }

    /// `psa_get_key_attributes`.
    pub(crate) fn attributes<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
    ) -> Result<KeyAttributes, ServiceError> {
        Ok(self.load(storage, p, id)?.attrs)
    }

    /// `psa_export_key`: needs `EXPORT`, except for public keys.
    pub(crate) fn export<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let key = self.load(storage, p, id)?;
        let public = key.attrs.key_type == KeyType::ECC_PUBLIC_KEY_SECP_R1;
        if !public && !key.attrs.usage.contains(KeyUsage::EXPORT) {
            return Err(ServiceError::NotPermitted(
                "the key's policy does not allow export",
            ));
        }
        copy_out(key.material(), out)
    }

    /// `psa_export_public_key`: the SEC1 uncompressed public key of an ECC key (any usage).
    pub(crate) fn export_public<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let key = self.load(storage, p, id)?;
        let public = public_key_of(&key)?;
        copy_out(&public, out)
    }

    /// `psa_sign_hash`: ECDSA P-256 over a SHA-256 hash; writes `r‖s`.
    pub(crate) fn sign_hash<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        alg: Algorithm,
        hash: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let key = self.load(storage, p, id)?;
        check_policy(&key, KeyUsage::SIGN_HASH, alg)?;
        if key.attrs.key_type != KeyType::ECC_KEY_PAIR_SECP_R1 {
            return Err(ServiceError::InvalidArgument(
                "sign-hash needs an ECC key pair",
            ));
        }
        let signature = sign_p256(key.material(), alg, hash, p)?;
        copy_out(&signature, out)
    }

    /// `psa_verify_hash`: [`ServiceError::InvalidSignature`] when `signature` does not verify.
    #[allow(clippy::too_many_arguments)] // the PSA call's own parameters
    pub(crate) fn verify_hash<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        alg: Algorithm,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), ServiceError> {
        let key = self.load(storage, p, id)?;
        check_policy(&key, KeyUsage::VERIFY_HASH, alg)?;
        let public = public_key_of(&key)?;
        ecc::verify(&public, hash, signature)
    }

    /// `psa_aead_encrypt` (AES-GCM): writes `ciphertext‖tag` into `out`.
    #[allow(clippy::too_many_arguments)] // the PSA call's own parameters
    pub(crate) fn aead_encrypt<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        alg: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let key = self.load(storage, p, id)?;
        check_policy(&key, KeyUsage::ENCRYPT, alg)?;
        let nonce = aead_nonce(&key, nonce)?;
        let needed = plaintext
            .len()
            .checked_add(GCM_TAG_LEN)
            .ok_or(ServiceError::InvalidArgument("plaintext too long"))?;
        let dst = out
            .get_mut(..needed)
            .ok_or(ServiceError::BufferTooSmall { needed })?;
        let (body, tag_out) = dst.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = gcm_encrypt(key.material(), &nonce, aad, body)?;
        tag_out.copy_from_slice(&tag);
        Ok(needed)
    }

    /// `psa_aead_decrypt` (AES-GCM): `input` is `ciphertext‖tag`; a wrong tag is
    /// [`ServiceError::InvalidSignature`] and leaves `out` untouched.
    #[allow(clippy::too_many_arguments)] // the PSA call's own parameters
    pub(crate) fn aead_decrypt<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
        alg: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        let key = self.load(storage, p, id)?;
        check_policy(&key, KeyUsage::DECRYPT, alg)?;
        let nonce = aead_nonce(&key, nonce)?;
        let len = input
            .len()
            .checked_sub(GCM_TAG_LEN)
            .ok_or(ServiceError::InvalidArgument(
                "AEAD input is shorter than the tag",
            ))?;
        let (ct, tag) = input.split_at(len);
        let tag: [u8; GCM_TAG_LEN] = tag.try_into().map_err(|_| ServiceError::Crypto("tag"))?;
        let dst = out
            .get_mut(..len)
            .ok_or(ServiceError::BufferTooSmall { needed: len })?;
        dst.copy_from_slice(ct);
        if !gcm_decrypt(key.material(), &nonce, aad, dst, &tag)? {
            dst.fill(0);
            return Err(ServiceError::InvalidSignature);
        }
        Ok(len)
    }

    /// Key derivation with HKDF-SHA-256 from a derive key into a new key of `attrs` (AES or
    /// derive type): the one-shot form of `psa_key_derivation_*` with salt and info inputs and
    /// `psa_key_derivation_output_key`. The base key never leaves the service.
    #[allow(clippy::too_many_arguments)] // the PSA call's own parameters
    pub(crate) fn derive_key<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        base: KeyId,
        alg: Algorithm,
        salt: &[u8],
        info: &[u8],
        attrs: &KeyAttributes,
    ) -> Result<KeyId, ServiceError> {
        let key = self.load(storage, p, base)?;
        check_policy(&key, KeyUsage::DERIVE, alg)?;
        if key.attrs.key_type != KeyType::DERIVE || alg != Algorithm::HKDF_SHA_256 {
            return Err(ServiceError::InvalidArgument(
                "derivation needs a derive key and HKDF-SHA-256",
            ));
        }
        let attrs = attrs.resolved(None)?;
        if !matches!(attrs.key_type, KeyType::AES | KeyType::DERIVE) {
            return Err(ServiceError::NotSupported(
                "derived key type (AES or derive only)",
            ));
        }
        let mut material = Zeroizing::new([0u8; MAX_KEY_LEN]);
        let m = material
            .get_mut(..attrs.material_len())
            .ok_or(ServiceError::Crypto("length"))?;
        kdf::hkdf_sha256(key.material(), salt, info, m)?;
        drop(key);
        self.store(storage, p, attrs, m)
    }

    /// `psa_destroy_key`: wipes a volatile key or removes a persistent one from storage.
    pub(crate) fn destroy<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
    ) -> Result<(), ServiceError> {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|k| k.id == id))
        {
            *slot = None;
            return Ok(());
        }
        let its = storage.as_mut().map_err(|e| *e)?;
        its.remove_in(p, Namespace::Crypto, u64::from(id))
    }

    /// Stores a new key: a free volatile slot, or its record in trusted storage.
    fn store<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &mut self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        attrs: KeyAttributes,
        material: &[u8],
    ) -> Result<KeyId, ServiceError> {
        if attrs.lifetime == Lifetime::PERSISTENT {
            let its = storage.as_mut().map_err(|e| *e)?;
            let uid = u64::from(attrs.id);
            if its.contains(Namespace::Crypto, uid) {
                return Err(ServiceError::AlreadyExists);
            }
            let key = Key::new(attrs.id, attrs, material)?;
            let mut record = Zeroizing::new([0u8; MAX_RECORD_LEN]);
            let n = key.encode(&mut record);
            let rec = record.get(..n).ok_or(ServiceError::Crypto("record"))?;
            its.set_in(p, Namespace::Crypto, uid, rec, ItsFlags::NONE)?;
            return Ok(attrs.id);
        }
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(ServiceError::KeySlotsFull)?;
        let id = self.next_volatile;
        self.next_volatile = if id == 0x7fff_ffff {
            KEY_ID_VOLATILE_MIN
        } else {
            id + 1
        };
        *free = Some(Key::new(id, KeyAttributes { id, ..attrs }, material)?);
        Ok(id)
    }

    /// A copy of key `id` (volatile slot or persistent record).
    fn load<F: Flash, C: MonotonicCounter, R: RandomSource>(
        &self,
        storage: &mut Storage,
        p: &mut Platform<F, C, R>,
        id: KeyId,
    ) -> Result<Key, ServiceError> {
        if let Some(k) = self.slots.iter().flatten().find(|k| k.id == id) {
            return Key::new(k.id, k.attrs, k.material());
        }
        if id >= KEY_ID_VOLATILE_MIN {
            return Err(ServiceError::DoesNotExist);
        }
        let its = storage.as_mut().map_err(|e| *e)?;
        let mut record = Zeroizing::new([0u8; MAX_RECORD_LEN]);
        let n = its.get_in(
            p,
            Namespace::Crypto,
            u64::from(id),
            0,
            record.as_mut_slice(),
        )?;
        Key::decode(id, record.get(..n).unwrap_or_default())
    }
}

/// Checks the usage flag and the permitted algorithm of `key` for an operation with `alg`.
fn check_policy(key: &Key, usage: KeyUsage, alg: Algorithm) -> Result<(), ServiceError> {
    if !key.attrs.usage.contains(usage) {
        return Err(ServiceError::NotPermitted(
            "the key's usage flags do not allow this operation",
        ));
    }
    let permitted = key.attrs.algorithm;
    let verify_equivalent =
        usage == KeyUsage::VERIFY_HASH && permitted.is_ecdsa_sha256() && alg.is_ecdsa_sha256();
    if alg != permitted && !verify_equivalent {
        return Err(ServiceError::NotPermitted(
            "the algorithm is not the key's permitted algorithm",
        ));
    }
    Ok(())
}

/// The SEC1 uncompressed public key of an ECC key pair or public key.
fn public_key_of(key: &Key) -> Result<[u8; P256_PUBLIC_KEY_LEN], ServiceError> {
    let mut out = [0u8; P256_PUBLIC_KEY_LEN];
    match key.attrs.key_type {
        KeyType::ECC_KEY_PAIR_SECP_R1 => out = ecc::public_key(key.material())?,
        KeyType::ECC_PUBLIC_KEY_SECP_R1 => out.copy_from_slice(key.material()),
        _ => {
            return Err(ServiceError::InvalidArgument(
                "only asymmetric keys have a public key",
            ));
        }
    }
    Ok(out)
}

/// ECDSA P-256 over a SHA-256 hash with the private scalar `d`: RFC 6979, with 32 bytes of
/// added entropy for `PSA_ALG_ECDSA` (hedged against fault attacks) and none for the
/// deterministic variant.
pub(crate) fn sign_p256<F, C, R: RandomSource>(
    d: &[u8],
    alg: Algorithm,
    hash: &[u8],
    p: &mut Platform<F, C, R>,
) -> Result<[u8; ECDSA_P256_SIGNATURE_LEN], ServiceError> {
    if hash.len() != SHA256_LEN {
        return Err(ServiceError::InvalidArgument(
            "hash must be 32 bytes (SHA-256)",
        ));
    }
    let mut entropy = Zeroizing::new([0u8; 32]);
    let ad: &[u8] = if alg == Algorithm::ECDSA_SHA_256 {
        p.rng.fill(entropy.as_mut_slice())?;
        entropy.as_slice()
    } else {
        &[]
    };
    ecc::sign(d, hash, ad)
}

/// `psa_hash_compute` for SHA-256.
pub(crate) fn hash_sha256(
    alg: Algorithm,
    input: &[u8],
    out: &mut [u8],
) -> Result<usize, ServiceError> {
    if alg != Algorithm::SHA_256 {
        return Err(ServiceError::NotSupported("hash algorithm (SHA-256 only)"));
    }
    copy_out(&Sha256::digest(input), out)
}

/// A P-256 scalar (1 ≤ d < n) from the random source, into `out` (32 bytes).
fn random_p256_scalar<F, C, R: RandomSource>(
    p: &mut Platform<F, C, R>,
    out: &mut [u8],
) -> Result<(), ServiceError> {
    for _ in 0..16 {
        p.rng.fill(out)?;
        if ecc::private_key_ok(out) {
            return Ok(());
        }
    }
    Err(ServiceError::Hardware(castellan_hal::HalError::RngFailure))
}

fn aead_nonce(key: &Key, nonce: &[u8]) -> Result<[u8; GCM_NONCE_LEN], ServiceError> {
    if key.attrs.key_type != KeyType::AES {
        return Err(ServiceError::InvalidArgument("AEAD needs an AES key"));
    }
    nonce
        .try_into()
        .map_err(|_| ServiceError::InvalidArgument("GCM nonce must be 12 bytes"))
}

/// Copies `src` to the start of `out`; returns its length.
pub(crate) fn copy_out(src: &[u8], out: &mut [u8]) -> Result<usize, ServiceError> {
    out.get_mut(..src.len())
        .ok_or(ServiceError::BufferTooSmall { needed: src.len() })?
        .copy_from_slice(src);
    Ok(src.len())
}
