//! The board's NOR flash, backed by a host file through semihosting so that slots, trailers,
//! the swap journal and trusted storage survive resets and QEMU restarts.
//!
//! The driver enforces the flash rules the boot code relies on: writes aligned to the 4-byte
//! unit, erases to 4 KiB sectors, a unit is written only while it reads erased (0xFF).
//!
//! Power-cut injection (for tests): when the host file `castellan-powercut.bin` holds a
//! little-endian `u32` N > 0, the N-th erase or write of a boot (counted per image) does not
//! happen: the file is zeroed (the cut happens once) and the QEMU run ends at once with
//! [`crate::EXIT_POWER_CUT`], as if power had failed just before that operation.

use castellan_hal::{Flash, HalError, NorFlash, ReadNorFlash};
use embedded_storage::nor_flash::ErrorType;

use crate::map::{FLASH_FILE, FLASH_SECTOR, FLASH_SIZE, FLASH_WRITE, POWERCUT_FILE};
use crate::semihosting::{HostFile, Mode};

/// Erased byte value.
pub const ERASED: u8 = 0xff;

/// The flash, as a host file.
#[derive(Debug)]
pub struct HostFlash {
    file: HostFile,
    /// Erases and writes so far in this image.
    ops: u32,
    /// Injected power cut before this operation (0: none).
    cut_at: u32,
}

impl HostFlash {
    /// Opens the flash file; creates it blank (erased) when it does not exist, and extends a
    /// short file with erased bytes.
    pub fn open() -> Result<Self, HalError> {
        let mut file = match HostFile::open(FLASH_FILE, Mode::ReadWriteBinary) {
            Some(f) => f,
            None => HostFile::open(FLASH_FILE, Mode::CreateBinary).ok_or(HalError::Hardware)?,
        };
        let len = file.size().ok_or(HalError::Hardware)?;
        if len < FLASH_SIZE {
            let blank = [ERASED; 256];
            let mut at = len;
            while at < FLASH_SIZE {
                let n = (FLASH_SIZE - at).min(blank.len() as u32) as usize;
                file.write_at(at, blank.get(..n).unwrap_or(&[]))
                    .map_err(|_| HalError::Hardware)?;
                at += n as u32;
            }
        }
        let mut cut = [0u8; 4];
        let cut_at = match HostFile::open(POWERCUT_FILE, Mode::ReadBinary) {
            Some(mut f) => match f.read_at(0, &mut cut) {
                Ok(()) => u32::from_le_bytes(cut),
                Err(_) => 0,
            },
            None => 0,
        };
        Ok(HostFlash {
            file,
            ops: 0,
            cut_at,
        })
    }

    /// Counts a mutating operation; cuts the power when the injected count is reached.
    fn tick(&mut self) {
        self.ops += 1;
        if self.cut_at != 0 && self.ops == self.cut_at {
            if let Some(mut f) = HostFile::open(POWERCUT_FILE, Mode::ReadWriteBinary) {
                let _ = f.write_at(0, &[0; 4]);
            }
            crate::console::Console
                .text("[platform] POWER CUT (injected) before flash operation ")
                .decimal(self.ops)
                .text("\n");
            crate::semihosting::exit(crate::EXIT_POWER_CUT)
        }
    }

    fn check(&self, offset: u32, len: usize) -> Result<u32, HalError> {
        let len = u32::try_from(len).map_err(|_| HalError::OutOfBounds)?;
        let end = offset.checked_add(len).ok_or(HalError::OutOfBounds)?;
        if end > FLASH_SIZE {
            return Err(HalError::OutOfBounds);
        }
        Ok(end)
    }
}

impl ErrorType for HostFlash {
    type Error = HalError;
}

impl ReadNorFlash for HostFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), HalError> {
        self.check(offset, bytes.len())?;
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .read_at(offset, bytes)
            .map_err(|_| HalError::Hardware)
    }

    fn capacity(&self) -> usize {
        FLASH_SIZE as usize
    }
}

impl NorFlash for HostFlash {
    const WRITE_SIZE: usize = FLASH_WRITE as usize;
    const ERASE_SIZE: usize = FLASH_SECTOR as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), HalError> {
        if from > to || to > FLASH_SIZE {
            return Err(HalError::OutOfBounds);
        }
        if !from.is_multiple_of(FLASH_SECTOR) || !to.is_multiple_of(FLASH_SECTOR) {
            return Err(HalError::NotAligned);
        }
        self.tick();
        let blank = [ERASED; 1024];
        let mut at = from;
        while at < to {
            self.file
                .write_at(at, &blank)
                .map_err(|_| HalError::Hardware)?;
            at += blank.len() as u32;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), HalError> {
        self.check(offset, bytes.len())?;
        if !offset.is_multiple_of(FLASH_WRITE) || !bytes.len().is_multiple_of(FLASH_WRITE as usize)
        {
            return Err(HalError::NotAligned);
        }
        // NOR rule: every unit written must still be erased.
        let mut cur = [0u8; 256];
        let mut done = 0usize;
        while done < bytes.len() {
            let n = (bytes.len() - done).min(cur.len());
            let chunk = cur.get_mut(..n).ok_or(HalError::OutOfBounds)?;
            self.file
                .read_at(offset + done as u32, chunk)
                .map_err(|_| HalError::Hardware)?;
            if chunk.iter().any(|b| *b != ERASED) {
                return Err(HalError::NotErased);
            }
            done += n;
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.tick();
        self.file
            .write_at(offset, bytes)
            .map_err(|_| HalError::Hardware)
    }
}

impl Flash for HostFlash {
    fn erased_value(&self) -> u8 {
        ERASED
    }
}
