//! PSA Crypto key identifiers, types, algorithms, usage flags, lifetimes and attributes, with
//! the numeric values of the PSA Certified Crypto API so TF-M users recognise them.

use crate::ServiceError;

/// A key identifier (`psa_key_id_t`).
pub type KeyId = u32;

/// Smallest identifier a caller may give a persistent key (`PSA_KEY_ID_USER_MIN`).
pub const KEY_ID_USER_MIN: KeyId = 0x0000_0001;
/// Largest identifier a caller may give a persistent key (`PSA_KEY_ID_USER_MAX`).
pub const KEY_ID_USER_MAX: KeyId = 0x3fff_ffff;
/// The built-in initial attestation key (vendor range): its public key can be exported, it
/// cannot be used, exported or destroyed through the crypto API (only the attestation service
/// signs with it, so a caller cannot forge tokens).
pub const KEY_ID_IAK: KeyId = 0x7fff_0001;
/// The device identity key (vendor range): persistent P-256, generated on the device at
/// provisioning ([`crate::SecureServices::provision_identity_key`]), never exportable.
pub const KEY_ID_DEVICE_IDENTITY: KeyId = 0x7fff_0002;
/// First identifier the service hands out for volatile keys.
pub const KEY_ID_VOLATILE_MIN: KeyId = 0x7fff_f000;

/// A key type (`psa_key_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyType(pub u16);

impl KeyType {
    /// `PSA_KEY_TYPE_DERIVE`: a secret for key derivation.
    pub const DERIVE: KeyType = KeyType(0x1200);
    /// `PSA_KEY_TYPE_AES`.
    pub const AES: KeyType = KeyType(0x2400);
    /// `PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1)`: P-256 when `bits` is 256.
    pub const ECC_KEY_PAIR_SECP_R1: KeyType = KeyType(0x7112);
    /// `PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1)`: P-256 when `bits` is 256.
    pub const ECC_PUBLIC_KEY_SECP_R1: KeyType = KeyType(0x4112);

    /// True for asymmetric types (a public key can be exported).
    pub const fn is_asymmetric(self) -> bool {
        matches!(self.0, 0x7112 | 0x4112)
    }
}

/// An algorithm (`psa_algorithm_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Algorithm(pub u32);

impl Algorithm {
    /// `PSA_ALG_NONE`.
    pub const NONE: Algorithm = Algorithm(0);
    /// `PSA_ALG_SHA_256`.
    pub const SHA_256: Algorithm = Algorithm(0x0200_0009);
    /// `PSA_ALG_ECDSA(PSA_ALG_SHA_256)`: randomized ECDSA (here RFC 6979 with added entropy).
    pub const ECDSA_SHA_256: Algorithm = Algorithm(0x0600_0609);
    /// `PSA_ALG_DETERMINISTIC_ECDSA(PSA_ALG_SHA_256)` (RFC 6979).
    pub const DETERMINISTIC_ECDSA_SHA_256: Algorithm = Algorithm(0x0600_0709);
    /// `PSA_ALG_GCM` (16-byte tag, 12-byte nonce here).
    pub const GCM: Algorithm = Algorithm(0x0550_0200);
    /// `PSA_ALG_HKDF(PSA_ALG_SHA_256)`.
    pub const HKDF_SHA_256: Algorithm = Algorithm(0x0800_0109);

    /// True for the two ECDSA-with-SHA-256 variants (verification-equivalent in PSA).
    pub const fn is_ecdsa_sha256(self) -> bool {
        matches!(self.0, 0x0600_0609 | 0x0600_0709)
    }
}

/// Usage flags (`psa_key_usage_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyUsage(pub u32);

impl KeyUsage {
    /// No usage.
    pub const NONE: KeyUsage = KeyUsage(0);
    /// `PSA_KEY_USAGE_EXPORT`: the key material may leave the service.
    pub const EXPORT: KeyUsage = KeyUsage(0x0000_0001);
    /// `PSA_KEY_USAGE_ENCRYPT`.
    pub const ENCRYPT: KeyUsage = KeyUsage(0x0000_0100);
    /// `PSA_KEY_USAGE_DECRYPT`.
    pub const DECRYPT: KeyUsage = KeyUsage(0x0000_0200);
    /// `PSA_KEY_USAGE_SIGN_HASH`.
    pub const SIGN_HASH: KeyUsage = KeyUsage(0x0000_1000);
    /// `PSA_KEY_USAGE_VERIFY_HASH`.
    pub const VERIFY_HASH: KeyUsage = KeyUsage(0x0000_2000);
    /// `PSA_KEY_USAGE_DERIVE`.
    pub const DERIVE: KeyUsage = KeyUsage(0x0000_4000);

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: KeyUsage) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: KeyUsage) -> KeyUsage {
        KeyUsage(self.0 | other.0)
    }
}

/// Where a key lives (`psa_key_lifetime_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime(pub u32);

impl Lifetime {
    /// `PSA_KEY_LIFETIME_VOLATILE`: in RAM until destroyed or reset.
    pub const VOLATILE: Lifetime = Lifetime(0);
    /// `PSA_KEY_LIFETIME_PERSISTENT`: in trusted storage, survives resets.
    pub const PERSISTENT: Lifetime = Lifetime(1);
}

/// Key attributes (`psa_key_attributes_t`): what the key is and what it may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyAttributes {
    /// The key type.
    pub key_type: KeyType,
    /// Size in bits (0 on input: taken from the type or the imported data).
    pub bits: u16,
    /// What the key may be used for.
    pub usage: KeyUsage,
    /// The one algorithm the key may be used with.
    pub algorithm: Algorithm,
    /// Volatile or persistent.
    pub lifetime: Lifetime,
    /// For persistent keys: the identifier chosen by the caller. Ignored for volatile keys.
    pub id: KeyId,
}

impl KeyAttributes {
    /// Volatile attributes of `key_type`, no usage, no algorithm.
    pub const fn new(key_type: KeyType) -> Self {
        KeyAttributes {
            key_type,
            bits: 0,
            usage: KeyUsage::NONE,
            algorithm: Algorithm::NONE,
            lifetime: Lifetime::VOLATILE,
            id: 0,
        }
    }

    /// With this size in bits.
    pub const fn with_bits(self, bits: u16) -> Self {
        KeyAttributes { bits, ..self }
    }

    /// With these usage flags.
    pub const fn with_usage(self, usage: KeyUsage) -> Self {
        KeyAttributes { usage, ..self }
    }

    /// With this permitted algorithm.
    pub const fn with_algorithm(self, algorithm: Algorithm) -> Self {
        KeyAttributes { algorithm, ..self }
    }

    /// Persistent, under identifier `id`.
    pub const fn persistent(self, id: KeyId) -> Self {
        KeyAttributes {
            lifetime: Lifetime::PERSISTENT,
            id,
            ..self
        }
    }

    /// Checks the combination and fills in `bits`: ECC P-256 (256), AES (128 or 256, or from
    /// `material_len`), derive secrets (8..=512 bits, whole bytes). `material_len` is the
    /// length of imported data (`None` when generating).
    pub(crate) fn resolved(self, material_len: Option<usize>) -> Result<Self, ServiceError> {
        let bits = match self.key_type {
            KeyType::ECC_KEY_PAIR_SECP_R1 | KeyType::ECC_PUBLIC_KEY_SECP_R1 => {
                if self.bits != 0 && self.bits != 256 {
                    return Err(ServiceError::NotSupported(
                        "ECC SECP_R1 keys other than P-256",
                    ));
                }
                if !matches!(self.algorithm, Algorithm::NONE) && !self.algorithm.is_ecdsa_sha256() {
                    return Err(ServiceError::NotSupported(
                        "ECC keys are for ECDSA with SHA-256 only",
                    ));
                }
                256
            }
            KeyType::AES => {
                let bits = match (self.bits, material_len) {
                    (0, Some(n)) => (n * 8) as u16,
                    (0, None) => {
                        return Err(ServiceError::InvalidArgument(
                            "AES key size (bits) is required",
                        ));
                    }
                    (b, _) => b,
                };
                if bits != 128 && bits != 256 {
                    return Err(ServiceError::NotSupported(
                        "AES keys of 128 or 256 bits only",
                    ));
                }
                if !matches!(self.algorithm, Algorithm::NONE | Algorithm::GCM) {
                    return Err(ServiceError::NotSupported("AES keys are for GCM only"));
                }
                bits
            }
            KeyType::DERIVE => {
                let bits = match (self.bits, material_len) {
                    (0, Some(n)) => (n * 8) as u16,
                    (0, None) => 256,
                    (b, _) => b,
                };
                if bits == 0 || bits % 8 != 0 || bits > 512 {
                    return Err(ServiceError::NotSupported(
                        "derive secrets of 8 to 512 bits (whole bytes) only",
                    ));
                }
                if !matches!(self.algorithm, Algorithm::NONE | Algorithm::HKDF_SHA_256) {
                    return Err(ServiceError::NotSupported(
                        "derive keys are for HKDF-SHA-256 only",
                    ));
                }
                bits
            }
            _ => return Err(ServiceError::NotSupported("key type")),
        };
        if let Some(n) = material_len {
            let expected = match self.key_type {
                KeyType::ECC_KEY_PAIR_SECP_R1 => 32,
                KeyType::ECC_PUBLIC_KEY_SECP_R1 => 65,
                _ => usize::from(bits / 8),
            };
            if n != expected {
                return Err(ServiceError::InvalidArgument(
                    "key data length does not match the key type and size",
                ));
            }
        }
        match self.lifetime {
            Lifetime::VOLATILE => {}
            Lifetime::PERSISTENT => {
                let user = (KEY_ID_USER_MIN..=KEY_ID_USER_MAX).contains(&self.id);
                if !user && self.id != KEY_ID_DEVICE_IDENTITY {
                    return Err(ServiceError::InvalidArgument(
                        "persistent key ids are 0x00000001..=0x3fffffff",
                    ));
                }
            }
            _ => {
                return Err(ServiceError::NotSupported(
                    "key lifetime (volatile or persistent)",
                ));
            }
        }
        Ok(KeyAttributes { bits, ..self })
    }

    /// Bytes of key material this key holds.
    pub(crate) fn material_len(&self) -> usize {
        match self.key_type {
            KeyType::ECC_KEY_PAIR_SECP_R1 => 32,
            KeyType::ECC_PUBLIC_KEY_SECP_R1 => 65,
            _ => usize::from(self.bits / 8),
        }
    }
}
