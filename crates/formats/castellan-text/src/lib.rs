//! Text without `core::fmt`, for images where every byte of flash counts (the secure
//! partition): a [`Sink`] takes `&str` pieces; decimal and hex integers are written into it by
//! the methods of `dyn Sink` (one copy of each in an image, whatever the sinks), and a type
//! that describes itself implements [`Describe`] once for both the device and the host.
//!
//! ```text
//!  Describe::describe(&self, &mut dyn Sink) ──▶ TextBuf (fixed buffer: Overflow when full)
//!                                          ──▶ the board's console (firmware)
//!                                          ──▶ core::fmt::Formatter (host Display impls)
//! ```
//!
//! A line is a template and its arguments, as `format_args!` has it but without its machinery:
//! `out.fill("image of {} bytes at {}", &[Piece::Dec(n), Piece::Hex(addr, 8)])` (one constant
//! string per call site; a list of pieces per fragment measured 960 bytes larger in the secure
//! partition). The crate formats nothing with `core::fmt`; it only lets a `Formatter` be a
//! `Sink`, so that a host `Display` can call the same description.
//!
//! Why not `core::fmt`: its `Formatter`, padding and integer code, and the `Display` of every
//! value reached through it, cost the secure partition ≈ 7 KiB of flash (docs/benchmarks.md).
//! Integers are printed with 32-bit arithmetic only: a 64-bit value is divided by ten in 16-bit
//! steps, so no 64-bit division routine is linked either.
#![no_std]

mod buf;
mod num;

pub use buf::TextBuf;
pub use num::{decimal_u64, hex_u64};

/// Why text could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// The buffer is full: the piece did not fit (nothing of it was written).
    Overflow,
    /// The sink refused the text (a `core::fmt::Formatter`'s error).
    Rejected,
    /// A template has more `{}` than arguments were given.
    MissingArgument,
}

/// Where text goes: a fixed buffer, a console, a `Formatter`.
pub trait Sink {
    /// Appends `s` whole, or fails.
    fn put(&mut self, s: &str) -> Result<(), TextError>;
}

/// A value that writes its own description into a [`Sink`].
pub trait Describe {
    /// Writes the description.
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError>;
}

/// One piece of a line, or one argument of a template (see `fill` on `dyn Sink`).
#[derive(Clone, Copy)]
pub enum Piece<'a> {
    /// Text as it is.
    Str(&'a str),
    /// An unsigned integer in decimal.
    Dec(u64),
    /// A signed integer in decimal.
    Int(i64),
    /// `0x` and the lower-case hex digits of the value, at least `.1` digits (zero-padded).
    Hex(u64, usize),
    /// A value's description.
    Text(&'a dyn Describe),
}

impl dyn Sink + '_ {
    /// Appends `n` in decimal.
    pub fn dec(&mut self, n: u64) -> Result<(), TextError> {
        let mut digits = [0u8; 20];
        self.put(decimal_u64(n, &mut digits))
    }

    /// Appends `n` in decimal with a `-` when negative.
    pub fn int(&mut self, n: i64) -> Result<(), TextError> {
        if n < 0 {
            self.put("-")?;
        }
        self.dec(n.unsigned_abs())
    }

    /// Appends `0x` and `n` in lower-case hex, zero-padded to at least `min_digits` digits
    /// (`{n:#x}` is `min_digits` 1, `{n:#010x}` is 8).
    pub fn hex(&mut self, n: u64, min_digits: usize) -> Result<(), TextError> {
        let mut digits = [0u8; 16];
        self.put("0x")?;
        self.put(hex_u64(n, min_digits, &mut digits))
    }

    /// Appends `value`'s description.
    pub fn text(&mut self, value: &dyn Describe) -> Result<(), TextError> {
        value.describe(self)
    }

    /// Appends one piece.
    pub fn piece(&mut self, piece: &Piece<'_>) -> Result<(), TextError> {
        match *piece {
            Piece::Str(s) => self.put(s),
            Piece::Dec(n) => self.dec(n),
            Piece::Int(n) => self.int(n),
            Piece::Hex(n, w) => self.hex(n, w),
            Piece::Text(d) => d.describe(self),
        }
    }

    /// Appends every piece in order.
    pub fn pieces(&mut self, pieces: &[Piece<'_>]) -> Result<(), TextError> {
        pieces.iter().try_for_each(|p| self.piece(p))
    }

    /// Appends `template` with each `{}` in it replaced by the next of `args` (like
    /// `format_args!`, whose templates are also constant text: a call site holds one string
    /// and its arguments, not a piece per fragment). `{}` is the only placeholder; text that
    /// must contain `{}` literally is passed as a [`Piece::Str`] argument. Arguments left over
    /// are ignored; a `{}` without one is [`TextError::MissingArgument`].
    pub fn fill(&mut self, template: &str, args: &[Piece<'_>]) -> Result<(), TextError> {
        let mut args = args.iter();
        let mut rest = template;
        while let Some(at) = rest.as_bytes().windows(2).position(|w| w == b"{}") {
            // `{` is ASCII: `at` and `at + 2` are character boundaries.
            self.put(rest.get(..at).unwrap_or(""))?;
            self.piece(args.next().ok_or(TextError::MissingArgument)?)?;
            rest = rest.get(at + 2..).unwrap_or("");
        }
        self.put(rest)
    }
}

/// A host `Display` impl over [`Describe`]: `fmt::Display::fmt` is
/// `castellan_text::display(self, f)`. Nothing of `core::fmt` is linked unless a `Display` is
/// used.
pub fn display(value: &dyn Describe, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    value.describe(f).map_err(|_| core::fmt::Error)
}

impl Sink for core::fmt::Formatter<'_> {
    fn put(&mut self, s: &str) -> Result<(), TextError> {
        self.write_str(s).map_err(|_| TextError::Rejected)
    }
}

impl Describe for str {
    fn describe(&self, out: &mut dyn Sink) -> Result<(), TextError> {
        out.put(self)
    }
}
