//! Simulated NOR flash: an in-memory byte array that enforces the rules of real parts and obeys
//! the power rail's fault plan.
//!
//! Rules (each refusal changes nothing and takes no operation index):
//! - bounds: `offset + len <= size` ([`HalError::OutOfBounds`]);
//! - writes aligned to `write_size` in offset and length, erases to `sector_size`
//!   ([`HalError::NotAligned`]);
//! - a write unit is written at most once between two erases of its sector
//!   ([`HalError::NotErased`]), even if the bytes written equal the erased value, as on ECC flash
//!   and as `embedded-storage` requires;
//! - an erase sets every byte of the sector to `erased_value` (0xFF or 0x00).
//!
//! Geometry is a run-time [`FlashConfig`] so that one type (and one CLI code path) covers every
//! write size and erased value. The `NorFlash` constants are therefore the weakest ones
//! (`WRITE_SIZE = ERASE_SIZE = 1`); the real values come from `Flash::write_size()`,
//! `Flash::erase_size()` and `Flash::erased_value()` and are enforced here. Code that wrongly
//! uses the constants fails with `NotAligned` as soon as a test runs with write size > 1.

use std::ops::Range;

use castellan_hal::{Flash, HalError};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::power::{OpFate, PowerRail};
use crate::prng::SplitMix64;

/// Geometry of a simulated flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlashConfig {
    /// Capacity in bytes (a multiple of `sector_size`).
    pub size: u32,
    /// Erase unit in bytes (a power of two).
    pub sector_size: u32,
    /// Write unit in bytes (a power of two, at most `sector_size`).
    pub write_size: u32,
    /// Value of an erased byte: 0xFF or 0x00.
    pub erased_value: u8,
}

/// Write sizes the power-loss harness covers.
pub const WRITE_SIZES: [u32; 4] = [1, 4, 8, 16];
/// Erased values the power-loss harness covers.
pub const ERASED_VALUES: [u8; 2] = [0xFF, 0x00];

impl FlashConfig {
    /// A flash of `size` bytes in sectors of `sector_size`, written in units of `write_size`.
    pub const fn new(size: u32, sector_size: u32, write_size: u32, erased_value: u8) -> Self {
        FlashConfig {
            size,
            sector_size,
            write_size,
            erased_value,
        }
    }

    /// The 8 geometries of the power-loss matrix: each of [`WRITE_SIZES`] × [`ERASED_VALUES`].
    pub fn matrix(size: u32, sector_size: u32) -> impl Iterator<Item = FlashConfig> {
        ERASED_VALUES.into_iter().flat_map(move |e| {
            WRITE_SIZES
                .into_iter()
                .map(move |w| FlashConfig::new(size, sector_size, w, e))
        })
    }

    /// Checks that the simulator can model this geometry.
    pub fn validate(&self) -> Result<(), SimError> {
        let rule = if !self.sector_size.is_power_of_two() {
            "sector_size must be a power of two"
        } else if !self.write_size.is_power_of_two() {
            "write_size must be a power of two"
        } else if self.write_size > self.sector_size {
            "write_size must not exceed sector_size"
        } else if self.size == 0 || self.size % self.sector_size != 0 {
            "flash size must be a non-zero multiple of sector_size"
        } else if self.erased_value != 0xFF && self.erased_value != 0x00 {
            "erased_value must be 0xFF or 0x00"
        } else {
            return Ok(());
        };
        Err(SimError::InvalidConfig(rule))
    }

    fn units(&self) -> usize {
        (self.size / self.write_size) as usize
    }
}

/// Operation counts of a simulated flash (for benchmarks and wear checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Read calls.
    pub reads: u64,
    /// Write calls that started (completed or torn).
    pub writes: u64,
    /// Bytes of those writes.
    pub bytes_written: u64,
    /// Sectors whose erase started.
    pub sector_erases: u64,
}

/// Saved contents of a [`SimFlash`] (bytes and which write units are programmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashSnapshot {
    data: Vec<u8>,
    written: Vec<u64>,
}

/// A simulated NOR flash. See the module doc for the rules it enforces.
#[derive(Debug)]
pub struct SimFlash {
    config: FlashConfig,
    data: Vec<u8>,
    /// One bit per write unit: programmed since the last erase of its sector.
    written: Vec<u64>,
    erase_counts: Vec<u32>,
    stats: FlashStats,
    rail: PowerRail,
}

impl SimFlash {
    /// A fully erased flash on a rail of its own.
    pub fn new(config: FlashConfig) -> Result<Self, SimError> {
        config.validate()?;
        let data = vec![config.erased_value; config.size as usize];
        Ok(Self::build(config, data, PowerRail::new()))
    }

    /// A flash holding `image` (its full contents, e.g. loaded from a file). Write units that do
    /// not read as erased count as programmed; erased-looking ones as writable.
    pub fn from_image(config: FlashConfig, image: Vec<u8>) -> Result<Self, SimError> {
        config.validate()?;
        if image.len() != config.size as usize {
            return Err(SimError::InvalidConfig(
                "flash image length differs from flash size",
            ));
        }
        Ok(Self::build(config, image, PowerRail::new()))
    }

    fn build(config: FlashConfig, data: Vec<u8>, rail: PowerRail) -> Self {
        let sectors = (config.size / config.sector_size) as usize;
        let mut flash = SimFlash {
            config,
            data,
            written: vec![0; config.units().div_ceil(64)],
            erase_counts: vec![0; sectors],
            stats: FlashStats::default(),
            rail,
        };
        flash.derive_written();
        flash
    }

    /// The geometry.
    pub fn config(&self) -> FlashConfig {
        self.config
    }

    /// The power rail this flash is on.
    pub fn rail(&self) -> &PowerRail {
        &self.rail
    }

    pub(crate) fn set_rail(&mut self, rail: PowerRail) {
        self.rail = rail;
    }

    /// Operation counts since creation or [`SimFlash::reset_stats`].
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// Zeroes the operation counts.
    pub fn reset_stats(&mut self) {
        self.stats = FlashStats::default();
    }

    /// How many times each sector's erase was started (wear), since creation.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_counts
    }

    /// The raw contents, read without power or counting (a debugger's view).
    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    /// The raw contents, for tests and attack simulation (a probe that rewrites bytes). Nothing
    /// is checked or counted and the programmed state of write units does not change.
    pub fn contents_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// True when write unit `index` (byte offset `index * write_size`) is programmed.
    pub fn is_unit_written(&self, index: usize) -> bool {
        self.written
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Saves the contents (bytes and programmed units; not stats or wear).
    pub fn snapshot(&self) -> FlashSnapshot {
        FlashSnapshot {
            data: self.data.clone(),
            written: self.written.clone(),
        }
    }

    /// Puts back saved contents (without reallocating).
    pub fn restore(&mut self, snap: &FlashSnapshot) -> Result<(), SimError> {
        if snap.data.len() != self.data.len() || snap.written.len() != self.written.len() {
            return Err(SimError::SnapshotMismatch);
        }
        self.data.copy_from_slice(&snap.data);
        self.written.copy_from_slice(&snap.written);
        Ok(())
    }

    fn derive_written(&mut self) {
        let ws = self.config.write_size as usize;
        let erased = self.config.erased_value;
        for (i, unit) in self.data.chunks(ws).enumerate() {
            let programmed = unit.iter().any(|b| *b != erased);
            set_bit(&mut self.written, i, programmed);
        }
    }

    /// Checked range `offset..offset + len` as usize bounds.
    fn range(&self, offset: u32, len: usize) -> Result<(usize, usize), HalError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(HalError::OutOfBounds)?;
        if end > self.data.len() {
            return Err(HalError::OutOfBounds);
        }
        Ok((start, end))
    }

    fn program_unit(&mut self, unit: usize, bytes: &[u8]) {
        let ws = self.config.write_size as usize;
        let at = unit * ws;
        if let Some(dst) = self.data.get_mut(at..at + ws) {
            dst.copy_from_slice(bytes);
        }
        set_bit(&mut self.written, unit, true);
    }

    /// Fills write unit `unit` with seeded garbage that equals neither `intended` nor the erased
    /// pattern (so a torn unit is never a silent success or a silent no-op).
    fn garbage_unit(&mut self, unit: usize, intended: &[u8], rng: &mut SplitMix64) {
        let ws = self.config.write_size as usize;
        let erased = self.config.erased_value;
        let mut junk = vec![0u8; ws];
        rng.fill(&mut junk);
        let first_intended = intended.first().copied().unwrap_or(erased);
        let mut candidates = [0u8; 8];
        rng.fill(&mut candidates);
        let pick = candidates
            .into_iter()
            .chain([0x5A, 0xA5, 0x3C])
            .find(|c| *c != first_intended && *c != erased)
            .unwrap_or(0x5A);
        if let Some(b) = junk.first_mut() {
            *b = pick;
        }
        self.program_unit(unit, &junk);
    }

    fn erase_sector(&mut self, sector: usize) {
        let ss = self.config.sector_size as usize;
        let ws = self.config.write_size as usize;
        let erased = self.config.erased_value;
        if let Some(bytes) = self.data.get_mut(sector * ss..(sector + 1) * ss) {
            bytes.fill(erased);
        }
        set_bits(
            &mut self.written,
            sector * ss / ws..(sector + 1) * ss / ws,
            false,
        );
    }

    /// Torn erase: a prefix of the sector's write units erased, the next one garbage, the rest
    /// keeping their old data (stale data at the end of a sector is where trailers live).
    fn torn_erase_sector(&mut self, sector: usize, rng: &mut SplitMix64) {
        let ss = self.config.sector_size as usize;
        let ws = self.config.write_size as usize;
        let erased = self.config.erased_value;
        let first = sector * ss / ws;
        let units = ss / ws;
        let done = rng.below(units);
        let hit = first + done;
        if let Some(bytes) = self.data.get_mut(first * ws..hit * ws) {
            bytes.fill(erased);
        }
        set_bits(&mut self.written, first..hit, false);
        let old = self
            .data
            .get(hit * ws..(hit + 1) * ws)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.garbage_unit(hit, &old, rng);
    }
}

impl Clone for SimFlash {
    /// A deep copy on a rail of its own (same power state and plan).
    fn clone(&self) -> Self {
        SimFlash {
            config: self.config,
            data: self.data.clone(),
            written: self.written.clone(),
            erase_counts: self.erase_counts.clone(),
            stats: self.stats,
            rail: self.rail.fork(),
        }
    }
}

impl ErrorType for SimFlash {
    type Error = HalError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), HalError> {
        self.rail.check_on()?;
        let (start, end) = self.range(offset, bytes.len())?;
        let src = self.data.get(start..end).ok_or(HalError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        self.stats.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl NorFlash for SimFlash {
    /// The weakest promise; the configured write size is enforced at run time.
    const WRITE_SIZE: usize = 1;
    /// The weakest promise; the configured sector size is enforced at run time.
    const ERASE_SIZE: usize = 1;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), HalError> {
        self.rail.check_on()?;
        if from > to || to as usize > self.data.len() {
            return Err(HalError::OutOfBounds);
        }
        let ss = self.config.sector_size;
        if from % ss != 0 || to % ss != 0 {
            return Err(HalError::NotAligned);
        }
        for sector in (from / ss) as usize..(to / ss) as usize {
            let fate = self.rail.begin_op()?;
            self.stats.sector_erases += 1;
            if let Some(count) = self.erase_counts.get_mut(sector) {
                *count = count.saturating_add(1);
            }
            match fate {
                OpFate::Complete => self.erase_sector(sector),
                OpFate::CompleteThenCut => {
                    self.erase_sector(sector);
                    return Err(HalError::PowerLoss);
                }
                OpFate::Torn(mut rng) => {
                    self.torn_erase_sector(sector, &mut rng);
                    return Err(HalError::PowerLoss);
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), HalError> {
        self.rail.check_on()?;
        let (start, end) = self.range(offset, bytes.len())?;
        let ws = self.config.write_size as usize;
        if start % ws != 0 || bytes.len() % ws != 0 {
            return Err(HalError::NotAligned);
        }
        let (first, last) = (start / ws, end / ws);
        if any_bit(&self.written, first..last) {
            return Err(HalError::NotErased);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let fate = self.rail.begin_op()?;
        self.stats.writes += 1;
        self.stats.bytes_written += bytes.len() as u64;
        match fate {
            OpFate::Complete | OpFate::CompleteThenCut => {
                if let Some(dst) = self.data.get_mut(start..end) {
                    dst.copy_from_slice(bytes);
                }
                set_bits(&mut self.written, first..last, true);
                match fate {
                    OpFate::Complete => Ok(()),
                    _ => Err(HalError::PowerLoss),
                }
            }
            OpFate::Torn(mut rng) => {
                // Units first..hit written, unit hit in flight, the rest untouched.
                let done = rng.below(last - first);
                let hit = first + done;
                let (written, rest) = bytes.split_at(done * ws);
                if let Some(dst) = self.data.get_mut(start..start + written.len()) {
                    dst.copy_from_slice(written);
                }
                set_bits(&mut self.written, first..hit, true);
                let intended = rest.get(..ws).unwrap_or_default();
                self.garbage_unit(hit, intended, &mut rng);
                Err(HalError::PowerLoss)
            }
        }
    }
}

impl Flash for SimFlash {
    fn write_size(&self) -> usize {
        self.config.write_size as usize
    }

    fn erase_size(&self) -> usize {
        self.config.sector_size as usize
    }

    fn erased_value(&self) -> u8 {
        self.config.erased_value
    }
}

fn set_bit(bits: &mut [u64], index: usize, value: bool) {
    set_bits(bits, index..index + 1, value);
}

/// Mask of bits `lo..hi` (0 <= lo <= hi <= 64) of one word.
fn word_mask(lo: usize, hi: usize) -> u64 {
    let upper = if hi >= 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
}

/// Calls `f(word index, mask)` for each word covering bits `range`.
fn for_each_word(range: Range<usize>, mut f: impl FnMut(usize, u64)) {
    let mut i = range.start;
    while i < range.end {
        let word = i / 64;
        let hi = (range.end - word * 64).min(64);
        f(word, word_mask(i % 64, hi));
        i = (word + 1) * 64;
    }
}

fn set_bits(bits: &mut [u64], range: Range<usize>, value: bool) {
    for_each_word(range, |w, mask| {
        if let Some(word) = bits.get_mut(w) {
            if value {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        }
    });
}

fn any_bit(bits: &[u64], range: Range<usize>) -> bool {
    let mut any = false;
    for_each_word(range, |w, mask| {
        any |= bits.get(w).is_some_and(|word| word & mask != 0);
    });
    any
}
