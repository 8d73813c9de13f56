//! Helpers shared by the integration tests: keys, signed images, and surgery on TLV areas.
#![allow(dead_code)]
#![cfg(feature = "std")]

use castellan_image::{ImageLayout, KeyType, SignOptions, SigningKey, Version, sign_image};

/// A fresh key of each supported type.
pub fn key(t: KeyType) -> SigningKey {
    SigningKey::generate(t)
}

/// Sign `payload_len` bytes of a pattern with `key`, with a security counter.
pub fn signed(key: &SigningKey, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
    let opts = SignOptions {
        version: Version::new(1, 2, 3, 4),
        header_size: 0x200,
        pad_header: true,
        security_counter: Some(7),
        ..SignOptions::default()
    };
    sign_image(&payload, key, &opts).expect("sign")
}

/// The layout of a well-formed image.
pub fn layout(img: &[u8]) -> ImageLayout {
    ImageLayout::read(&mut &img[..]).expect("layout")
}

/// Append a TLV at the end of the unprotected area (an attacker can do this without
/// invalidating anything signed), fixing up the area length.
pub fn append_unprotected_tlv(img: &[u8], kind: u16, value: &[u8]) -> Vec<u8> {
    let l = layout(img);
    let start = l.unprotected.start as usize;
    let end = l.unprotected.end as usize;
    let mut out = img[..end].to_vec();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    let new_len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&new_len.to_le_bytes());
    out.extend_from_slice(&img[end..]);
    out
}

/// Offset and length of the first unprotected TLV of `kind`.
pub fn find_tlv(img: &[u8], kind: u16) -> (usize, usize) {
    let l = layout(img);
    let mut src = img;
    for t in l.unprotected.iter(&mut src) {
        let t = t.unwrap();
        if t.kind == kind {
            return (t.offset as usize, t.len as usize);
        }
    }
    panic!("no TLV {kind:#x}");
}
