//! What the bootloader prints and hands over as text, written piece by piece without
//! `core::fmt` (docs/benchmarks.md, "Bootloader and secure partition"): the same lines as the
//! `Display` impls of the boot crates give, refusals with their figures.

use castellan_boot::{BootError, InstallKind, Measurement, UpgradeAction, UpgradeRefusal};
use castellan_image::{ImageError, Version};
use castellan_platform_an505::console::{self, Console};
use castellan_platform_an505::handoff;

/// Lower-case hex digits.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Where text goes: the console, or the hand-off page's refusal text.
pub(crate) trait Out {
    /// Appends `s`.
    fn put(&mut self, s: &str);

    /// Appends `n` in decimal.
    fn num(&mut self, n: u32) {
        let mut digits = [0u8; 10];
        self.put_ascii(console::decimal_ascii(n, &mut digits));
    }

    /// Appends `n` in lower-case hex with a `0x` prefix (shifts only: no 64-bit division).
    fn hex_num(&mut self, n: u64) {
        let mut digits = [0u8; 16];
        let mut start = digits.len();
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            // `rest & 0xf` is below 16: the cast cannot truncate.
            *slot = HEX_DIGITS
                .get((rest & 0xf) as usize)
                .copied()
                .unwrap_or(b'?');
            start -= 1;
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        self.put("0x");
        self.put_ascii(digits.get(start..).unwrap_or(&[]));
    }

    /// Appends ASCII text (digits).
    fn put_ascii(&mut self, ascii: &[u8]) {
        self.put(core::str::from_utf8(ascii).unwrap_or("?"));
    }
}

impl Out for Console {
    fn put(&mut self, s: &str) {
        self.text(s);
    }
}

/// Text written into a fixed buffer (the hand-off page's refusal text), cut at its capacity.
pub(crate) struct TextOut<'a> {
    dst: &'a mut [u8],
    len: usize,
}

impl<'a> TextOut<'a> {
    pub(crate) fn new(dst: &'a mut [u8]) -> Self {
        TextOut { dst, len: 0 }
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> u32 {
        self.len as u32
    }
}

impl Out for TextOut<'_> {
    fn put(&mut self, s: &str) {
        if let Some(rest) = self.dst.get_mut(self.len..) {
            self.len += handoff::put_text(rest, s) as usize;
        }
    }
}

/// `major.minor.revision+build`.
pub(crate) fn version(o: &mut dyn Out, v: &Version) {
    o.num(v.major.into());
    o.put(".");
    o.num(v.minor.into());
    o.put(".");
    o.num(v.revision.into());
    o.put("+");
    o.num(v.build);
}

/// An image's refusal: its fixed reason.
fn image_error(o: &mut dyn Out, e: &ImageError) {
    o.put(e.reason());
}

/// What the bootloader did about upgrades (as `UpgradeAction`'s `Display`).
pub(crate) fn upgrade(o: &mut dyn Out, a: &UpgradeAction) {
    match a {
        UpgradeAction::None => o.put("none"),
        UpgradeAction::Installed { kind, resumed } => {
            o.put(match kind {
                InstallKind::Test => "test swap",
                InstallKind::Permanent => "permanent swap",
                InstallKind::Revert => "revert swap",
                InstallKind::Overwrite => "overwrite",
            });
            o.put(if *resumed {
                " resumed after a power cut and done"
            } else {
                " done"
            });
        }
        UpgradeAction::Refused(r) => {
            o.put("upgrade refused: ");
            refusal(o, r);
        }
        UpgradeAction::RevertRefused(r) => {
            o.put("revert impossible: ");
            refusal(o, r);
        }
    }
}

/// Why a candidate was not installed (as `UpgradeRefusal`'s `Display`).
pub(crate) fn refusal(o: &mut dyn Out, r: &UpgradeRefusal) {
    match r {
        UpgradeRefusal::Invalid(e) => {
            o.put("image is not valid: ");
            image_error(o, e);
        }
        UpgradeRefusal::TooLarge { needed, slot_size } => {
            o.put("image is larger than the slot: it needs ");
            o.hex_num(*needed);
            o.put(" bytes with the trailer, the slot holds ");
            o.hex_num((*slot_size).into());
        }
        UpgradeRefusal::Rollback { candidate, stored } => {
            o.put("rollback refused: security counter ");
            o.num(*candidate);
            o.put(" is below the confirmed counter ");
            o.num(*stored);
        }
        UpgradeRefusal::Downgrade { candidate, current } => {
            o.put("downgrade refused: version ");
            version(o, candidate);
            o.put(" is older than the running ");
            version(o, current);
        }
        UpgradeRefusal::CounterTooLarge { candidate, max } => {
            o.put("security counter ");
            o.num(*candidate);
            o.put(" exceeds what the OTP counter can hold (");
            o.num(*max);
            o.put(")");
        }
        _ => o.put("upgrade refused"),
    }
}

/// Why the boot stopped (as `BootError`'s `Display`, for the errors the bootloader meets).
pub(crate) fn boot_error(o: &mut dyn Out, e: &BootError) {
    match e {
        BootError::Layout(rule) => {
            o.put("invalid flash or OTP layout: ");
            o.put(rule);
        }
        BootError::PrimaryRollback { image, stored } => {
            o.put("bootloader refused the primary slot image: security counter ");
            o.num(*image);
            o.put(" is below the confirmed counter ");
            o.num(*stored);
            o.put(" (rollback)");
        }
        _ => {
            o.put(e.reason());
            if let Some(image) = e.image_error() {
                o.put(": ");
                image_error(o, image);
            }
        }
    }
}

/// A measurement (as `Measurement`'s `Display`).
pub(crate) fn measurement(o: &mut Console, m: &Measurement) {
    o.put(m.sw_type.as_str());
    o.put(" ");
    version(o, &m.version);
    o.text(" digest ")
        .hex(m.digest.as_bytes())
        .text(" signer ")
        .hex(&m.signer_id);
    match m.security_counter {
        Some(c) => {
            o.put(" security-counter ");
            o.num(c);
        }
        None => o.put(" security-counter none"),
    }
}
