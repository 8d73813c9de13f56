//! The random source: a ChaCha20 DRBG seeded at boot.
//!
//! QEMU's AN505 has no TRNG, so the seed comes from the host: `castellan-entropy.bin` (32
//! bytes the runner fills from the host's random generator), rotated at every boot (the file is
//! rewritten with a one-way function of the old seed, so a reboot within one QEMU run does not
//! reuse a seed), mixed with the SysTick counter (timing jitter under a free-running QEMU, none
//! under `-icount`). Without the file the generator fails closed: every
//! [`RandomSource::fill`] returns [`HalError::RngFailure`] (the HAL contract: never predictable
//! bytes), because SysTick alone is predictable under QEMU and the secure services draw AES-GCM
//! nonces and keys from this source. On silicon this module is replaced by the TRNG driver;
//! nothing else changes.

use castellan_hal::{HalError, RandomSource};
use chacha20::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

use crate::map::ENTROPY_FILE;
use crate::semihosting::{HostFile, Mode};

/// A seeded DRBG.
pub struct DrbgRng {
    rng: ChaCha20Rng,
    weak: bool,
}

impl core::fmt::Debug for DrbgRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DrbgRng")
            .field("weak", &self.weak)
            .finish_non_exhaustive()
    }
}

impl DrbgRng {
    /// Seeds from the host entropy file (rotating it) and SysTick; `label` separates the
    /// streams of different images.
    pub fn seed(label: &[u8]) -> Self {
        let mut host = [0u8; 32];
        let mut weak = true;
        if let Some(mut f) = HostFile::open(ENTROPY_FILE, Mode::ReadWriteBinary)
            && f.read_at(0, &mut host).is_ok()
        {
            weak = false;
            let next: [u8; 32] = Sha256::new()
                .chain_update(b"castellan entropy rotation")
                .chain_update(host)
                .finalize()
                .into();
            let _ = f.write_at(0, &next);
        }
        // Safety: SysTick CVR (0xE000E018) is a read-only architectural counter register.
        let jitter = unsafe { core::ptr::read_volatile(0xE000_E018 as *const u32) };
        let mut seed: [u8; 32] = Sha256::new()
            .chain_update(b"castellan drbg seed")
            .chain_update(label)
            .chain_update(host)
            .chain_update(jitter.to_le_bytes())
            .finalize()
            .into();
        host.zeroize();
        let rng = ChaCha20Rng::from_seed(seed);
        seed.zeroize();
        DrbgRng { rng, weak }
    }

    /// True when no host entropy was available: the generator refuses to produce bytes.
    pub fn is_weak(&self) -> bool {
        self.weak
    }
}

impl RandomSource for DrbgRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), HalError> {
        if self.weak {
            return Err(HalError::RngFailure);
        }
        self.rng.fill_bytes(buf);
        Ok(())
    }
}
