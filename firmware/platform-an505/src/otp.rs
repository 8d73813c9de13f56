//! OTP fuses and the hardware unique secret (UDS), backed by a host file through semihosting.
//!
//! ```text
//!  castellan-otp.bin (300 bytes)
//!  0..256    64 fuse words, little-endian (bits only ever set)
//!  256..288  UDS, 32 bytes (written at manufacturing)
//!  288..296  lock flag per 8-word region (0 unlocked, 1 locked)
//!  296..300  reserved
//! ```
//!
//! The UDS lock ("readable until locked, until the next reset") is emulated by a word in the
//! secure hand-off page that the ROM stage clears at reset and sets when it locks; every
//! driver instance refuses to read while it is set. On silicon this is a sticky lock register
//! or a fuse read-lock: on QEMU it is only as strong as the secure code that honours it.

use castellan_hal::{HalError, HardwareUniqueSecret, OtpFuses, UDS_LEN};
use zeroize::Zeroize;

use crate::handoff;
use crate::map::OTP_FILE;
use crate::semihosting::{HostFile, Mode};

/// Fuse words.
pub const OTP_WORDS: usize = 64;
/// Words per lock region.
pub const OTP_REGION_WORDS: usize = 8;
/// Lock regions.
pub const OTP_REGIONS: usize = OTP_WORDS / OTP_REGION_WORDS;
/// Offset of the UDS in the file.
pub const UDS_OFFSET: u32 = (OTP_WORDS * 4) as u32;
/// Offset of the lock flags in the file.
pub const LOCKS_OFFSET: u32 = UDS_OFFSET + UDS_LEN as u32;
/// Size of the OTP file.
pub const OTP_FILE_SIZE: u32 = LOCKS_OFFSET + OTP_REGIONS as u32 + 4;

/// The fuse bank: a RAM copy of the file, written through on every program and lock.
#[derive(Debug)]
pub struct HostOtp {
    file: HostFile,
    words: [u32; OTP_WORDS],
    locks: [u8; OTP_REGIONS],
}

impl HostOtp {
    /// Opens the OTP file (created blank when missing: a device straight from the fab).
    pub fn open() -> Result<Self, HalError> {
        let mut file = match HostFile::open(OTP_FILE, Mode::ReadWriteBinary) {
            Some(f) => f,
            None => {
                let mut f =
                    HostFile::open(OTP_FILE, Mode::CreateBinary).ok_or(HalError::Hardware)?;
                f.write_at(0, &[0u8; OTP_FILE_SIZE as usize])
                    .map_err(|_| HalError::Hardware)?;
                f
            }
        };
        let mut raw = [0u8; OTP_WORDS * 4];
        file.read_at(0, &mut raw).map_err(|_| HalError::Hardware)?;
        let mut words = [0u32; OTP_WORDS];
        for (w, c) in words.iter_mut().zip(raw.chunks_exact(4)) {
            let b: [u8; 4] = c.try_into().map_err(|_| HalError::Hardware)?;
            *w = u32::from_le_bytes(b);
        }
        let mut locks = [0u8; OTP_REGIONS];
        file.read_at(LOCKS_OFFSET, &mut locks)
            .map_err(|_| HalError::Hardware)?;
        Ok(HostOtp { file, words, locks })
    }
}

impl OtpFuses for HostOtp {
    fn words(&self) -> usize {
        OTP_WORDS
    }

    fn region_words(&self) -> usize {
        OTP_REGION_WORDS
    }

    fn read(&self, word: usize) -> Result<u32, HalError> {
        self.words.get(word).copied().ok_or(HalError::OutOfBounds)
    }

    fn program(&mut self, word: usize, value: u32) -> Result<(), HalError> {
        let current = self.read(word)?;
        if current & !value != 0 {
            return Err(HalError::WouldClearBit);
        }
        if self.is_locked(word / OTP_REGION_WORDS)? {
            return Err(HalError::Locked);
        }
        if current == value {
            return Ok(());
        }
        let at = u32::try_from(word * 4).map_err(|_| HalError::OutOfBounds)?;
        self.file
            .write_at(at, &value.to_le_bytes())
            .map_err(|_| HalError::Hardware)?;
        if let Some(w) = self.words.get_mut(word) {
            *w = value;
        }
        Ok(())
    }

    fn lock(&mut self, region: usize) -> Result<(), HalError> {
        let flag = self.locks.get_mut(region).ok_or(HalError::OutOfBounds)?;
        if *flag == 1 {
            return Ok(());
        }
        *flag = 1;
        let at = LOCKS_OFFSET + region as u32;
        self.file.write_at(at, &[1]).map_err(|_| HalError::Hardware)
    }

    fn is_locked(&self, region: usize) -> Result<bool, HalError> {
        self.locks
            .get(region)
            .map(|f| *f != 0)
            .ok_or(HalError::OutOfBounds)
    }
}

/// The UDS in the OTP file, readable until [`HardwareUniqueSecret::lock`] (until reset).
#[derive(Debug, Default)]
pub struct HostUds {
    _private: (),
}

impl HostUds {
    /// The UDS driver (the lock state lives in the hand-off page, not here).
    pub const fn new() -> Self {
        HostUds { _private: () }
    }
}

impl HardwareUniqueSecret for HostUds {
    fn read(&self, out: &mut [u8; UDS_LEN]) -> Result<(), HalError> {
        if handoff::uds_locked() {
            return Err(HalError::UdsLocked);
        }
        let mut f = HostFile::open(OTP_FILE, Mode::ReadBinary).ok_or(HalError::Hardware)?;
        let r = f.read_at(UDS_OFFSET, out);
        if r.is_err() {
            out.zeroize();
            return Err(HalError::Hardware);
        }
        Ok(())
    }

    fn lock(&mut self) {
        handoff::lock_uds();
    }

    fn is_locked(&self) -> bool {
        handoff::uds_locked()
    }
}
