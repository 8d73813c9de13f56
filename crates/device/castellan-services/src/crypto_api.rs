//! The crypto service's calls on [`SecureServices`] (the `psa_*` key and cryptography calls),
//! with the built-in attestation key ([`KEY_ID_IAK`]) handled here: its public key can be read,
//! nothing else can be done with it through this API.

use castellan_hal::{Flash, MonotonicCounter, RandomSource};

use crate::crypto::ecc;
use crate::crypto::types::{
    Algorithm, KEY_ID_DEVICE_IDENTITY, KEY_ID_IAK, KeyAttributes, KeyId, KeyType, KeyUsage,
    Lifetime,
};
use crate::crypto::{P256_PUBLIC_KEY_LEN, copy_out, hash_sha256};
use crate::{SecureServices, ServiceError};

/// Why the built-in attestation key refuses everything but reading its public key.
const IAK_RESERVED: ServiceError =
    ServiceError::NotPermitted("the attestation key is built in: it signs attestation tokens only");

impl<F: Flash, C: MonotonicCounter, R: RandomSource> SecureServices<F, C, R> {
    /// `psa_generate_key`: a new key with `attrs`, generated inside the service. Persistent
    /// keys take `attrs.id` (1..=0x3fffffff); volatile keys get an identifier from the service.
    pub fn generate_key(&mut self, attrs: &KeyAttributes) -> Result<KeyId, ServiceError> {
        self.usable()?;
        reserved_id(attrs)?;
        self.keys.generate(&mut self.its, &mut self.platform, attrs)
    }

    /// `psa_import_key` (P-256 private scalar 32 bytes, public key 65 bytes SEC1 uncompressed,
    /// AES 16/32 bytes, derive secret 1..=64 bytes).
    pub fn import_key(
        &mut self,
        attrs: &KeyAttributes,
        data: &[u8],
    ) -> Result<KeyId, ServiceError> {
        self.usable()?;
        reserved_id(attrs)?;
        self.keys
            .import(&mut self.its, &mut self.platform, attrs, data)
    }

    /// `psa_get_key_attributes`.
    pub fn get_key_attributes(&mut self, id: KeyId) -> Result<KeyAttributes, ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Ok(KeyAttributes::new(KeyType::ECC_KEY_PAIR_SECP_R1)
                .with_bits(256)
                .with_usage(KeyUsage::SIGN_HASH.union(KeyUsage::VERIFY_HASH))
                .with_algorithm(Algorithm::ECDSA_SHA_256)
                .persistent(KEY_ID_IAK));
        }
        self.keys.attributes(&mut self.its, &mut self.platform, id)
    }

    /// `psa_export_key`: the key material, only if the key's policy has `EXPORT` (public keys
    /// always). Everything else is [`ServiceError::NotPermitted`].
    pub fn export_key(&mut self, id: KeyId, out: &mut [u8]) -> Result<usize, ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys.export(&mut self.its, &mut self.platform, id, out)
    }

    /// `psa_export_public_key`: the SEC1 uncompressed public key (65 bytes) of an ECC key.
    pub fn export_public_key(&mut self, id: KeyId, out: &mut [u8]) -> Result<usize, ServiceError> {
        if id == KEY_ID_IAK {
            return copy_out(&self.attest.public_key(), out);
        }
        self.usable()?;
        self.keys
            .export_public(&mut self.its, &mut self.platform, id, out)
    }

    /// `psa_sign_hash`: ECDSA P-256 over a 32-byte SHA-256 `hash`; writes `r‖s` (64 bytes).
    pub fn sign_hash(
        &mut self,
        id: KeyId,
        alg: Algorithm,
        hash: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys
            .sign_hash(&mut self.its, &mut self.platform, id, alg, hash, out)
    }

    /// `psa_verify_hash`: [`ServiceError::InvalidSignature`] when `signature` does not verify.
    pub fn verify_hash(
        &mut self,
        id: KeyId,
        alg: Algorithm,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            if !alg.is_ecdsa_sha256() {
                return Err(ServiceError::NotPermitted(
                    "the algorithm is not the key's permitted algorithm",
                ));
            }
            return ecc::verify(&self.attest.public_key(), hash, signature);
        }
        self.keys
            .verify_hash(&mut self.its, &mut self.platform, id, alg, hash, signature)
    }

    /// `psa_aead_encrypt` with AES-GCM (12-byte nonce): writes `ciphertext‖tag`.
    pub fn aead_encrypt(
        &mut self,
        id: KeyId,
        alg: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys.aead_encrypt(
            &mut self.its,
            &mut self.platform,
            id,
            alg,
            nonce,
            aad,
            plaintext,
            out,
        )
    }

    /// `psa_aead_decrypt` with AES-GCM: `input` is `ciphertext‖tag`; a wrong tag is
    /// [`ServiceError::InvalidSignature`].
    pub fn aead_decrypt(
        &mut self,
        id: KeyId,
        alg: Algorithm,
        nonce: &[u8],
        aad: &[u8],
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys.aead_decrypt(
            &mut self.its,
            &mut self.platform,
            id,
            alg,
            nonce,
            aad,
            input,
            out,
        )
    }

    /// HKDF-SHA-256 key derivation from derive key `base` (with `salt` and `info`) into a new
    /// key of `attrs` (AES or derive): the one-shot form of `psa_key_derivation_setup`,
    /// `_input_bytes`, `_input_key` and `_output_key`.
    pub fn derive_key(
        &mut self,
        base: KeyId,
        alg: Algorithm,
        salt: &[u8],
        info: &[u8],
        attrs: &KeyAttributes,
    ) -> Result<KeyId, ServiceError> {
        self.usable()?;
        reserved_id(attrs)?;
        if base == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys.derive_key(
            &mut self.its,
            &mut self.platform,
            base,
            alg,
            salt,
            info,
            attrs,
        )
    }

    /// `psa_destroy_key`: wipes a volatile key, removes a persistent one.
    pub fn destroy_key(&mut self, id: KeyId) -> Result<(), ServiceError> {
        self.usable()?;
        if id == KEY_ID_IAK {
            return Err(IAK_RESERVED);
        }
        self.keys.destroy(&mut self.its, &mut self.platform, id)
    }

    /// `psa_generate_random`.
    pub fn generate_random(&mut self, out: &mut [u8]) -> Result<(), ServiceError> {
        self.platform.rng.fill(out)?;
        Ok(())
    }

    /// `psa_hash_compute` (SHA-256).
    pub fn hash_compute(
        &mut self,
        alg: Algorithm,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, ServiceError> {
        hash_sha256(alg, input, out)
    }

    /// Factory provisioning: generates the device identity key on the device if it does not
    /// exist yet (persistent P-256, [`KEY_ID_DEVICE_IDENTITY`], sign-hash and verify-hash,
    /// ECDSA SHA-256, never exportable) and returns its public key (SEC1 uncompressed) for the
    /// CSR. The private key never leaves the service; the CSR is signed with
    /// [`SecureServices::sign_hash`].
    pub fn provision_identity_key(&mut self) -> Result<[u8; P256_PUBLIC_KEY_LEN], ServiceError> {
        self.usable()?;
        let attrs = KeyAttributes::new(KeyType::ECC_KEY_PAIR_SECP_R1)
            .with_bits(256)
            .with_usage(KeyUsage::SIGN_HASH.union(KeyUsage::VERIFY_HASH))
            .with_algorithm(Algorithm::ECDSA_SHA_256)
            .persistent(KEY_ID_DEVICE_IDENTITY);
        match self
            .keys
            .generate(&mut self.its, &mut self.platform, &attrs)
        {
            Ok(_) | Err(ServiceError::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        let existing = self.get_key_attributes(KEY_ID_DEVICE_IDENTITY)?;
        if existing.lifetime != Lifetime::PERSISTENT || existing.usage.contains(KeyUsage::EXPORT) {
            return Err(ServiceError::BadState(
                "identity key slot holds another key",
            ));
        }
        let mut public = [0u8; P256_PUBLIC_KEY_LEN];
        self.export_public_key(KEY_ID_DEVICE_IDENTITY, &mut public)?;
        Ok(public)
    }
}

/// Refuses new keys under the identity key's identifier: only
/// [`SecureServices::provision_identity_key`] creates it, always by generation on the device (an
/// imported "identity" would be a key someone outside knows).
fn reserved_id(attrs: &KeyAttributes) -> Result<(), ServiceError> {
    if attrs.lifetime == Lifetime::PERSISTENT && attrs.id == KEY_ID_DEVICE_IDENTITY {
        return Err(ServiceError::NotPermitted(
            "the identity key is generated by provision_identity_key only",
        ));
    }
    Ok(())
}
