//! Asymmetric key-pair seed and identifier derivation of the Open Profile for
//! DICE (`ASYM_KDF` and the `UDS_ID` / `CDI_ID` derivation), with Ed25519 as the
//! key algorithm, matching open-dice's `DiceDeriveCdiPrivateKeySeed`,
//! `DiceDeriveCdiCertificateId` and its Ed25519 `keypair_from_seed`.
//!
//! ```text
//! seed   = HKDF(32, ikm = CDI_Attest or UDS, ASYM_SALT, "Key Pair")   // Ed25519 private key
//! CDI_ID = HKDF(20, ikm = public key,        ID_SALT,   "ID"), top bit cleared
//! ```

use core::fmt;

use ed25519_dalek::SigningKey;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::derive::{CDI_SIZE, kdf};
use crate::error::DiceError;

/// Size in bytes of a derived private-key seed.
pub const PRIVATE_KEY_SEED_SIZE: usize = 32;
/// Size in bytes of a UDS or CDI identifier.
pub const ID_SIZE: usize = 20;
/// Size in bytes of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_SIZE: usize = 32;

/// `ASYM_SALT` of the Open Profile for DICE (section "Salt").
const ASYM_SALT: [u8; 64] = [
    0x63, 0xB6, 0xA0, 0x4D, 0x2C, 0x07, 0x7F, 0xC1, 0x0F, 0x63, 0x9F, 0x21, 0xDA, 0x79, 0x38, 0x44,
    0x35, 0x6C, 0xC2, 0xB0, 0xB4, 0x41, 0xB3, 0xA7, 0x71, 0x24, 0x03, 0x5C, 0x03, 0xF8, 0xE1, 0xBE,
    0x60, 0x35, 0xD3, 0x1F, 0x28, 0x28, 0x21, 0xA7, 0x45, 0x0A, 0x02, 0x22, 0x2A, 0xB1, 0xB3, 0xCF,
    0xF1, 0x67, 0x9B, 0x05, 0xAB, 0x1C, 0xA5, 0xD1, 0xAF, 0xFB, 0x78, 0x9C, 0xCD, 0x2B, 0x0B, 0x3B,
];

/// `ID_SALT` of the Open Profile for DICE (section "Salt").
const ID_SALT: [u8; 64] = [
    0xDB, 0xDB, 0xAE, 0xBC, 0x80, 0x20, 0xDA, 0x9F, 0xF0, 0xDD, 0x5A, 0x24, 0xC8, 0x3A, 0xA5, 0xA5,
    0x42, 0x86, 0xDF, 0xC2, 0x63, 0x03, 0x1E, 0x32, 0x9B, 0x4D, 0xA1, 0x48, 0x43, 0x06, 0x59, 0xFE,
    0x62, 0xCD, 0xB5, 0xB7, 0xE1, 0xE0, 0x0F, 0xC6, 0x80, 0x30, 0x67, 0x11, 0xEB, 0x44, 0x4A, 0xF7,
    0x72, 0x09, 0x35, 0x94, 0x96, 0xFC, 0xFF, 0x1D, 0xB9, 0x52, 0x0B, 0xA5, 0x1C, 0x7B, 0x29, 0xEA,
];

const INFO_KEY_PAIR: &[u8] = b"Key Pair";
const INFO_ID: &[u8] = b"ID";

/// A 32-byte private-key seed derived from a CDI_Attest or a UDS. Secret: wiped
/// on drop, not `Clone`, and `Debug` prints no byte of it.
pub struct PrivateKeySeed([u8; PRIVATE_KEY_SEED_SIZE]);

impl PrivateKeySeed {
    /// The raw seed (for an algorithm whose key derivation this crate does not do,
    /// e.g. ECDSA via an RFC 6979 HMAC_DRBG as the profile recommends).
    pub fn as_bytes(&self) -> &[u8; PRIVATE_KEY_SEED_SIZE] {
        &self.0
    }

    /// The Ed25519 signing key: the seed is used directly as the RFC 8032 private
    /// key, as the profile allows and open-dice does.
    pub fn ed25519_signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.0)
    }

    /// The Ed25519 public key of [`PrivateKeySeed::ed25519_signing_key`].
    pub fn ed25519_public_key(&self) -> [u8; ED25519_PUBLIC_KEY_SIZE] {
        self.ed25519_signing_key().verifying_key().to_bytes()
    }
}

impl Drop for PrivateKeySeed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for PrivateKeySeed {}

impl fmt::Debug for PrivateKeySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeySeed(<redacted>)")
    }
}

/// The profile's `ASYM_KDF` seed: `KDF(32, input, ASYM_SALT, "Key Pair")`.
///
/// `input` is a CDI_Attest (giving `CDI_Private`, the key that certifies the next
/// layer or an attestation key) or the UDS (giving `UDS_Private`, the key the
/// manufacturer certifies). Both use the same derivation, which is what lets
/// certificates of successive layers chain.
pub fn derive_attestation_keypair_seed(
    input: &[u8; CDI_SIZE],
) -> Result<PrivateKeySeed, DiceError> {
    let mut seed = PrivateKeySeed([0; PRIVATE_KEY_SEED_SIZE]);
    kdf(&mut seed.0, input, &ASYM_SALT, INFO_KEY_PAIR)?;
    Ok(seed)
}

/// The profile's identifier of a public key: `KDF(20, public_key, ID_SALT, "ID")`
/// with the big-endian top bit cleared so it is a positive ASN.1 INTEGER. Used as
/// certificate serial number, subject/issuer `SERIALNUMBER` (lower-case hex) and
/// key identifiers. `public_key` is the algorithm's raw encoding (32 bytes for
/// Ed25519).
pub fn derive_cdi_id(public_key: &[u8]) -> Result<[u8; ID_SIZE], DiceError> {
    let mut id = [0u8; ID_SIZE];
    kdf(&mut id, public_key, &ID_SALT, INFO_ID)?;
    id[0] &= 0x7f;
    Ok(id)
}

/// Ed25519 public key (`CDI_Public` or `UDS_Public`) derived from a CDI_Attest or
/// a UDS.
pub fn ed25519_public_key(
    cdi_attest_or_uds: &[u8; CDI_SIZE],
) -> Result<[u8; ED25519_PUBLIC_KEY_SIZE], DiceError> {
    Ok(derive_attestation_keypair_seed(cdi_attest_or_uds)?.ed25519_public_key())
}

/// `CDI_ID` (or `UDS_ID`) of the Ed25519 key derived from a CDI_Attest (or UDS).
pub fn ed25519_cdi_id(cdi_attest_or_uds: &[u8; CDI_SIZE]) -> Result<[u8; ID_SIZE], DiceError> {
    derive_cdi_id(&ed25519_public_key(cdi_attest_or_uds)?)
}
