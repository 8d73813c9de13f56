//! Minimal deterministic CBOR *encoder* (RFC 8949 preferred serialisation: shortest heads,
//! definite lengths) writing into a caller slice. No heap, no panics.
//!
//! A [`Writer`] keeps counting when the slice is full, so one pass both writes and tells the
//! exact size the caller needs; a writer over an empty slice is a pure size calculator.

/// CBOR major types used by the encoder.
#[derive(Clone, Copy)]
pub(crate) enum Major {
    Unsigned = 0,
    Negative = 1,
    Bytes = 2,
    Text = 3,
    Array = 4,
    Map = 5,
    Tag = 6,
}

/// Writes CBOR items into a slice; counts past its end instead of failing.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer filling `buf` from its start.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written (or that would have been written) so far.
    pub(crate) fn len(&self) -> usize {
        self.pos
    }

    /// `Ok(len)` when everything fitted, else the exact size needed.
    pub(crate) fn finish(self) -> Result<usize, crate::Error> {
        if self.pos <= self.buf.len() {
            Ok(self.pos)
        } else {
            Err(crate::Error::BufferTooSmall {
                needed: self.pos,
                available: self.buf.len(),
            })
        }
    }

    /// Appends raw bytes (already-encoded CBOR or a byte string's content).
    pub(crate) fn raw(&mut self, data: &[u8]) {
        let end = self.pos.saturating_add(data.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(data);
        }
        self.pos = end;
    }

    /// An item head: major type and argument, shortest form.
    pub(crate) fn head(&mut self, major: Major, arg: u64) {
        let m = (major as u8) << 5;
        let be = arg.to_be_bytes();
        match arg {
            0..=23 => self.raw(&[m | arg as u8]),
            24..=0xff => self.raw(&[m | 24, arg as u8]),
            0x100..=0xffff => {
                self.raw(&[m | 25]);
                self.raw(be.get(6..).unwrap_or_default());
            }
            0x1_0000..=0xffff_ffff => {
                self.raw(&[m | 26]);
                self.raw(be.get(4..).unwrap_or_default());
            }
            _ => {
                self.raw(&[m | 27]);
                self.raw(&be);
            }
        }
    }

    /// A signed integer (major type 0 or 1).
    pub(crate) fn int(&mut self, v: i64) {
        if v >= 0 {
            self.head(Major::Unsigned, v.unsigned_abs());
        } else {
            // -1 - v without overflow: !v is -1 - v in two's complement.
            self.head(Major::Negative, (!v) as u64);
        }
    }

    /// A byte string.
    pub(crate) fn bytes(&mut self, data: &[u8]) {
        self.head(Major::Bytes, data.len() as u64);
        self.raw(data);
    }

    /// A text string.
    pub(crate) fn text(&mut self, s: &str) {
        self.head(Major::Text, s.len() as u64);
        self.raw(s.as_bytes());
    }

    /// An array header of `n` items.
    pub(crate) fn array(&mut self, n: usize) {
        self.head(Major::Array, n as u64);
    }

    /// A map header of `n` pairs.
    pub(crate) fn map(&mut self, n: usize) {
        self.head(Major::Map, n as u64);
    }

    /// A tag.
    pub(crate) fn tag(&mut self, t: u64) {
        self.head(Major::Tag, t);
    }
}

/// Size of the head of an item whose argument is `arg`.
pub(crate) const fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        f(&mut w);
        let n = w.finish().unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn heads_use_shortest_form_rfc8949_appendix_a() {
        assert_eq!(enc(|w| w.int(0)), [0x00]);
        assert_eq!(enc(|w| w.int(23)), [0x17]);
        assert_eq!(enc(|w| w.int(24)), [0x18, 0x18]);
        assert_eq!(enc(|w| w.int(1000)), [0x19, 0x03, 0xe8]);
        assert_eq!(enc(|w| w.int(1_000_000)), [0x1a, 0x00, 0x0f, 0x42, 0x40]);
        assert_eq!(
            enc(|w| w.int(i64::MAX)),
            [0x1b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(enc(|w| w.int(-1)), [0x20]);
        assert_eq!(enc(|w| w.int(-7)), [0x26]);
        assert_eq!(enc(|w| w.int(-1000)), [0x39, 0x03, 0xe7]);
        assert_eq!(enc(|w| w.int(i64::MIN))[0], 0x3b);
        assert_eq!(enc(|w| w.text("IETF")), [0x64, 0x49, 0x45, 0x54, 0x46]);
        assert_eq!(enc(|w| w.tag(18)), [0xd2]);
        assert_eq!(head_len(23), 1);
        assert_eq!(head_len(256), 3);
    }

    #[test]
    fn overflow_counts_exact_size_without_panicking() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.bytes(&[7u8; 40]);
        assert_eq!(w.len(), 42);
        assert_eq!(
            w.finish(),
            Err(crate::Error::BufferTooSmall {
                needed: 42,
                available: 3
            })
        );
    }
}
