//! The model format: one fixed little-endian header, then the tensors, nothing optional.
//!
//! ```text
//!  off  size  field
//!    0     4  magic "CDTM"
//!    4     2  version (1)
//!    6     2  header length (48)
//!    8     4  total length of the file, header included
//!   12     1  context  k: events the model looks back at (1..=32)
//!   13     1  embed    E: embedding width (1..=64)
//!   14     2  hidden   H: hidden units (1..=128)
//!   16     2  vocab    V: known event ids (1..=4096); class V is "unseen"
//!   18     2  window   W: events in the sliding window score (1..=64)
//!   20    20  f32 scales: embeddings, hidden weights, hidden biases, output weights, output biases
//!   40     4  f32 cap on one event's surprise (nats)
//!   44     4  f32 surprise threshold (nats): only the excess above it counts as anomalous
//!   48  2·V   known ids, u16, strictly increasing
//!       (V+2)·E  i8 embeddings: V known ids, "unseen", and the padding before a trace starts
//!       H·k·E    i8 hidden weights (row per hidden unit, oldest context event first)
//!       2·H      i16 hidden biases
//!       (V+1)·H  i8 output weights (row per class)
//!       2·(V+1)  i16 output biases
//! ```
//!
//! [`Model::parse`] checks every length against the header and the bytes given, every dimension
//! against the scorer's fixed limits and every scale for being finite and positive, then
//! borrows the tensors without copying. The SHA-256 of the whole file ([`model_digest`]) names
//! the model: the value a release binds so the device scores with the model it was shipped.

use sha2::{Digest as _, Sha256};

use crate::ModelError;

/// The first four bytes of every model.
pub const MAGIC: [u8; 4] = *b"CDTM";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 48;
/// Largest context (events looked back at).
pub const MAX_CONTEXT: usize = 32;
/// Largest embedding width.
pub const MAX_EMBED: usize = 64;
/// Largest number of hidden units.
pub const MAX_HIDDEN: usize = 128;
/// Largest number of known event ids.
pub const MAX_VOCAB: usize = 4096;
/// Largest sliding window.
pub const MAX_WINDOW: usize = 64;

/// The shape of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dimensions {
    /// Events the model looks back at.
    pub context: u8,
    /// Embedding width.
    pub embed: u8,
    /// Hidden units.
    pub hidden: u16,
    /// Known event ids (the "unseen" class comes on top).
    pub vocab: u16,
    /// Events in the sliding window score.
    pub window: u16,
}

/// The per-tensor dequantisation scales (real value = stored integer × scale) and the cap on
/// one event's surprise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scales {
    /// Embeddings.
    pub embed: f32,
    /// Hidden weights.
    pub hidden_weights: f32,
    /// Hidden biases.
    pub hidden_bias: f32,
    /// Output weights.
    pub output_weights: f32,
    /// Output biases.
    pub output_bias: f32,
    /// Largest surprise (negative log-likelihood, nats) one event may add.
    pub surprise_cap: f32,
    /// Surprise below which an event counts as ordinary (nats): the anomaly scores add up only
    /// the excess above it.
    pub threshold: f32,
}

/// The tensors of a model, as the encoder takes them (little-endian i16 for biases).
#[derive(Clone, Copy, Debug)]
pub struct ModelParts<'a> {
    /// Shape.
    pub dims: Dimensions,
    /// Scales.
    pub scales: Scales,
    /// Known event ids, strictly increasing (`vocab` of them).
    pub ids: &'a [u16],
    /// `(vocab + 2) × embed`.
    pub embeddings: &'a [i8],
    /// `hidden × context × embed`.
    pub hidden_weights: &'a [i8],
    /// `hidden`.
    pub hidden_bias: &'a [i16],
    /// `(vocab + 1) × hidden`.
    pub output_weights: &'a [i8],
    /// `vocab + 1`.
    pub output_bias: &'a [i16],
}

/// A parsed model, borrowing its tensors from the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    pub(crate) dims: Dimensions,
    pub(crate) scales: Scales,
    pub(crate) ids: &'a [u8],
    pub(crate) embeddings: &'a [u8],
    pub(crate) hidden_weights: &'a [u8],
    pub(crate) hidden_bias: &'a [u8],
    pub(crate) output_weights: &'a [u8],
    pub(crate) output_bias: &'a [u8],
}

/// Section lengths, in bytes, for a shape.
struct Layout {
    ids: usize,
    embeddings: usize,
    hidden_weights: usize,
    hidden_bias: usize,
    output_weights: usize,
    output_bias: usize,
}

impl Layout {
    fn of(d: &Dimensions) -> Self {
        let (k, e, h, v) = (
            usize::from(d.context),
            usize::from(d.embed),
            usize::from(d.hidden),
            usize::from(d.vocab),
        );
        Self {
            ids: 2 * v,
            embeddings: (v + 2) * e,
            hidden_weights: h * k * e,
            hidden_bias: 2 * h,
            output_weights: (v + 1) * h,
            output_bias: 2 * (v + 1),
        }
    }

    fn total(&self) -> usize {
        HEADER_LEN
            + self.ids
            + self.embeddings
            + self.hidden_weights
            + self.hidden_bias
            + self.output_weights
            + self.output_bias
    }
}

/// The encoded length of a model of this shape (valid dimensions assumed).
pub fn encoded_len(dims: &Dimensions) -> usize {
    Layout::of(dims).total()
}

/// SHA-256 of the model's bytes: the model's name, which a release binds.
pub fn model_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn check_dims(d: &Dimensions) -> Result<(), ModelError> {
    let limits: [(&'static str, usize, usize); 5] = [
        ("context", usize::from(d.context), MAX_CONTEXT),
        ("embed", usize::from(d.embed), MAX_EMBED),
        ("hidden", usize::from(d.hidden), MAX_HIDDEN),
        ("vocab", usize::from(d.vocab), MAX_VOCAB),
        ("window", usize::from(d.window), MAX_WINDOW),
    ];
    for (field, value, max) in limits {
        if value == 0 || value > max {
            return Err(ModelError::DimensionOutOfRange {
                field,
                value: u32::try_from(value).unwrap_or(u32::MAX),
                max: u32::try_from(max).unwrap_or(u32::MAX),
            });
        }
    }
    Ok(())
}

fn check_scales(s: &Scales) -> Result<(), ModelError> {
    let scales = [
        ("embedding scale", s.embed),
        ("hidden weight scale", s.hidden_weights),
        ("hidden bias scale", s.hidden_bias),
        ("output weight scale", s.output_weights),
        ("output bias scale", s.output_bias),
        ("surprise cap", s.surprise_cap),
    ];
    for (field, value) in scales {
        if !(value.is_finite() && value > 0.0) {
            return Err(ModelError::BadScale { field });
        }
    }
    if !(s.threshold.is_finite() && s.threshold >= 0.0 && s.threshold < s.surprise_cap) {
        return Err(ModelError::BadScale {
            field: "surprise threshold",
        });
    }
    Ok(())
}

/// Reads the header and sections front to back; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn f32(&mut self) -> Option<f32> {
        self.array().map(f32::from_le_bytes)
    }
}

impl<'a> Model<'a> {
    /// Parse and check a model; the tensors are borrowed from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ModelError> {
        let truncated = ModelError::Truncated { len: bytes.len() };
        let header = bytes.get(..HEADER_LEN).ok_or(truncated)?;
        let mut r = Reader { rest: header };
        if r.array::<4>() != Some(MAGIC) {
            return Err(ModelError::BadMagic);
        }
        let version = r.u16().ok_or(truncated)?;
        if version != VERSION {
            return Err(ModelError::UnsupportedVersion { version });
        }
        let header_len = usize::from(r.u16().ok_or(truncated)?);
        if header_len != HEADER_LEN {
            return Err(ModelError::LengthMismatch {
                expected: HEADER_LEN,
                actual: header_len,
            });
        }
        let total = usize::try_from(r.u32().ok_or(truncated)?).unwrap_or(usize::MAX);
        let dims = Dimensions {
            context: r.u8().ok_or(truncated)?,
            embed: r.u8().ok_or(truncated)?,
            hidden: r.u16().ok_or(truncated)?,
            vocab: r.u16().ok_or(truncated)?,
            window: r.u16().ok_or(truncated)?,
        };
        let scales = Scales {
            embed: r.f32().ok_or(truncated)?,
            hidden_weights: r.f32().ok_or(truncated)?,
            hidden_bias: r.f32().ok_or(truncated)?,
            output_weights: r.f32().ok_or(truncated)?,
            output_bias: r.f32().ok_or(truncated)?,
            surprise_cap: r.f32().ok_or(truncated)?,
            threshold: r.f32().ok_or(truncated)?,
        };
        check_dims(&dims)?;
        check_scales(&scales)?;
        let layout = Layout::of(&dims);
        let expected = layout.total();
        if total != expected || bytes.len() != expected {
            return Err(ModelError::LengthMismatch {
                expected,
                actual: if total == expected {
                    bytes.len()
                } else {
                    total
                },
            });
        }
        let mut body = Reader {
            rest: bytes.get(HEADER_LEN..).unwrap_or_default(),
        };
        let mismatch = ModelError::LengthMismatch {
            expected,
            actual: bytes.len(),
        };
        let model = Self {
            dims,
            scales,
            ids: body.take(layout.ids).ok_or(mismatch)?,
            embeddings: body.take(layout.embeddings).ok_or(mismatch)?,
            hidden_weights: body.take(layout.hidden_weights).ok_or(mismatch)?,
            hidden_bias: body.take(layout.hidden_bias).ok_or(mismatch)?,
            output_weights: body.take(layout.output_weights).ok_or(mismatch)?,
            output_bias: body.take(layout.output_bias).ok_or(mismatch)?,
        };
        let mut previous: Option<u16> = None;
        for (index, id) in model.known_ids().enumerate() {
            if previous.is_some_and(|p| p >= id) {
                return Err(ModelError::UnsortedVocabulary { index });
            }
            previous = Some(id);
        }
        Ok(model)
    }

    /// The model's shape.
    pub fn dims(&self) -> Dimensions {
        self.dims
    }

    /// The model's scales and surprise cap.
    pub fn scales(&self) -> Scales {
        self.scales
    }

    /// The known event ids, in increasing order.
    pub fn known_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.ids.chunks_exact(2).map(le16)
    }

    /// The class of an event id: its position among the known ids, or `vocab` ("unseen").
    pub fn class_of(&self, id: u16) -> u16 {
        let (mut lo, mut hi) = (0usize, usize::from(self.dims.vocab));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.ids.get(2 * mid..2 * mid + 2).map_or(u16::MAX, le16);
            match at.cmp(&id) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return u16::try_from(mid).unwrap_or(self.dims.vocab),
            }
        }
        self.dims.vocab
    }
}

/// A little-endian u16 from (at most) two bytes; missing bytes read as zero.
pub(crate) fn le16(bytes: &[u8]) -> u16 {
    let mut b = [0u8; 2];
    for (dst, src) in b.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u16::from_le_bytes(b)
}

/// Write a model into `out`; returns the number of bytes written ([`encoded_len`]).
pub fn encode(parts: &ModelParts<'_>, out: &mut [u8]) -> Result<usize, ModelError> {
    check_dims(&parts.dims)?;
    check_scales(&parts.scales)?;
    let layout = Layout::of(&parts.dims);
    let total = layout.total();
    let sections = [
        (layout.ids, 2 * parts.ids.len()),
        (layout.embeddings, parts.embeddings.len()),
        (layout.hidden_weights, parts.hidden_weights.len()),
        (layout.hidden_bias, 2 * parts.hidden_bias.len()),
        (layout.output_weights, parts.output_weights.len()),
        (layout.output_bias, 2 * parts.output_bias.len()),
    ];
    for (expected, actual) in sections {
        if expected != actual {
            return Err(ModelError::LengthMismatch { expected, actual });
        }
    }
    if let Some(index) = parts.ids.windows(2).position(|w| w.first() >= w.get(1)) {
        return Err(ModelError::UnsortedVocabulary { index: index + 1 });
    }
    let out = out
        .get_mut(..total)
        .ok_or(ModelError::BufferTooSmall { needed: total })?;
    let mut w = Writer { out, at: 0 };
    let d = &parts.dims;
    let s = &parts.scales;
    w.put(&MAGIC);
    w.put(&VERSION.to_le_bytes());
    w.put(&u16::try_from(HEADER_LEN).unwrap_or(0).to_le_bytes());
    w.put(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
    w.put(&[d.context, d.embed]);
    for v in [d.hidden, d.vocab, d.window] {
        w.put(&v.to_le_bytes());
    }
    for f in [
        s.embed,
        s.hidden_weights,
        s.hidden_bias,
        s.output_weights,
        s.output_bias,
        s.surprise_cap,
        s.threshold,
    ] {
        w.put(&f.to_le_bytes());
    }
    for id in parts.ids {
        w.put(&id.to_le_bytes());
    }
    w.put_i8(parts.embeddings);
    w.put_i8(parts.hidden_weights);
    for b in parts.hidden_bias {
        w.put(&b.to_le_bytes());
    }
    w.put_i8(parts.output_weights);
    for b in parts.output_bias {
        w.put(&b.to_le_bytes());
    }
    Ok(w.at)
}

/// Writes front to back into a buffer already checked to be long enough.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
    fn put_i8(&mut self, values: &[i8]) {
        for v in values {
            self.put(&v.to_le_bytes());
        }
    }
}
