//! A small CBOR (RFC 8949) reader and writer for the subset SUIT uses.
//!
//! The reader borrows from the input, never allocates, never recurses (skipping nested items uses
//! a counter, so hostile nesting cannot exhaust the stack) and accepts only definite lengths, as
//! the draft's canonical encoding requires. Every error is reported as
//! [`SuitError::Malformed`] for the part being read.

use crate::error::{Part, SuitError};

/// CBOR major types.
pub(crate) const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_NINT: u8 = 1;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_TAG: u8 = 6;
pub(crate) const MAJOR_SIMPLE: u8 = 7;

const SIMPLE_FALSE: u64 = 20;
const SIMPLE_TRUE: u64 = 21;
const SIMPLE_NULL: u64 = 22;

/// A cursor over CBOR bytes.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    part: Part,
}

impl<'a> Reader<'a> {
    /// Reads `buf`; errors are attributed to `part`.
    pub(crate) fn new(buf: &'a [u8], part: Part) -> Self {
        Reader { buf, pos: 0, part }
    }

    fn err(&self) -> SuitError {
        SuitError::Malformed(self.part)
    }

    /// Offset of the next item.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte was consumed.
    pub(crate) fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was consumed (no trailing garbage).
    pub(crate) fn finish(&self) -> Result<(), SuitError> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn byte(&mut self) -> Result<u8, SuitError> {
        let b = *self.buf.get(self.pos).ok_or(self.err())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], SuitError> {
        let len = usize::try_from(len).map_err(|_| self.err())?;
        let end = self.pos.checked_add(len).ok_or(self.err())?;
        let out = self.buf.get(self.pos..end).ok_or(self.err())?;
        self.pos = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], SuitError> {
        let raw = self.take(N as u64)?;
        raw.try_into().map_err(|_| self.err())
    }

    /// Major type of the next item without consuming it.
    pub(crate) fn peek_major(&self) -> Result<u8, SuitError> {
        self.buf
            .get(self.pos)
            .map(|b| b >> 5)
            .ok_or(SuitError::Malformed(self.part))
    }

    /// Reads an item head: major type and argument. Indefinite lengths are refused.
    pub(crate) fn head(&mut self) -> Result<(u8, u64), SuitError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take_array()?)),
            26 => u64::from(u32::from_be_bytes(self.take_array()?)),
            27 => u64::from_be_bytes(self.take_array()?),
            _ => return Err(self.err()),
        };
        Ok((major, arg))
    }

    fn expect(&mut self, major: u8) -> Result<u64, SuitError> {
        let (m, arg) = self.head()?;
        if m == major { Ok(arg) } else { Err(self.err()) }
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self) -> Result<u64, SuitError> {
        self.expect(MAJOR_UINT)
    }

    /// An integer (unsigned or negative) that fits an `i64`.
    pub(crate) fn int(&mut self) -> Result<i64, SuitError> {
        let (m, arg) = self.head()?;
        let v = i64::try_from(arg).map_err(|_| self.err())?;
        match m {
            MAJOR_UINT => Ok(v),
            MAJOR_NINT => Ok(-1 - v),
            _ => Err(self.err()),
        }
    }

    /// A byte string.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], SuitError> {
        let len = self.expect(MAJOR_BYTES)?;
        self.take(len)
    }

    /// A text string (UTF-8 checked).
    pub(crate) fn text(&mut self) -> Result<&'a str, SuitError> {
        let len = self.expect(MAJOR_TEXT)?;
        let raw = self.take(len)?;
        core::str::from_utf8(raw).map_err(|_| self.err())
    }

    /// An array head; returns the number of elements.
    pub(crate) fn array(&mut self) -> Result<u64, SuitError> {
        let n = self.expect(MAJOR_ARRAY)?;
        self.check_count(n, 1)?;
        Ok(n)
    }

    /// A map head; returns the number of pairs.
    pub(crate) fn map(&mut self) -> Result<u64, SuitError> {
        let n = self.expect(MAJOR_MAP)?;
        self.check_count(n, 2)?;
        Ok(n)
    }

    /// Each element needs at least one byte: refuse counts the remaining input cannot hold.
    fn check_count(&self, n: u64, per: u64) -> Result<(), SuitError> {
        let remaining = (self.buf.len() - self.pos.min(self.buf.len())) as u64;
        if n.checked_mul(per).is_some_and(|need| need <= remaining) {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// A tag number.
    pub(crate) fn tag(&mut self) -> Result<u64, SuitError> {
        self.expect(MAJOR_TAG)
    }

    /// A boolean.
    pub(crate) fn bool(&mut self) -> Result<bool, SuitError> {
        match self.expect(MAJOR_SIMPLE)? {
            SIMPLE_FALSE => Ok(false),
            SIMPLE_TRUE => Ok(true),
            _ => Err(self.err()),
        }
    }

    /// True if the next item is `null` (without consuming it).
    pub(crate) fn peek_null(&self) -> bool {
        self.buf.get(self.pos) == Some(&(0xe0 | SIMPLE_NULL as u8))
    }

    /// True if the next item is `true` or `false` (without consuming it).
    pub(crate) fn peek_bool(&self) -> bool {
        matches!(self.buf.get(self.pos), Some(0xf4) | Some(0xf5))
    }

    /// Consumes a `null`.
    pub(crate) fn null(&mut self) -> Result<(), SuitError> {
        if self.expect(MAJOR_SIMPLE)? == SIMPLE_NULL {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// Skips one complete item (iteratively, whatever its nesting).
    pub(crate) fn skip(&mut self) -> Result<(), SuitError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let (major, arg) = self.head()?;
            match major {
                MAJOR_BYTES | MAJOR_TEXT => {
                    self.take(arg)?;
                }
                MAJOR_ARRAY => {
                    self.check_count(arg, 1)?;
                    pending = pending.checked_add(arg).ok_or(self.err())?;
                }
                MAJOR_MAP => {
                    self.check_count(arg, 2)?;
                    pending = pending.checked_add(arg * 2).ok_or(self.err())?;
                }
                MAJOR_TAG => pending = pending.checked_add(1).ok_or(self.err())?,
                _ => {}
            }
            // Every pending item needs at least one more byte.
            self.check_count(pending, 1)?;
        }
        Ok(())
    }

    /// Skips one item and returns its complete encoding.
    pub(crate) fn raw_item(&mut self) -> Result<&'a [u8], SuitError> {
        let start = self.pos;
        self.skip()?;
        self.buf.get(start..self.pos).ok_or(self.err())
    }
}

/// Where encoded bytes go: a growable vector on the host, a fixed buffer on the device.
pub(crate) trait Sink {
    /// Appends bytes; fails when a fixed buffer is full.
    fn put(&mut self, bytes: &[u8]) -> Result<(), SuitError>;
}

/// A fixed buffer on the stack.
pub(crate) struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    pub(crate) fn new() -> Self {
        FixedBuf {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> Sink for FixedBuf<N> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SuitError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(SuitError::LimitExceeded(Part::Cose))?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(SuitError::LimitExceeded(Part::Cose))?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

#[cfg(feature = "std")]
impl Sink for std::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), SuitError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// Writes the head of an item in preferred (shortest) form.
pub(crate) fn put_head<S: Sink + ?Sized>(s: &mut S, major: u8, arg: u64) -> Result<(), SuitError> {
    let m = major << 5;
    if arg < 24 {
        s.put(&[m | arg as u8])
    } else if arg <= 0xff {
        s.put(&[m | 24, arg as u8])
    } else if arg <= 0xffff {
        s.put(&[m | 25])?;
        s.put(&(arg as u16).to_be_bytes())
    } else if arg <= 0xffff_ffff {
        s.put(&[m | 26])?;
        s.put(&(arg as u32).to_be_bytes())
    } else {
        s.put(&[m | 27])?;
        s.put(&arg.to_be_bytes())
    }
}

/// Writes a byte string.
pub(crate) fn put_bytes<S: Sink + ?Sized>(s: &mut S, b: &[u8]) -> Result<(), SuitError> {
    put_head(s, MAJOR_BYTES, b.len() as u64)?;
    s.put(b)
}

/// Writes a text string.
pub(crate) fn put_text<S: Sink + ?Sized>(s: &mut S, t: &str) -> Result<(), SuitError> {
    put_head(s, MAJOR_TEXT, t.len() as u64)?;
    s.put(t.as_bytes())
}

/// Writes an integer.
#[cfg(feature = "std")]
pub(crate) fn put_int<S: Sink + ?Sized>(s: &mut S, v: i64) -> Result<(), SuitError> {
    if v >= 0 {
        put_head(s, MAJOR_UINT, v as u64)
    } else {
        put_head(s, MAJOR_NINT, (-1 - v) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_of_every_width() {
        let data = [
            0x17, 0x18, 0x18, 0x19, 0x01, 0x00, 0x1a, 0, 1, 0, 0, 0x20, 0x38, 0x63,
        ];
        let mut r = Reader::new(&data, Part::Manifest);
        assert_eq!(r.uint().unwrap(), 23);
        assert_eq!(r.uint().unwrap(), 24);
        assert_eq!(r.uint().unwrap(), 256);
        assert_eq!(r.uint().unwrap(), 65536);
        assert_eq!(r.int().unwrap(), -1);
        assert_eq!(r.int().unwrap(), -100);
        assert!(r.is_at_end());
    }

    #[test]
    fn refuses_indefinite_lengths_and_reserved_info() {
        for data in [&[0x9f, 0xff][..], &[0x5f, 0xff], &[0x1c]] {
            let mut r = Reader::new(data, Part::Sequence);
            assert_eq!(r.skip(), Err(SuitError::Malformed(Part::Sequence)));
        }
    }

    #[test]
    fn skip_survives_deep_nesting_without_recursion() {
        let mut data = [0x81u8; 100_000];
        data[99_999] = 0x00;
        let mut r = Reader::new(&data, Part::Sequence);
        r.skip().unwrap();
        assert!(r.is_at_end());
    }

    #[test]
    fn refuses_lengths_beyond_the_input() {
        let mut r = Reader::new(
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            Part::Text,
        );
        assert_eq!(r.bytes(), Err(SuitError::Malformed(Part::Text)));
        let mut r = Reader::new(
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            Part::Text,
        );
        assert_eq!(r.skip(), Err(SuitError::Malformed(Part::Text)));
        let mut r = Reader::new(
            &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            Part::Text,
        );
        assert_eq!(r.map(), Err(SuitError::Malformed(Part::Text)));
    }

    #[test]
    fn writer_uses_shortest_heads() {
        let mut b = FixedBuf::<32>::new();
        put_head(&mut b, MAJOR_UINT, 23).unwrap();
        put_head(&mut b, MAJOR_UINT, 24).unwrap();
        put_head(&mut b, MAJOR_BYTES, 300).unwrap();
        assert_eq!(b.as_slice(), &[0x17, 0x18, 0x18, 0x59, 0x01, 0x2c]);
    }
}
