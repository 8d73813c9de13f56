//! The simulated flash's storage: copy-on-write pages, so that a fleet of simulated devices
//! does not cost a whole flash per device.
//!
//! ```text
//!  SimFlash ── pages: [Page; size / page_size]
//!                Erased            no allocation: every byte erased, no unit programmed
//!                Data(Arc<PageData>) bytes + programmed bits of the page's write units,
//!                                  shared (read-only) with a FlashBase, another device or a
//!                                  snapshot until written: Arc::make_mut copies it first
//!  FlashBase ── a frozen page list: devices made from it share every page they do not write
//!  intern()  ── identical pages (same bytes, same programmed bits) of any device in the process
//!               become one allocation (a pool of weak references keyed by a hash of the page)
//! ```
//!
//! A page is `min(sector_size, 4 KiB)` bytes but never less than a write unit, so that a page
//! holds whole write units and a sector whole pages.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::flash::FlashConfig;

/// Largest page: the allocation unit of a device's own data.
pub(crate) const MAX_PAGE: u32 = 4096;

/// One page's contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PageData {
    pub(crate) bytes: Box<[u8]>,
    /// One bit per write unit of the page: programmed since the last erase of its sector.
    pub(crate) written: Box<[u64]>,
}

/// A page of a simulated flash.
#[derive(Debug, Clone)]
pub(crate) enum Page {
    /// Every byte erased, no unit programmed; nothing allocated.
    Erased,
    /// Contents, shared until written.
    Data(Arc<PageData>),
}

impl Page {
    /// True when both are the same storage (or both erased): nothing to save between them.
    pub(crate) fn same(&self, other: &Page) -> bool {
        match (self, other) {
            (Page::Erased, Page::Erased) => true,
            (Page::Data(a), Page::Data(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// True when the contents are equal (bytes and programmed units).
    pub(crate) fn equal(&self, other: &Page, geo: &PageGeometry) -> bool {
        self.same(other) || geo.data(self) == geo.data(other)
    }
}

/// Page size and the flash's erased value, with what follows from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageGeometry {
    pub(crate) page_size: usize,
    pub(crate) write_size: usize,
    pub(crate) erased: u8,
    pub(crate) pages: usize,
}

impl PageGeometry {
    pub(crate) fn of(config: &FlashConfig) -> PageGeometry {
        let page = config.sector_size.min(MAX_PAGE).max(config.write_size);
        PageGeometry {
            page_size: page as usize,
            write_size: config.write_size as usize,
            erased: config.erased_value,
            pages: (config.size / page) as usize,
        }
    }

    pub(crate) fn units_per_page(&self) -> usize {
        self.page_size / self.write_size
    }

    /// A page's contents, erased pages materialised.
    pub(crate) fn data(&self, page: &Page) -> PageData {
        match page {
            Page::Erased => self.erased_data(),
            Page::Data(d) => PageData::clone(d),
        }
    }

    pub(crate) fn erased_data(&self) -> PageData {
        PageData {
            bytes: vec![self.erased; self.page_size].into_boxed_slice(),
            written: vec![0; self.units_per_page().div_ceil(64)].into_boxed_slice(),
        }
    }

    /// The page for `bytes` (one page long) as loaded from a file: a unit counts as programmed
    /// iff it does not read as erased.
    pub(crate) fn page_from_bytes(&self, bytes: &[u8]) -> Page {
        if bytes.iter().all(|b| *b == self.erased) {
            return Page::Erased;
        }
        let mut data = self.erased_data();
        data.bytes.copy_from_slice(bytes);
        for (i, unit) in bytes.chunks(self.write_size).enumerate() {
            if unit.iter().any(|b| *b != self.erased)
                && let Some(w) = data.written.get_mut(i / 64)
            {
                *w |= 1 << (i % 64);
            }
        }
        Page::Data(Arc::new(data))
    }

    /// The page itself, or [`Page::Erased`] when it holds nothing, or the pooled copy of
    /// identical contents.
    pub(crate) fn intern(&self, page: &Page) -> Page {
        let Page::Data(d) = page else {
            return Page::Erased;
        };
        if d.written.iter().all(|w| *w == 0) && d.bytes.iter().all(|b| *b == self.erased) {
            return Page::Erased;
        }
        Page::Data(Pool::intern(d))
    }
}

/// A read-only flash image that devices share: each page stays shared until a device writes
/// it. Made with [`crate::SimFlash::to_base`], used by [`crate::SimFlash::from_base`].
#[derive(Debug, Clone)]
pub struct FlashBase {
    pub(crate) config: FlashConfig,
    pub(crate) pages: Arc<[Page]>,
}

impl FlashBase {
    /// The geometry of the flash this base was taken from.
    pub fn config(&self) -> FlashConfig {
        self.config
    }
}

/// Memory held by one simulated flash (see [`crate::SimFlash::memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashMemory {
    /// Pages in the flash.
    pub pages: usize,
    /// Pages that read as erased and hold no allocation.
    pub erased_pages: usize,
    /// Pages whose storage only this flash holds (its own writes).
    pub own_pages: usize,
    /// Pages whose storage is shared (with a base, another device or a snapshot).
    pub shared_pages: usize,
    /// Bytes of the pages only this flash holds.
    pub own_bytes: usize,
}

/// The process's pool of page contents, for [`PageGeometry::intern`]: weak references keyed by
/// a hash of the contents (dead ones purged when the pool has doubled since the last purge).
#[derive(Default)]
struct Pool {
    entries: HashMap<u64, Vec<Weak<PageData>>>,
    len: usize,
    purge_at: usize,
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(|| Mutex::new(Pool::default()));

impl Pool {
    fn intern(data: &Arc<PageData>) -> Arc<PageData> {
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        let key = h.finish();
        // A poisoned pool only loses sharing, never contents.
        let Ok(mut pool) = POOL.lock() else {
            return data.clone();
        };
        let bucket = pool.entries.entry(key).or_default();
        for weak in bucket.iter() {
            if let Some(found) = weak.upgrade()
                && (Arc::ptr_eq(&found, data) || *found == **data)
            {
                return found;
            }
        }
        bucket.retain(|w| w.strong_count() > 0);
        bucket.push(Arc::downgrade(data));
        pool.len += 1;
        if pool.len > pool.purge_at {
            pool.entries.retain(|_, b| {
                b.retain(|w| w.strong_count() > 0);
                !b.is_empty()
            });
            pool.len = pool.entries.values().map(Vec::len).sum();
            pool.purge_at = (pool.len * 2).max(4096);
        }
        data.clone()
    }
}
