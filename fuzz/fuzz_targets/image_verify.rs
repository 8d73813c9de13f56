//! Fuzz the MCUboot image parser and verifier with arbitrary bytes: it must never panic, and
//! must never accept anything not signed by the trusted key.
#![no_main]

use castellan_image::{TrustedKey, describe, trailer::read_trailer, verify};
use libfuzzer_sys::fuzz_target;

/// A fixed Ed25519 public key (SubjectPublicKeyInfo DER; RFC 8032 test 1): the fuzzer cannot
/// produce a valid signature for it by chance, so acceptance would mean a verification bug.
const SPKI: [u8; 44] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0xd7, 0x5a, 0x98,
    0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1,
    0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    let mut src = data;
    if let Ok(v) = verify(&mut src, TrustedKey::Spki(&SPKI)) {
        panic!("image accepted without a valid signature: {v:?}");
    }
    let _ = describe(data, 0xff);
    let _ = read_trailer(&mut src, 0x00, 8);
});
