//! Simulated NOR flash: copy-on-write pages in memory ([`crate::pages`]) that enforce the
//! rules of real parts and obey the power rail's fault plan.
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

use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use castellan_hal::{Flash, HalError};
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::pages::{FlashBase, FlashMemory, Page, PageData, PageGeometry};
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

/// Saved contents of a [`SimFlash`] (bytes and which write units are programmed). Pages are
/// shared with the flash until either side writes them, so a snapshot costs little.
#[derive(Debug, Clone)]
pub struct FlashSnapshot {
    geo: PageGeometry,
    pages: Vec<Page>,
}

impl PartialEq for FlashSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.geo == other.geo
            && self.pages.len() == other.pages.len()
            && self
                .pages
                .iter()
                .zip(&other.pages)
                .all(|(a, b)| a.equal(b, &self.geo))
    }
}

impl Eq for FlashSnapshot {}

/// A simulated NOR flash. See the module doc for the rules it enforces and [`crate::pages`]
/// for its copy-on-write storage.
#[derive(Debug)]
pub struct SimFlash {
    config: FlashConfig,
    geo: PageGeometry,
    pages: Vec<Page>,
    erase_counts: Vec<u32>,
    stats: FlashStats,
    rail: PowerRail,
    /// The contents as one slice, made on demand by [`SimFlash::contents`] and dropped by the
    /// next change; after [`SimFlash::contents_mut`] it is the truth until folded back.
    view: OnceCell<Vec<u8>>,
    view_dirty: bool,
}

impl SimFlash {
    /// A fully erased flash on a rail of its own (no page allocated).
    pub fn new(config: FlashConfig) -> Result<Self, SimError> {
        config.validate()?;
        let geo = PageGeometry::of(&config);
        Ok(Self::build(config, vec![Page::Erased; geo.pages]))
    }

    /// A flash holding `image` (its full contents, e.g. loaded from a file). Write units that do
    /// not read as erased count as programmed; erased-looking ones as writable. Pages equal to
    /// pages of other flashes in the process share their storage.
    pub fn from_image(config: FlashConfig, image: Vec<u8>) -> Result<Self, SimError> {
        config.validate()?;
        if image.len() != config.size as usize {
            return Err(SimError::InvalidConfig(
                "flash image length differs from flash size",
            ));
        }
        let geo = PageGeometry::of(&config);
        let pages = image
            .chunks(geo.page_size)
            .map(|c| geo.intern(&geo.page_from_bytes(c)))
            .collect();
        Ok(Self::build(config, pages))
    }

    /// A flash whose every page is the base's, shared until written.
    pub fn from_base(base: &FlashBase) -> Self {
        Self::build(base.config, base.pages.to_vec())
    }

    pub(crate) fn from_pages(config: FlashConfig, pages: Vec<Page>) -> Result<Self, SimError> {
        config.validate()?;
        if pages.len() != PageGeometry::of(&config).pages {
            return Err(SimError::InvalidConfig(
                "page count differs from flash size",
            ));
        }
        Ok(Self::build(config, pages))
    }

    fn build(config: FlashConfig, pages: Vec<Page>) -> Self {
        let sectors = (config.size / config.sector_size) as usize;
        SimFlash {
            config,
            geo: PageGeometry::of(&config),
            pages,
            erase_counts: vec![0; sectors],
            stats: FlashStats::default(),
            rail: PowerRail::new(),
            view: OnceCell::new(),
            view_dirty: false,
        }
    }

    /// The current contents as a read-only base that other flashes share
    /// ([`SimFlash::from_base`]).
    pub fn to_base(&self) -> FlashBase {
        let pages: Vec<Page> = self.settled().iter().map(|p| self.geo.intern(p)).collect();
        FlashBase {
            config: self.config,
            pages: pages.into(),
        }
    }

    /// True when the page holding byte `offset` is still the base's own storage (this flash
    /// has not written it since it was made from `base`).
    pub fn shares_base_at(&self, base: &FlashBase, offset: u32) -> bool {
        let p = offset as usize / self.geo.page_size;
        match (self.pages.get(p), base.pages.get(p)) {
            (Some(Page::Data(a)), Some(Page::Data(b))) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Makes pages with the same contents as a page of another flash in the process share its
    /// storage, and pages that read as erased free theirs.
    pub fn share_pages(&mut self) {
        self.sync_view();
        let geo = self.geo;
        for page in &mut self.pages {
            *page = geo.intern(page);
        }
    }

    /// What this flash's storage costs.
    pub fn memory(&self) -> FlashMemory {
        let mut m = FlashMemory {
            pages: self.pages.len(),
            ..FlashMemory::default()
        };
        for page in &self.pages {
            match page {
                Page::Erased => m.erased_pages += 1,
                Page::Data(d) if Arc::strong_count(d) == 1 => {
                    m.own_pages += 1;
                    m.own_bytes += d.bytes.len() + d.written.len() * 8;
                }
                Page::Data(_) => m.shared_pages += 1,
            }
        }
        m
    }

    /// The geometry.
    pub fn config(&self) -> FlashConfig {
        self.config
    }

    pub(crate) fn page_geometry(&self) -> PageGeometry {
        self.geo
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

    /// The raw contents, read without power or counting (a debugger's view). Assembled from
    /// the pages on first use after a change (a copy of the whole flash, kept until the next
    /// change).
    pub fn contents(&self) -> &[u8] {
        self.view.get_or_init(|| {
            let mut all = Vec::with_capacity(self.config.size as usize);
            for page in &self.pages {
                match page {
                    Page::Erased => all.resize(all.len() + self.geo.page_size, self.geo.erased),
                    Page::Data(d) => all.extend_from_slice(&d.bytes),
                }
            }
            all
        })
    }

    /// The raw contents, for tests and attack simulation (a probe that rewrites bytes). Nothing
    /// is checked or counted and the programmed state of write units does not change. The
    /// changes reach the pages at the next operation.
    pub fn contents_mut(&mut self) -> &mut [u8] {
        self.contents();
        self.view_dirty = true;
        match self.view.get_mut() {
            Some(v) => v,
            None => &mut [],
        }
    }

    /// True when write unit `index` (byte offset `index * write_size`) is programmed.
    pub fn is_unit_written(&self, index: usize) -> bool {
        let upp = self.geo.units_per_page();
        match self.pages.get(index / upp) {
            Some(Page::Data(d)) => {
                let i = index % upp;
                d.written
                    .get(i / 64)
                    .is_some_and(|w| w & (1 << (i % 64)) != 0)
            }
            _ => false,
        }
    }

    /// Saves the contents (bytes and programmed units; not stats or wear). The snapshot shares
    /// the pages until either side writes them.
    pub fn snapshot(&self) -> FlashSnapshot {
        FlashSnapshot {
            geo: self.geo,
            pages: self.settled(),
        }
    }

    /// Puts back saved contents.
    pub fn restore(&mut self, snap: &FlashSnapshot) -> Result<(), SimError> {
        if snap.geo != self.geo || snap.pages.len() != self.pages.len() {
            return Err(SimError::SnapshotMismatch);
        }
        self.view = OnceCell::new();
        self.view_dirty = false;
        self.pages.clone_from(&snap.pages);
        Ok(())
    }

    /// The pages with the changes made through [`SimFlash::contents_mut`] folded in.
    pub(crate) fn settled(&self) -> Vec<Page> {
        let mut pages = self.pages.clone();
        if let (true, Some(view)) = (self.view_dirty, self.view.get()) {
            fold_view(&self.geo, &mut pages, view);
        }
        pages
    }

    /// Folds changes made through [`SimFlash::contents_mut`] into the pages.
    fn sync_view(&mut self) {
        if self.view_dirty {
            self.view_dirty = false;
            if let Some(view) = self.view.take() {
                fold_view(&self.geo, &mut self.pages, &view);
            }
        }
    }

    /// Page `p` for writing: its own copy (copy-on-write), the view dropped.
    fn page_mut(&mut self, p: usize) -> Option<&mut PageData> {
        self.view.take();
        let page = self.pages.get_mut(p)?;
        if let Page::Erased = page {
            *page = Page::Data(Arc::new(self.geo.erased_data()));
        }
        match page {
            Page::Data(d) => Some(Arc::make_mut(d)),
            Page::Erased => None,
        }
    }

    /// Calls `f(page, byte range in the page, byte range in the input)` for each page that
    /// `start..end` covers.
    fn segments(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, Range<usize>, Range<usize>),
    ) {
        let ps = self.geo.page_size;
        let mut at = start;
        while at < end {
            let p = at / ps;
            let stop = ((p + 1) * ps).min(end);
            f(p, at - p * ps..stop - p * ps, at - start..stop - start);
            at = stop;
        }
    }

    /// Copies `bytes` to `start` and marks the units they cover programmed (`start` and the
    /// length are whole units).
    fn program(&mut self, start: usize, bytes: &[u8]) {
        let ws = self.geo.write_size;
        let mut segs = Vec::new();
        self.segments(start, start + bytes.len(), |p, local, input| {
            segs.push((p, local, input));
        });
        for (p, local, input) in segs {
            if let (Some(d), Some(src)) = (self.page_mut(p), bytes.get(input)) {
                if let Some(dst) = d.bytes.get_mut(local.clone()) {
                    dst.copy_from_slice(src);
                }
                set_bits(&mut d.written, local.start / ws..local.end / ws, true);
            }
            self.share_if_full(p);
        }
    }

    /// A page whose every unit is programmed cannot change until its sector is erased: it is
    /// shared with identical pages of other flashes (a release downloaded by many devices).
    fn share_if_full(&mut self, p: usize) {
        let upp = self.geo.units_per_page();
        let geo = self.geo;
        if let Some(page @ Page::Data(_)) = self.pages.get_mut(p)
            && let Page::Data(d) = &*page
            && (0..upp.div_ceil(64)).all(|w| {
                let bits = (upp - w * 64).min(64);
                let mask = if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                d.written.get(w).is_some_and(|x| x & mask == mask)
            })
        {
            *page = geo.intern(page);
        }
    }

    /// Erases the write units `units` (page by page: whole pages become [`Page::Erased`]).
    fn erase_units(&mut self, units: Range<usize>) {
        let ws = self.geo.write_size;
        let (erased, ps) = (self.geo.erased, self.geo.page_size);
        let mut segs = Vec::new();
        self.segments(units.start * ws, units.end * ws, |p, local, _| {
            segs.push((p, local));
        });
        for (p, local) in segs {
            if local.start == 0 && local.end == ps {
                self.view.take();
                if let Some(page) = self.pages.get_mut(p) {
                    *page = Page::Erased;
                }
            } else if let Some(d) = self.page_mut(p) {
                if let Some(b) = d.bytes.get_mut(local.clone()) {
                    b.fill(erased);
                }
                set_bits(&mut d.written, local.start / ws..local.end / ws, false);
            }
        }
    }

    fn any_written(&self, units: Range<usize>) -> bool {
        let ws = self.geo.write_size;
        let mut any = false;
        self.segments(units.start * ws, units.end * ws, |p, local, _| {
            if let Some(Page::Data(d)) = self.pages.get(p) {
                any |= any_bit(&d.written, local.start / ws..local.end / ws);
            }
        });
        any
    }

    /// Checked range `offset..offset + len` as usize bounds.
    fn range(&self, offset: u32, len: usize) -> Result<(usize, usize), HalError> {
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(HalError::OutOfBounds)?;
        if end > self.config.size as usize {
            return Err(HalError::OutOfBounds);
        }
        Ok((start, end))
    }

    fn program_unit(&mut self, unit: usize, bytes: &[u8]) {
        self.program(unit * self.geo.write_size, bytes);
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
        self.erase_units(sector * ss / ws..(sector + 1) * ss / ws);
    }

    /// Torn erase: a prefix of the sector's write units erased, the next one garbage, the rest
    /// keeping their old data (stale data at the end of a sector is where trailers live).
    fn torn_erase_sector(&mut self, sector: usize, rng: &mut SplitMix64) {
        let ss = self.config.sector_size as usize;
        let ws = self.config.write_size as usize;
        let first = sector * ss / ws;
        let units = ss / ws;
        let done = rng.below(units);
        let hit = first + done;
        self.erase_units(first..hit);
        let mut old = vec![0u8; ws];
        self.read_raw(hit * ws, &mut old);
        self.garbage_unit(hit, &old, rng);
    }

    /// Copies bytes from `start` out of the pages (bounds checked by the caller).
    fn read_raw(&self, start: usize, out: &mut [u8]) {
        let erased = self.geo.erased;
        self.segments(start, start + out.len(), |p, local, input| {
            if let Some(dst) = out.get_mut(input) {
                match self.pages.get(p) {
                    Some(Page::Data(d)) => match d.bytes.get(local) {
                        Some(src) => dst.copy_from_slice(src),
                        None => dst.fill(erased),
                    },
                    _ => dst.fill(erased),
                }
            }
        });
    }
}

/// Writes the bytes of `view` that differ from `pages` into copies of those pages.
fn fold_view(geo: &PageGeometry, pages: &mut [Page], view: &[u8]) {
    for (page, bytes) in pages.iter_mut().zip(view.chunks(geo.page_size)) {
        let same = match page {
            Page::Erased => bytes.iter().all(|b| *b == geo.erased),
            Page::Data(d) => *d.bytes == *bytes,
        };
        if !same {
            let mut d = geo.data(page);
            d.bytes.copy_from_slice(bytes);
            *page = Page::Data(Arc::new(d));
        }
    }
}

impl Clone for SimFlash {
    /// A copy on a rail of its own (same power state and plan), sharing every page until
    /// either side writes it.
    fn clone(&self) -> Self {
        SimFlash {
            config: self.config,
            geo: self.geo,
            pages: self.settled(),
            erase_counts: self.erase_counts.clone(),
            stats: self.stats,
            rail: self.rail.fork(),
            view: OnceCell::new(),
            view_dirty: false,
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
        let (start, _) = self.range(offset, bytes.len())?;
        self.sync_view();
        self.read_raw(start, bytes);
        self.stats.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.config.size as usize
    }
}

impl NorFlash for SimFlash {
    /// The weakest promise; the configured write size is enforced at run time.
    const WRITE_SIZE: usize = 1;
    /// The weakest promise; the configured sector size is enforced at run time.
    const ERASE_SIZE: usize = 1;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), HalError> {
        self.rail.check_on()?;
        self.sync_view();
        if from > to || to > self.config.size {
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
        self.sync_view();
        if self.any_written(first..last) {
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
                self.program(start, bytes);
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
                self.program(start, written);
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
