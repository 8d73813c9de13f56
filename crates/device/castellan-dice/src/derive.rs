//! CDI derivation: CDI_Attest and CDI_Seal of the next layer from the UDS (first
//! layer) or the current layer's CDIs, exactly as the Open Profile for DICE and
//! open-dice's `DiceMainFlow` compute them with SHA-512 and HKDF-SHA512.
//!
//! ```text
//! CDI_Attest' = HKDF(32, ikm = CDI_Attest, salt = H(code || config || authority || mode || hidden), "CDI_Attest")
//! CDI_Seal'   = HKDF(32, ikm = CDI_Seal,   salt = H(authority || mode || hidden),                   "CDI_Seal")
//! ```

use core::fmt;

use hkdf::Hkdf;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::DiceError;
use crate::input::{HASH_SIZE, InputValues};
use crate::keys::{PrivateKeySeed, derive_attestation_keypair_seed};

/// Size in bytes of a CDI (and of the UDS this crate accepts).
pub const CDI_SIZE: usize = 32;

const INFO_CDI_ATTEST: &[u8] = b"CDI_Attest";
const INFO_CDI_SEAL: &[u8] = b"CDI_Seal";

/// The pair of CDIs handed to the next layer. Secret: wiped on drop, not `Clone`,
/// and `Debug` prints no byte of them.
pub struct Cdis {
    attest: [u8; CDI_SIZE],
    seal: [u8; CDI_SIZE],
}

impl Cdis {
    /// Wraps CDIs received from the previous layer (e.g. read from the hand-off
    /// area). The caller should wipe its own copies.
    pub const fn from_bytes(attest: [u8; CDI_SIZE], seal: [u8; CDI_SIZE]) -> Self {
        Cdis { attest, seal }
    }

    /// The attestation CDI: changes with every input value.
    pub fn attest(&self) -> &[u8; CDI_SIZE] {
        &self.attest
    }

    /// The sealing CDI: depends only on the authority, mode and hidden inputs, so
    /// it is stable across updates signed by the same authority.
    pub fn seal(&self) -> &[u8; CDI_SIZE] {
        &self.seal
    }

    /// Runs the next DICE layer with these CDIs as the current ones.
    pub fn derive_next(&self, input: &InputValues<'_>) -> Result<Cdis, DiceError> {
        derive_cdis(&self.attest, &self.seal, input)
    }

    /// The CDI key-pair seed derived from [`Cdis::attest`] (see
    /// [`derive_attestation_keypair_seed`]).
    pub fn attestation_keypair_seed(&self) -> Result<PrivateKeySeed, DiceError> {
        derive_attestation_keypair_seed(&self.attest)
    }
}

impl Drop for Cdis {
    fn drop(&mut self) {
        self.attest.zeroize();
        self.seal.zeroize();
    }
}

impl ZeroizeOnDrop for Cdis {}

impl fmt::Debug for Cdis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cdis")
            .field("attest", &"<redacted>")
            .field("seal", &"<redacted>")
            .finish()
    }
}

/// Derives the next layer's CDIs.
///
/// For the first layer (the ROM stage, the hardware-to-software transition) pass
/// the UDS as both `current_cdi_attest` and `current_cdi_seal`, as the profile
/// says; an unprovisioned UDS is all zero. Later layers pass their own CDIs.
pub fn derive_cdis(
    current_cdi_attest: &[u8; CDI_SIZE],
    current_cdi_seal: &[u8; CDI_SIZE],
    input: &InputValues<'_>,
) -> Result<Cdis, DiceError> {
    let config = Zeroizing::new(input.config.input_value());
    let mode = [input.mode.to_byte()];

    // One-shot hashes streamed into the hasher: no 257-byte input buffer to wipe.
    let attest_salt: Zeroizing<[u8; HASH_SIZE]> = Zeroizing::new(
        Sha512::new()
            .chain_update(input.code_hash)
            .chain_update(config.as_slice())
            .chain_update(input.authority_hash)
            .chain_update(mode)
            .chain_update(input.hidden)
            .finalize()
            .into(),
    );
    let seal_salt: Zeroizing<[u8; HASH_SIZE]> = Zeroizing::new(
        Sha512::new()
            .chain_update(input.authority_hash)
            .chain_update(mode)
            .chain_update(input.hidden)
            .finalize()
            .into(),
    );

    let mut cdis = Cdis::from_bytes([0; CDI_SIZE], [0; CDI_SIZE]);
    kdf(
        &mut cdis.attest,
        current_cdi_attest,
        attest_salt.as_slice(),
        INFO_CDI_ATTEST,
    )?;
    kdf(
        &mut cdis.seal,
        current_cdi_seal,
        seal_salt.as_slice(),
        INFO_CDI_SEAL,
    )?;
    Ok(cdis)
}

/// The profile's `KDF(length, ikm, salt, info)`: HKDF-SHA512 (extract + expand),
/// `length = out.len()`.
pub(crate) fn kdf(out: &mut [u8], ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<(), DiceError> {
    Hkdf::<Sha512>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| DiceError::KdfOutputLength {
            requested: out.len(),
        })
}
