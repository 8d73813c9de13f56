//! The swap: exchanges the used sectors of the primary and secondary slots through the scratch
//! sector, one journaled step at a time, so that it resumes from any power cut.
//!
//! For each sector index `i` of the list (used sectors in ascending order, then the trailer
//! sector, which is always last):
//!
//! ```text
//!  step 3k+0  erase scratch,        copy secondary[i] → scratch        record
//!  step 3k+1  erase secondary[i],   copy primary[i]   → secondary[i]   record
//!  step 3k+2  erase primary[i],     copy scratch      → primary[i]     record
//!             (last index: then write the primary trailer for the swap kind)
//! ```
//!
//! Each step's action only reads what the steps before it left in place (the secondary
//! sector is untouched until step 3k+1, the primary sector until 3k+2, and the scratch holds
//! the secondary sector from 3k+0 until the next index), so redoing an interrupted step from
//! its start is always correct. The trailer areas are never copied: the secondary's is erased
//! by step 1 of the trailer sector (which consumes the request), and the primary's is written
//! fresh by the very last step.

use castellan_hal::Flash;
use castellan_image::trailer::SwapType;

use crate::flashio::copy;
use crate::journal;
use castellan_slots::BootError;
use castellan_slots::write_trailer;
use castellan_slots::{FlashLayout, Geometry};
use castellan_slots::{data_end, erase_sector};

/// Number of sector indices a swap covers when the larger image ends at `used_end`: the used
/// sectors plus the trailer sector.
pub(crate) fn entries_for(used_end: u32, g: &Geometry, slot_sectors: u32) -> u32 {
    let used = used_end.div_ceil(g.sector).min(slot_sectors);
    if used < slot_sectors { used + 1 } else { used }
}

/// Sector index of list entry `entry` (the trailer sector is always the last entry).
fn sector_of(entry: u32, entries: u32, slot_sectors: u32) -> u32 {
    if entry + 1 == entries {
        slot_sectors - 1
    } else {
        entry
    }
}

/// Starts a swap: journals it, then runs it.
pub(crate) fn start<F: Flash>(
    flash: &mut F,
    layout: &FlashLayout,
    g: &Geometry,
    kind: SwapType,
    entries: u32,
) -> Result<(), BootError> {
    let status = layout
        .status
        .ok_or(BootError::Layout("no status partition"))?;
    journal::begin(flash, g, status, kind, entries)?;
    run(flash, layout, g, kind, entries, 0)
}

/// Runs (or resumes) a journaled swap from step `from`.
pub(crate) fn run<F: Flash>(
    flash: &mut F,
    layout: &FlashLayout,
    g: &Geometry,
    kind: SwapType,
    entries: u32,
    from: u32,
) -> Result<(), BootError> {
    let status = layout
        .status
        .ok_or(BootError::Layout("no status partition"))?;
    let scratch = layout
        .scratch
        .ok_or(BootError::Layout("no scratch partition"))?;
    let (pri, sec) = (layout.primary, layout.secondary);
    let slot_sectors = layout.slot_sectors(g);
    let last = slot_sectors - 1;
    // Bytes of the last sector before the trailer area.
    let tail = data_end(pri, g) - last * g.sector;
    for step in from..3 * entries {
        let entry = step / 3;
        let i = sector_of(entry, entries, slot_sectors);
        let off = i * g.sector;
        let len = if i == last { tail } else { g.sector };
        match step % 3 {
            0 => {
                erase_sector(flash, g, scratch, 0)?;
                copy(flash, g, (sec, off), (scratch, 0), len)?;
            }
            1 => {
                erase_sector(flash, g, sec, i)?;
                copy(flash, g, (pri, off), (sec, off), len)?;
            }
            _ => {
                erase_sector(flash, g, pri, i)?;
                copy(flash, g, (scratch, 0), (pri, off), len)?;
                if entry + 1 == entries {
                    let confirmed = !matches!(kind, SwapType::Test);
                    write_trailer(flash, g, pri, kind, entries * g.sector, confirmed)?;
                }
            }
        }
        journal::record(flash, g, status, step)?;
    }
    Ok(())
}
