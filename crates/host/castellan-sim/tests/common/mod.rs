//! What the flash tests share: a blank flash of every geometry of the power-loss matrix, and
//! data that is never mistaken for erased flash.
#![allow(dead_code)]

use castellan_sim::{FlashConfig, SimFlash};

/// Sector size of the test flashes.
pub const SECTOR: u32 = 1024;

/// A blank flash of `size` bytes in each geometry of the matrix (write sizes 1, 4, 8, 16 ×
/// erased 0xFF, 0x00).
pub fn flashes(size: u32) -> impl Iterator<Item = SimFlash> {
    FlashConfig::matrix(size, SECTOR).map(|c| SimFlash::new(c).unwrap())
}

/// A pattern of `len` bytes that contains neither erased value, so it is always "programmed".
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| 1 + ((i as u8).wrapping_add(salt) % 250))
        .collect()
}
