//! The binary chunk of an MQTT download (`dev/<id>/down/update/chunk/<release_id>`): the
//! offset as a big-endian u64, then the bytes. An empty chunk at `offset = image_size` marks
//! the end of the image.
//!
//! ```text
//!  0        8                     8 + n
//!  │ offset │ bytes (n ≤ chunk_size) │
//! ```

/// Length of the chunk header: the offset as a big-endian u64.
pub const CHUNK_HEADER_LEN: usize = 8;

/// A chunk payload: `offset` (u64 big-endian) followed by `bytes`.
pub fn encode_chunk(offset: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + bytes.len());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Splits a chunk payload into its offset and bytes (`None` when shorter than the header).
pub fn decode_chunk(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (head, bytes) = payload.split_first_chunk::<CHUNK_HEADER_LEN>()?;
    Some((u64::from_be_bytes(*head), bytes))
}
