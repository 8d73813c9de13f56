//! The few CBOR items a report is made of: a writer over a fixed buffer and a strict reader
//! (definite lengths, shortest heads only, no trailing bytes), both panic-free.

use crate::ReportError;

pub(crate) const UINT: u8 = 0;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const TAG: u8 = 6;
pub(crate) const FALSE: u8 = 0xf4;
pub(crate) const TRUE: u8 = 0xf5;

/// Length of the head of an item with argument `v`.
pub(crate) const fn head_len(v: u64) -> usize {
    if v < 24 {
        1
    } else if v <= 0xff {
        2
    } else if v <= 0xffff {
        3
    } else if v <= 0xffff_ffff {
        5
    } else {
        9
    }
}

/// Writes into a fixed buffer; remembers an overflow instead of panicking.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer {
            buf,
            at: 0,
            overflow: false,
        }
    }

    pub(crate) fn raw(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.at..self.at + b.len()) {
            Some(d) => d.copy_from_slice(b),
            None => self.overflow = true,
        }
        self.at += b.len();
    }

    pub(crate) fn head(&mut self, major: u8, v: u64) {
        let m = major << 5;
        match head_len(v) {
            1 => self.raw(&[m | v as u8]),
            2 => self.raw(&[m | 24, v as u8]),
            3 => {
                self.raw(&[m | 25]);
                self.raw(&(v as u16).to_be_bytes());
            }
            5 => {
                self.raw(&[m | 26]);
                self.raw(&(v as u32).to_be_bytes());
            }
            _ => {
                self.raw(&[m | 27]);
                self.raw(&v.to_be_bytes());
            }
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(BYTES, b.len() as u64);
        self.raw(b);
    }

    pub(crate) fn text(&mut self, t: &str) {
        self.head(TEXT, t.len() as u64);
        self.raw(t.as_bytes());
    }

    pub(crate) fn finish(self) -> Result<usize, ReportError> {
        if self.overflow {
            Err(ReportError::BufferTooSmall)
        } else {
            Ok(self.at)
        }
    }
}

/// Reads strictly from hostile bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ReportError> {
        let end = self.at.checked_add(n).ok_or(ReportError::Malformed(what))?;
        let s = self
            .buf
            .get(self.at..end)
            .ok_or(ReportError::Malformed(what))?;
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, ReportError> {
        self.take(1, what)?
            .first()
            .copied()
            .ok_or(ReportError::Malformed(what))
    }

    /// A head of `major`: its argument (shortest encoding required).
    pub(crate) fn head(&mut self, major: u8, what: &'static str) -> Result<u64, ReportError> {
        let b = self.byte(what)?;
        if b >> 5 != major {
            return Err(ReportError::Malformed(what));
        }
        let v = match b & 0x1f {
            n @ 0..=23 => u64::from(n),
            24 => u64::from(self.byte(what)?),
            25 => u64::from(u16::from_be_bytes(arr(self.take(2, what)?, what)?)),
            26 => u64::from(u32::from_be_bytes(arr(self.take(4, what)?, what)?)),
            27 => u64::from_be_bytes(arr(self.take(8, what)?, what)?),
            _ => return Err(ReportError::Malformed(what)),
        };
        let expected = match b & 0x1f {
            0..=23 => 1,
            24 => 2,
            25 => 3,
            26 => 5,
            _ => 9,
        };
        if head_len(v) != expected {
            return Err(ReportError::Malformed(what));
        }
        Ok(v)
    }

    pub(crate) fn uint(&mut self, what: &'static str) -> Result<u64, ReportError> {
        self.head(UINT, what)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ReportError> {
        u32::try_from(self.uint(what)?).map_err(|_| ReportError::Malformed(what))
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ReportError> {
        let n = self.head(BYTES, what)?;
        self.take(
            usize::try_from(n).map_err(|_| ReportError::Malformed(what))?,
            what,
        )
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, ReportError> {
        match self.byte(what)? {
            FALSE => Ok(false),
            TRUE => Ok(true),
            _ => Err(ReportError::Malformed(what)),
        }
    }

    /// Expects `key` next (the map's keys come in one order).
    pub(crate) fn key(&mut self, key: u64, what: &'static str) -> Result<(), ReportError> {
        if self.uint(what)? == key {
            Ok(())
        } else {
            Err(ReportError::Malformed(what))
        }
    }

    pub(crate) fn end(&self, what: &'static str) -> Result<(), ReportError> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(ReportError::Malformed(what))
        }
    }
}

fn arr<const N: usize>(s: &[u8], what: &'static str) -> Result<[u8; N], ReportError> {
    s.try_into().map_err(|_| ReportError::Malformed(what))
}
