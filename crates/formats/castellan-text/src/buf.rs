//! [`TextBuf`]: text into a fixed byte buffer.

use crate::{Sink, TextError};

/// Text written into a caller's fixed buffer. A piece that does not fit whole is refused
/// ([`TextError::Overflow`]) and nothing of it is written, so the buffer always holds whole
/// pieces (valid UTF-8).
pub struct TextBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TextBuf<'a> {
    /// An empty text over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        TextBuf { buf, len: 0 }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The text written.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The text as a `dyn Sink`, for the integer writers.
    pub fn sink(&mut self) -> &mut dyn Sink {
        self
    }
}

impl Sink for TextBuf<'_> {
    fn put(&mut self, s: &str) -> Result<(), TextError> {
        let end = self.len.checked_add(s.len()).ok_or(TextError::Overflow)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(TextError::Overflow)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
