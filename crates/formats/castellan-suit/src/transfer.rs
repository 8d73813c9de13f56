//! Moving bytes into components and checking components, with the payload-integrity rules:
//!
//! - a transfer pulls chunks sized so that at most one byte beyond the allowed length is ever
//!   requested; any byte past the image size (or the component's capacity) refuses the payload
//!   before it is written ("endless data", appended bytes);
//! - the payload is hashed while it streams, and committed only when the final size equals the
//!   image size and the digest matches;
//! - image-match and check-content re-read the component at the time of the check, so content
//!   replaced after it was fetched and verified is caught.

use subtle::{Choice, ConstantTimeEq};

use crate::command::Directive;
use crate::digest::{Hasher, SuitDigest};
use crate::error::{PlatformError, SuitError};
use crate::platform::{Component, Platform};

/// Size of the stack buffer used to move payload bytes.
pub const CHUNK_SIZE: usize = 256;

/// Where the bytes of a transfer come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A URI fetched through the platform.
    Uri(&'a str),
    /// Bytes in the authenticated envelope (integrated payload or content parameter).
    Bytes(&'a [u8]),
    /// Another component.
    Component(Component<'a>),
}

impl Source<'_> {
    fn read<P: Platform + ?Sized>(
        &self,
        platform: &mut P,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, PlatformError> {
        match self {
            Source::Uri(uri) => platform.fetch(uri, offset, buf),
            Source::Component(c) => platform.read_component(c, offset, buf),
            Source::Bytes(b) => {
                let start = usize::try_from(offset).map_err(|_| PlatformError::Storage)?;
                let rest = b.get(start..).unwrap_or(&[]);
                let n = rest.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
        }
    }
}

/// The expectations a transfer is checked against.
#[derive(Clone, Copy)]
pub(crate) struct Expect<'a> {
    pub(crate) digest: Option<SuitDigest<'a>>,
    pub(crate) size: Option<u64>,
}

/// Streams `source` into `dst`, enforcing size and digest; commits only on success.
pub(crate) fn transfer<P: Platform + ?Sized>(
    platform: &mut P,
    directive: Directive,
    dst: &Component<'_>,
    source: Source<'_>,
    expect: Expect<'_>,
) -> Result<(), SuitError> {
    let component = dst.index;
    let platform_err = |error| SuitError::Platform {
        directive,
        component,
        error,
    };
    let capacity = platform.capacity(dst);
    let limit = match expect.size {
        Some(size) if size > capacity => {
            return Err(SuitError::PayloadTooLarge {
                component,
                limit: capacity,
            });
        }
        Some(size) => size,
        None => capacity,
    };
    platform.begin_write(dst).map_err(platform_err)?;
    match stream(platform, directive, dst, source, expect, limit) {
        Ok(len) => platform.commit_write(dst, len).map_err(platform_err),
        Err(e) => {
            platform.abort_write(dst);
            Err(e)
        }
    }
}

fn stream<P: Platform + ?Sized>(
    platform: &mut P,
    directive: Directive,
    dst: &Component<'_>,
    source: Source<'_>,
    expect: Expect<'_>,
    limit: u64,
) -> Result<u64, SuitError> {
    let component = dst.index;
    let platform_err = |error| SuitError::Platform {
        directive,
        component,
        error,
    };
    let mut hasher = expect.digest.map(|d| Hasher::new(d.algorithm));
    let mut buf = [0u8; CHUNK_SIZE];
    let mut offset: u64 = 0;
    loop {
        let room = limit.saturating_sub(offset);
        // Ask for at most one byte more than allowed: enough to detect appended data.
        let want = usize::try_from(room.saturating_add(1))
            .unwrap_or(CHUNK_SIZE)
            .min(CHUNK_SIZE);
        let chunk = buf.get_mut(..want).unwrap_or(&mut []);
        let n = source.read(platform, offset, chunk).map_err(platform_err)?;
        if n == 0 {
            break;
        }
        let data = chunk
            .get(..n)
            .ok_or(platform_err(PlatformError::ContractViolation))?;
        if n as u64 > room {
            return Err(SuitError::PayloadTooLarge { component, limit });
        }
        if let Some(h) = hasher.as_mut() {
            h.update(data);
        }
        platform
            .write_component(dst, offset, data)
            .map_err(platform_err)?;
        offset += n as u64;
    }
    if let Some(expected) = expect.size {
        if offset != expected {
            return Err(SuitError::SizeMismatch {
                component,
                expected,
                actual: offset,
            });
        }
    }
    if let (Some(h), Some(d)) = (hasher, expect.digest) {
        if !h.matches(d.bytes) {
            return Err(SuitError::DigestMismatch { component });
        }
    }
    Ok(offset)
}

/// condition-image-match: hashes the component's content as it is now.
pub(crate) fn image_matches<P: Platform + ?Sized>(
    platform: &mut P,
    component: &Component<'_>,
    digest: SuitDigest<'_>,
    size: Option<u64>,
) -> bool {
    let limit = size.unwrap_or_else(|| platform.capacity(component));
    let mut hasher = Hasher::new(digest.algorithm);
    let mut buf = [0u8; CHUNK_SIZE];
    let mut offset: u64 = 0;
    loop {
        let room = limit.saturating_sub(offset);
        let want = usize::try_from(room.saturating_add(1))
            .unwrap_or(CHUNK_SIZE)
            .min(CHUNK_SIZE);
        let chunk = buf.get_mut(..want).unwrap_or(&mut []);
        let n = match platform.read_component(component, offset, chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return false,
        };
        let Some(data) = chunk.get(..n) else {
            return false;
        };
        if n as u64 > room {
            return false; // longer than the image size: not the image
        }
        hasher.update(data);
        offset += n as u64;
    }
    size.is_none_or(|s| s == offset) && hasher.matches(digest.bytes)
}

/// condition-check-content: byte-by-byte comparison without early exit on content bytes.
pub(crate) fn content_matches<P: Platform + ?Sized>(
    platform: &mut P,
    component: &Component<'_>,
    content: &[u8],
) -> bool {
    let mut equal = Choice::from(1);
    let mut buf = [0u8; CHUNK_SIZE];
    let mut offset: usize = 0;
    loop {
        let room = content.len().saturating_sub(offset);
        let want = room.saturating_add(1).min(CHUNK_SIZE);
        let chunk = buf.get_mut(..want).unwrap_or(&mut []);
        let n = match platform.read_component(component, offset as u64, chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return false,
        };
        if n > room {
            return false;
        }
        match (chunk.get(..n), content.get(offset..offset + n)) {
            (Some(got), Some(want)) => equal &= got.ct_eq(want),
            _ => return false,
        }
        offset += n;
    }
    offset == content.len() && bool::from(equal)
}
