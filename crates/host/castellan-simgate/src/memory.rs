//! The simulated non-secure memory: the only bytes the secure side of a simulated device may
//! read or write for its caller, checked as TTAT checks them on the hardware.
//!
//! ```text
//!  NS_CODE_BASE .. + NS_CODE_SIZE   non-secure code: readable, not writable
//!  NS_RAM_BASE  .. + NS_RAM_SIZE    non-secure RAM: readable and writable
//!  anything else (secure RAM, peripherals, a range that wraps)     refused
//! ```

use castellan_gate_api::{Access, NsMemory, psa};

/// Start of the simulated non-secure code (the AN505 map's).
pub const NS_CODE_BASE: u32 = 0x0020_0000;
/// Bytes of simulated non-secure code.
pub const NS_CODE_SIZE: u32 = 0x1000;
/// Start of the simulated non-secure RAM (the AN505 map's).
pub const NS_RAM_BASE: u32 = 0x2820_0000;
/// Bytes of simulated non-secure RAM: room for every argument of one call.
pub const NS_RAM_SIZE: u32 = 0x1_0000;
/// An address in the simulated secure RAM (the AN505 map's): never the caller's.
pub const SECURE_RAM: u32 = 0x3800_0000;

/// The normal world's memory of a simulated device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNsMemory {
    code: Vec<u8>,
    ram: Vec<u8>,
}

impl Default for SimNsMemory {
    fn default() -> Self {
        SimNsMemory {
            code: vec![0; NS_CODE_SIZE as usize],
            ram: vec![0; NS_RAM_SIZE as usize],
        }
    }
}

impl SimNsMemory {
    /// Blank memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The region holding `addr .. addr + len` and the offset of `addr` in it, if one holds it
    /// whole (an empty range anywhere is accepted, as TTAT checks accept it).
    fn region(&self, addr: u32, len: u32) -> Option<(bool, usize)> {
        let end = addr.checked_add(len)?;
        for (base, size, writable) in [
            (NS_RAM_BASE, NS_RAM_SIZE, true),
            (NS_CODE_BASE, NS_CODE_SIZE, false),
        ] {
            if addr >= base && end <= base + size {
                return Some((writable, (addr - base) as usize));
            }
        }
        None
    }

    fn bytes_mut(&mut self, addr: u32, len: usize) -> Option<&mut [u8]> {
        let len32 = u32::try_from(len).ok()?;
        let (_, off) = self.region(addr, len32)?;
        let mem = if addr >= NS_RAM_BASE {
            &mut self.ram
        } else {
            &mut self.code
        };
        mem.get_mut(off..off + len)
    }

    /// The normal world writes its own memory (no check: it is the caller's).
    pub fn put(&mut self, addr: u32, data: &[u8]) -> bool {
        match self.bytes_mut(addr, data.len()) {
            Some(d) => {
                d.copy_from_slice(data);
                true
            }
            None => false,
        }
    }

    /// The normal world reads its own memory.
    pub fn get(&mut self, addr: u32, out: &mut [u8]) -> bool {
        match self.bytes_mut(addr, out.len()) {
            Some(s) => {
                out.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

impl NsMemory for SimNsMemory {
    fn check(&self, addr: u32, len: u32, access: Access) -> bool {
        if len == 0 {
            return true;
        }
        match self.region(addr, len) {
            Some((writable, _)) => writable || access == Access::Read,
            None => false,
        }
    }

    fn read(&mut self, addr: u32, dst: &mut [u8]) -> Result<(), i32> {
        let len = u32::try_from(dst.len()).map_err(|_| psa::ERROR_PROGRAMMER_ERROR)?;
        if !self.check(addr, len, Access::Read) || !self.get(addr, dst) {
            return Err(psa::ERROR_PROGRAMMER_ERROR);
        }
        Ok(())
    }

    fn write(&mut self, addr: u32, src: &[u8]) -> Result<(), i32> {
        let len = u32::try_from(src.len()).map_err(|_| psa::ERROR_PROGRAMMER_ERROR)?;
        if !self.check(addr, len, Access::Write) || !self.put(addr, src) {
            return Err(psa::ERROR_PROGRAMMER_ERROR);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_as_the_caller() {
        let m = SimNsMemory::new();
        assert!(m.check(NS_RAM_BASE, NS_RAM_SIZE, Access::Write));
        assert!(!m.check(NS_RAM_BASE, NS_RAM_SIZE + 1, Access::Read));
        assert!(!m.check(NS_RAM_BASE - 1, 2, Access::Read));
        assert!(m.check(NS_CODE_BASE, 16, Access::Read));
        assert!(!m.check(NS_CODE_BASE, 16, Access::Write));
        assert!(!m.check(SECURE_RAM, 1, Access::Read));
        assert!(!m.check(u32::MAX, 2, Access::Read));
        assert!(m.check(SECURE_RAM, 0, Access::Write));
    }

    #[test]
    fn refused_copies_touch_nothing() {
        let mut m = SimNsMemory::new();
        let before = m.clone();
        assert_eq!(
            m.write(NS_CODE_BASE, &[1; 4]),
            Err(psa::ERROR_PROGRAMMER_ERROR)
        );
        assert_eq!(
            m.write(NS_RAM_BASE + NS_RAM_SIZE - 2, &[1; 4]),
            Err(psa::ERROR_PROGRAMMER_ERROR)
        );
        assert_eq!(m, before);
        assert_eq!(m.write(NS_RAM_BASE, &[7; 4]), Ok(()));
        let mut b = [0u8; 4];
        assert_eq!(m.read(NS_RAM_BASE, &mut b), Ok(()));
        assert_eq!(b, [7; 4]);
    }
}
