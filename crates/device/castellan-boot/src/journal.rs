//! The swap status journal: one header record naming the swap, then one write unit per
//! completed step, in the status partition.
//!
//! ```text
//!  status partition (erased before each swap)
//!  ┌──────────────────────────────┬──────┬──────┬──────┬──────┬─────┬────────────┐
//!  │ header: "CSW1" kind 0 L(u16) │ step │ step │ step │ step │ ... │ erased ... │
//!  │         + bitwise complement │  0   │  1   │  2   │  3   │     │            │
//!  └──────────────────────────────┴──────┴──────┴──────┴──────┴─────┴────────────┘
//!   align_up(16, write) bytes       one write unit each, written after the step's action
//! ```
//!
//! Reading rules, which make every power cut recoverable:
//! - The header is valid only when its 16 bytes match exactly (magic, a known kind, a length
//!   that fits the slot, and the complement of the first 8 bytes in the last 8). A torn header
//!   (prefix written, one unit garbage, rest erased) never matches; nor does a header hit by a
//!   torn erase (which erases a prefix of the first sector). No valid header: no swap in
//!   progress; nothing in the slots has been touched yet for a swap whose header was not
//!   complete, because the header is written before the first step.
//! - A step unit that is not fully erased counts as done, whatever it holds: its write only
//!   starts after the step's action completed, so even a torn (garbage) record proves it. The
//!   next step is the first erased unit; each step's action is idempotent given the steps
//!   before it (see `swap`).
//! - A new swap erases the whole partition (sector by sector, first sector first) before it
//!   writes its header, so stale steps of an earlier swap can never follow a valid header.

use castellan_hal::{Flash, Partition};
use castellan_image::trailer::SwapType;

use castellan_slots::BootError;
use castellan_slots::{COPY_CHUNK, Geometry};

const MAGIC: [u8; 4] = *b"CSW1";
/// What a step unit holds (any non-erased content would do).
const STEP_MARK: u8 = 0x5A;

/// What the journal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// No swap in progress (blank, invalid header, or the last swap completed).
    Idle,
    /// A swap was interrupted and must be finished.
    InProgress {
        /// What the swap does.
        kind: SwapType,
        /// Number of sector indices it swaps.
        entries: u32,
        /// The first step not yet done.
        next: u32,
    },
    /// The last swap completed.
    Done {
        /// What it did.
        kind: SwapType,
    },
}

fn kind_code(kind: SwapType) -> Option<u8> {
    match kind {
        SwapType::Test => Some(1),
        SwapType::Perm => Some(2),
        SwapType::Revert => Some(3),
        _ => None,
    }
}

fn kind_from_code(code: u8) -> Option<SwapType> {
    match code {
        1 => Some(SwapType::Test),
        2 => Some(SwapType::Perm),
        3 => Some(SwapType::Revert),
        _ => None,
    }
}

fn encode_header(kind: SwapType, entries: u32) -> Option<[u8; 16]> {
    let code = kind_code(kind)?;
    let entries = u16::try_from(entries).ok()?.to_le_bytes();
    let head = [
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], code, 0, entries[0], entries[1],
    ];
    let mut h = [0u8; 16];
    for (i, b) in head.iter().enumerate() {
        if let Some(d) = h.get_mut(i) {
            *d = *b;
        }
        if let Some(d) = h.get_mut(i + 8) {
            *d = !*b;
        }
    }
    Some(h)
}

fn decode_header(h: &[u8; 16], slot_sectors: u32) -> Option<(SwapType, u32)> {
    let (head, check) = h.split_at(8);
    if head.iter().zip(check).any(|(a, b)| *a != !*b) || head.get(..4)? != MAGIC {
        return None;
    }
    let kind = kind_from_code(*head.get(4)?)?;
    let entries = u32::from(u16::from_le_bytes([*head.get(6)?, *head.get(7)?]));
    if *head.get(5)? != 0 || entries == 0 || entries > slot_sectors {
        return None;
    }
    Some((kind, entries))
}

/// Reads the journal.
pub(crate) fn read<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    status: Partition,
    slot_sectors: u32,
) -> Result<JournalState, BootError> {
    let mut h = [0u8; 16];
    status.read(flash, 0, &mut h)?;
    let Some((kind, entries)) = decode_header(&h, slot_sectors) else {
        return Ok(JournalState::Idle);
    };
    let steps = 3 * entries;
    let base = g.status_header_len();
    let w = g.write as usize;
    let mut buf = [0u8; COPY_CHUNK];
    let per_chunk = (COPY_CHUNK / w) as u32;
    let mut step = 0u32;
    while step < steps {
        let n = (steps - step).min(per_chunk);
        let chunk = buf
            .get_mut(..n as usize * w)
            .ok_or(BootError::Layout("status read"))?;
        status.read(flash, base + step * g.write, chunk)?;
        for unit in chunk.chunks(w) {
            if unit.iter().all(|b| *b == g.erased) {
                return Ok(JournalState::InProgress {
                    kind,
                    entries,
                    next: step,
                });
            }
            step += 1;
        }
    }
    Ok(JournalState::Done { kind })
}

/// Starts a new swap: erases the journal, then writes its header.
pub(crate) fn begin<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    status: Partition,
    kind: SwapType,
    entries: u32,
) -> Result<(), BootError> {
    let header = encode_header(kind, entries).ok_or(BootError::StatusFull)?;
    let needed = u64::from(g.status_header_len()) + 3 * u64::from(entries) * u64::from(g.write);
    if needed > u64::from(status.size) {
        return Err(BootError::StatusFull);
    }
    // Sector by sector from the first: the header is gone as soon as the first erase starts.
    let mut off = 0;
    while off < status.size {
        status.erase(flash, off, off + g.sector)?;
        off += g.sector;
    }
    let mut buf = [STEP_MARK; COPY_CHUNK];
    let len = g.status_header_len() as usize;
    let rec = buf.get_mut(..len).ok_or(BootError::StatusFull)?;
    for (d, s) in rec.iter_mut().zip(header.iter()) {
        *d = *s;
    }
    status.write(flash, 0, rec)?;
    Ok(())
}

/// Records that `step` is done.
pub(crate) fn record<F: Flash>(
    flash: &mut F,
    g: &Geometry,
    status: Partition,
    step: u32,
) -> Result<(), BootError> {
    let buf = [STEP_MARK; COPY_CHUNK];
    let unit = buf
        .get(..g.write as usize)
        .ok_or(BootError::Layout("write size"))?;
    status.write(flash, g.status_header_len() + step * g.write, unit)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_any_single_byte_change() {
        let h = encode_header(SwapType::Revert, 5).unwrap();
        assert_eq!(decode_header(&h, 8), Some((SwapType::Revert, 5)));
        assert_eq!(decode_header(&h, 4), None, "more entries than sectors");
        for i in 0..16 {
            for v in [0x00, 0xFF, h[i] ^ 1] {
                if v == h[i] {
                    continue;
                }
                let mut bad = h;
                bad[i] = v;
                assert_eq!(decode_header(&bad, 8), None, "byte {i} = {v:#x}");
            }
        }
    }

    #[test]
    fn a_torn_header_is_never_valid() {
        let h = encode_header(SwapType::Test, 3).unwrap();
        for erased in [0x00u8, 0xFF] {
            for cut in 0..16 {
                for garbage in [0x00u8, 0x5A, 0xA5, 0xFF] {
                    let mut torn = [erased; 16];
                    torn[..cut].copy_from_slice(&h[..cut]);
                    if garbage == h[cut] {
                        continue;
                    }
                    torn[cut] = garbage;
                    assert_eq!(decode_header(&torn, 8), None);
                }
            }
        }
    }
}
