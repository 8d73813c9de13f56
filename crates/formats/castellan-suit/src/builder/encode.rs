//! The deterministic CBOR writers the builder's parts share (writing into a `Vec` cannot fail,
//! so the `Result`s of the cbor writers are ignored).

use std::vec::Vec;

use sha2::Digest as _;

use crate::cbor::{self, MAJOR_ARRAY, MAJOR_MAP};

pub(super) fn enc_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len() + 9);
    let _ = cbor::put_bytes(&mut v, b);
    v
}

pub(super) fn enc_int(i: i64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_int(&mut v, i);
    v
}

pub(super) fn enc_uint(v: u64) -> Vec<u8> {
    enc_head(crate::cbor::MAJOR_UINT, v)
}

pub(super) fn enc_head(major: u8, n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_head(&mut v, major, n);
    v
}

pub(super) fn enc_text(t: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = cbor::put_text(&mut v, t);
    v
}

/// A deterministic CBOR map from already-encoded keys and values (sorted bytewise by key).
pub(super) fn enc_map(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut v = enc_head(MAJOR_MAP, entries.len() as u64);
    for (k, val) in entries {
        v.extend_from_slice(&k);
        v.extend_from_slice(&val);
    }
    v
}

/// Encodes a `SUIT_Digest` with SHA-256 over `data`.
pub fn sha256_suit_digest(data: &[u8]) -> Vec<u8> {
    suit_digest(-16, &sha2::Sha256::digest(data))
}

pub(super) fn suit_digest(alg: i64, bytes: &[u8]) -> Vec<u8> {
    let mut v = enc_head(MAJOR_ARRAY, 2);
    v.extend(enc_int(alg));
    v.extend(enc_bytes(bytes));
    v
}

/// Encodes a component identifier (`[* bstr]`).
pub fn component_id(segments: &[&[u8]]) -> Vec<u8> {
    let mut v = enc_head(MAJOR_ARRAY, segments.len() as u64);
    for s in segments {
        v.extend(enc_bytes(s));
    }
    v
}
