//! The console: text to the host's standard output through semihosting (`:tt`), with the
//! [`println!`](crate::println) and [`print!`](crate::print) macros every secure image uses.
//! The non-secure application prints through the call gate, which ends up here.
//!
//! [`Console::text`], [`Console::decimal`] and [`Console::hex`] print without `core::fmt`:
//! the ROM stage uses only them, so that no formatting machinery is linked into it. [`line`]
//! prints a `castellan-text` template (integers, descriptions), the secure partition's way.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::semihosting::{HostFile, Mode};

/// Handle of `:tt` (`usize::MAX`: not opened yet).
static HANDLE: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Writes text to the host console.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl Console {
    /// Writes raw bytes (text) to the console.
    pub fn write_bytes(&mut self, data: &[u8]) {
        let mut h = HANDLE.load(Ordering::Relaxed);
        if h == usize::MAX {
            match HostFile::open(c":tt", Mode::Write) {
                Some(f) => {
                    h = f.into_raw();
                    HANDLE.store(h, Ordering::Relaxed);
                }
                None => return,
            }
        }
        let block = [h, data.as_ptr() as usize, data.len()];
        // Safety: SYS_WRITE (5) with a block describing `data`, readable during the call.
        unsafe {
            crate::semihosting::call(0x05, block.as_ptr() as usize);
        }
    }
}

impl Console {
    /// Writes text (no formatting machinery involved: see [`crate::console`]).
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.write_bytes(s.as_bytes());
        self
    }

    /// Writes `n` in decimal, without `core::fmt`.
    pub fn decimal(&mut self, n: u32) -> &mut Self {
        let mut digits = [0u8; 10];
        self.write_bytes(decimal_ascii(n, &mut digits));
        self
    }

    /// Writes `bytes` in lower-case hex, without `core::fmt`.
    pub fn hex(&mut self, bytes: &[u8]) -> &mut Self {
        let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
        for chunk in bytes.chunks(16) {
            let mut out = [0u8; 32];
            for (pair, b) in out.chunks_exact_mut(2).zip(chunk) {
                if let [hi, lo] = pair {
                    *hi = digit(b >> 4);
                    *lo = digit(b & 0x0f);
                }
            }
            self.write_bytes(out.get(..2 * chunk.len()).unwrap_or(&[]));
        }
        self
    }
}

impl castellan_text::Sink for Console {
    fn put(&mut self, s: &str) -> Result<(), castellan_text::TextError> {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints `template` with its `{}` replaced by `args` as one line, without `core::fmt` (the
/// secure partition's lines; `castellan-text`'s `fill`).
pub fn line(template: &str, args: &[castellan_text::Piece<'_>]) {
    let out: &mut dyn castellan_text::Sink = &mut Console;
    // The console takes every piece; a missing argument ends the line early.
    let _ = out.fill(template, args);
    Console.write_bytes(b"\n");
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints to the host console (no newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::console::Console, $($arg)*);
    }};
}

/// Prints a line to the host console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::Console.write_bytes(b"\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}

/// Lower-case hex of bytes, for `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The ASCII decimal digits of `n`, written at the end of `digits`, without `core::fmt`.
pub fn decimal_ascii(mut n: u32, digits: &mut [u8; 10]) -> &[u8] {
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `n % 10` is below 10: the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or(&[])
}
