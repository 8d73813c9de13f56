//! The page journal: a device's flash saved as the pages that changed since its last save,
//! appended to `flash.pages`, instead of a whole `flash.bin` each time (what a fleet of
//! simulated devices that save after every secure call needs).
//!
//! ```text
//!  flash.pages = header ("CSFJ", page size u32, pages u32)
//!                batch*:  ("PAGE", index u32, kind u8 [0 erased | 1 data], page bytes if data)*
//!                         ("COMT", records u32)
//! ```
//!
//! A batch counts only with its commit record: a host crash in the middle of an append leaves
//! the flash as it was at the previous save (as the atomic rename of `flash.bin` does). Erased
//! pages are never stored. When the file has grown past twice what the live pages need (plus
//! 1 MiB) it is rewritten whole, atomically (temporary file, rename). As with `flash.bin`, which
//! write units were programmed with erased-value bytes is not saved.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::SimError;
use crate::flash::{FlashConfig, SimFlash};
use crate::pages::{Page, PageGeometry};

/// Name of the page journal in a device directory.
pub const FLASH_JOURNAL_FILE: &str = "flash.pages";

const MAGIC: &[u8; 4] = b"CSFJ";
const PAGE: &[u8; 4] = b"PAGE";
const COMMIT: &[u8; 4] = b"COMT";

fn io(path: &Path) -> impl Fn(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn record(out: &mut Vec<u8>, index: usize, page: &Page) {
    out.extend_from_slice(PAGE);
    out.extend_from_slice(&(index as u32).to_le_bytes());
    match page {
        Page::Erased => out.push(0),
        Page::Data(d) => {
            out.push(1);
            out.extend_from_slice(&d.bytes);
        }
    }
}

fn commit(out: &mut Vec<u8>, records: usize) {
    out.extend_from_slice(COMMIT);
    out.extend_from_slice(&(records as u32).to_le_bytes());
}

/// Writes the whole journal (every page holding data, one batch) atomically.
pub(crate) fn write_full(path: &Path, geo: &PageGeometry, pages: &[Page]) -> Result<(), SimError> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(geo.page_size as u32).to_le_bytes());
    out.extend_from_slice(&(geo.pages as u32).to_le_bytes());
    let mut n = 0;
    for (i, page) in pages.iter().enumerate() {
        if let Page::Data(_) = page {
            record(&mut out, i, page);
            n += 1;
        }
    }
    commit(&mut out, n);
    crate::persist::write_atomic(path, &out)
}

/// Appends the pages of `pages` that are not the storage of `saved` as one batch, or rewrites
/// the journal when it has grown too large. Returns without writing when nothing changed.
pub(crate) fn append(
    path: &Path,
    geo: &PageGeometry,
    pages: &[Page],
    saved: &[Page],
) -> Result<(), SimError> {
    let changed: Vec<usize> = (0..pages.len())
        .filter(|i| match (pages.get(*i), saved.get(*i)) {
            (Some(a), Some(b)) => !a.same(b),
            _ => true,
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let len = fs::metadata(path).map_err(io(path))?.len();
    let live = pages.iter().filter(|p| matches!(p, Page::Data(_))).count() * geo.page_size;
    if len > 2 * live as u64 + (1 << 20) {
        return write_full(path, geo, pages);
    }
    let mut out = Vec::with_capacity(changed.len() * (geo.page_size + 9) + 8);
    for i in &changed {
        if let Some(page) = pages.get(*i) {
            record(&mut out, *i, page);
        }
    }
    commit(&mut out, changed.len());
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(&out).map_err(io(path))?;
    f.sync_data().map_err(io(path))
}

/// Reads a journal back: the flash as of its last committed batch.
pub(crate) fn load(path: &Path, config: FlashConfig) -> Result<(SimFlash, Vec<Page>), SimError> {
    let raw = fs::read(path).map_err(io(path))?;
    let geo = PageGeometry::of(&config);
    let corrupt = |reason: &str| SimError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut r = Reader { raw: &raw, at: 0 };
    if r.take(4) != Some(&MAGIC[..]) {
        return Err(corrupt("not a page journal"));
    }
    if r.u32() != Some(geo.page_size as u32) || r.u32() != Some(geo.pages as u32) {
        return Err(corrupt("page size or count differs from the configuration"));
    }
    let mut pages = vec![Page::Erased; geo.pages];
    let mut batch: Vec<(usize, Page)> = Vec::new();
    // A batch without its commit record (a crash mid-append) ends the journal.
    while let Some(tag) = r.take(4) {
        if tag == PAGE {
            let (Some(index), Some(kind)) = (r.u32(), r.take(1)) else {
                break;
            };
            let page = match kind {
                [0] => Page::Erased,
                [1] => match r.take(geo.page_size) {
                    Some(bytes) => geo.intern(&geo.page_from_bytes(bytes)),
                    None => break,
                },
                _ => return Err(corrupt("unknown page record kind")),
            };
            if index as usize >= geo.pages {
                return Err(corrupt("page index beyond the flash"));
            }
            batch.push((index as usize, page));
        } else if tag == COMMIT {
            if r.u32() != Some(batch.len() as u32) {
                break;
            }
            for (i, page) in batch.drain(..) {
                if let Some(slot) = pages.get_mut(i) {
                    *slot = page;
                }
            }
        } else {
            break;
        }
    }
    let flash = SimFlash::from_pages(config, pages.clone())?;
    Ok((flash, pages))
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.raw.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
}
