//! CDI derivation: CDI_Attest and CDI_Seal of the next layer from the UDS (first
//! layer) or the current layer's CDIs, exactly as the Open Profile for DICE and
//! open-dice's `DiceMainFlow` compute them with SHA-512 and HKDF-SHA512.
//!
//! ```text
//! CDI_Attest' = HKDF(32, ikm = CDI_Attest, salt = H(code || config || authority || mode || hidden), "CDI_Attest")
//! CDI_Seal'   = HKDF(32, ikm = CDI_Seal,   salt = H(authority || mode || hidden),                   "CDI_Seal")
//! ```

use core::fmt;

#[cfg(test)]
use hkdf::Hkdf;
use hkdf::HmacImpl;
use hkdf::hmac::Hmac;
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

impl Zeroize for Cdis {
    /// Wipes both CDIs in place (for a holder that cannot drop them, e.g. a stage that never
    /// returns).
    fn zeroize(&mut self) {
        self.attest.zeroize();
        self.seal.zeroize();
    }
}

impl Drop for Cdis {
    fn drop(&mut self) {
        self.zeroize();
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
    let attest_salt = hash_parts(&[
        &input.code_hash,
        config.as_slice(),
        &input.authority_hash,
        &mode,
        &input.hidden,
    ]);
    let seal_salt = hash_parts(&[&input.authority_hash, &mode, &input.hidden]);

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
///
/// The two steps run in frames of their own (`inline(never)`), one after the other, so that
/// the deepest stack is one HMAC-SHA-512 state, not the extract's and the expand's at once:
/// this is the deepest path of the ROM stage (docs/benchmarks.md, "ROM stage footprint").
pub(crate) fn kdf(out: &mut [u8], ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<(), DiceError> {
    let prk = extract(salt, ikm);
    expand(&prk, info, out)
}

/// HKDF-Extract (RFC 5869 §2.2): `PRK = HMAC-SHA512(salt, ikm)`, computed through the `hkdf`
/// crate's own HMAC interface exactly as its `HkdfExtract` does, without the expand state that
/// `HkdfExtract::finalize` would also build. The PRK is wiped on drop.
#[inline(never)]
fn extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; HASH_SIZE]> {
    let mut hmac = <Hmac<Sha512> as HmacImpl>::new_from_slice(salt);
    HmacImpl::update(&mut hmac, ikm);
    Zeroizing::new(HmacImpl::finalize(hmac).into())
}

/// HKDF-Expand (RFC 5869 §2.3) of `prk` into `out`: `T(i) = HMAC-SHA512(PRK, T(i-1) ‖ info ‖ i)`
/// for `i = 1, 2, …`, `out` the first `out.len()` bytes of `T(1) ‖ T(2) ‖ …`, at most 255
/// blocks. The same construction as the `hkdf` crate's `expand`, on the same HMAC interface,
/// with one keyed HMAC state per block instead of a kept state and a clone of it (the
/// equivalence is a test, over every output length up to four blocks; the open-dice known
/// answers cover the CDIs). Every `T(i)` is wiped on drop.
#[inline(never)]
fn expand(prk: &[u8; HASH_SIZE], info: &[u8], out: &mut [u8]) -> Result<(), DiceError> {
    if out.len() > 255 * HASH_SIZE {
        return Err(DiceError::KdfOutputLength {
            requested: out.len(),
        });
    }
    let mut previous: Zeroizing<[u8; HASH_SIZE]> = Zeroizing::new([0; HASH_SIZE]);
    for (block, counter) in out.chunks_mut(HASH_SIZE).zip(1..=255u8) {
        let mut hmac = <Hmac<Sha512> as HmacImpl>::new_from_slice(prk);
        if counter > 1 {
            HmacImpl::update(&mut hmac, previous.as_slice());
        }
        HmacImpl::update(&mut hmac, info);
        HmacImpl::update(&mut hmac, &[counter]);
        *previous = HmacImpl::finalize(hmac).into();
        for (o, t) in block.iter_mut().zip(previous.iter()) {
            *o = *t;
        }
    }
    Ok(())
}

/// SHA-512 of the concatenation of `parts`, in a frame of its own (`inline(never)`): the
/// hasher's state is not on the stack while the KDF runs. Wiped on drop.
#[inline(never)]
fn hash_parts(parts: &[&[u8]]) -> Zeroizing<[u8; HASH_SIZE]> {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    Zeroizing::new(hasher.finalize().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn kdf_equals_the_hkdf_crate_for_every_length_up_to_four_blocks() {
        let ikm = [0x0bu8; 22];
        let salt = [0x5au8; 64];
        let info = b"CDI_Attest";
        let mut ours = [0u8; 4 * HASH_SIZE];
        let mut theirs = [0u8; 4 * HASH_SIZE];
        for len in 0..=ours.len() {
            kdf(&mut ours[..len], &ikm, &salt, info).unwrap();
            Hkdf::<Sha512>::new(Some(&salt), &ikm)
                .expand(info, &mut theirs[..len])
                .unwrap();
            assert_eq!(ours[..len], theirs[..len], "length {len}");
        }
    }

    #[test]
    fn kdf_refuses_more_than_255_blocks_as_hkdf_does() {
        let mut out = [0u8; 255 * HASH_SIZE + 1];
        assert_eq!(
            kdf(&mut out, b"ikm", b"salt", b"info"),
            Err(DiceError::KdfOutputLength {
                requested: out.len()
            })
        );
        assert!(
            Hkdf::<Sha512>::new(Some(b"salt"), b"ikm")
                .expand(b"info", &mut out)
                .is_err()
        );
        kdf(&mut out[..255 * HASH_SIZE], b"ikm", b"salt", b"info").unwrap();
    }
}
