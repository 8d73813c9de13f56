//! The console: text to the host's standard output through semihosting (`:tt`), with the
//! [`println!`](crate::println) and [`print!`](crate::print) macros every secure image uses.
//! The non-secure application prints through the call gate, which ends up here.

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
