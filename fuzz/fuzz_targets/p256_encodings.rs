//! Fuzz target for the boot chain's own readers of the two P-256 encodings an image carries
//! (`castellan-p256-cortex-m`, which builds on the host without its assembly): the fixed-form
//! SubjectPublicKeyInfo reader and the strict-DER signature reader, each checked against the
//! `p256` crate's general DER decoders on the same bytes:
//!
//! * a signature the `p256` crate decodes is read with the same `r` and `s`; one read here
//!   whose `r` and `s` are in range is decoded by `p256` too (strict DER has one encoding);
//! * a key is read here exactly when `p256` decodes it and it is in the one uncompressed
//!   encoding, and then to the same point; a point read here that is on the curve is a key
//!   `p256` decodes.
//!
//! The input is tried as it is and, behind the 26-byte key prefix, as the point of a key.
#![no_main]

use castellan_p256_cortex_m::{point_of_spki, signature_of_der, verify_prehash};
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};

/// SubjectPublicKeyInfo DER of an uncompressed P-256 key up to the point (RFC 5480).
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn signature(data: &[u8]) {
    let ours = signature_of_der(data);
    if let Ok(theirs) = Signature::from_der(data) {
        let (r, s) = theirs.split_bytes();
        let (or, os) = ours.expect("a DER signature p256 reads is read here");
        assert_eq!((or.as_slice(), os.as_slice()), (r.as_slice(), s.as_slice()));
    }
    if let Some((r, s)) = ours {
        if Signature::from_scalars(r, s).is_ok() {
            assert!(
                Signature::from_der(data).is_ok(),
                "an in-range signature read here is DER p256 reads"
            );
        }
        // The host has no assembly: the call must refuse, not panic.
        let _ = verify_prehash(&[4; 65], &[0; 32], &r, &s);
    }
}

fn key(spki: &[u8]) {
    let ours = point_of_spki(spki);
    if let Ok(theirs) = VerifyingKey::from_public_key_der(spki) {
        let canonical = theirs
            .to_public_key_der()
            .expect("a key p256 reads encodes");
        if canonical.as_bytes() == spki {
            let point = ours.expect("the uncompressed encoding of a valid key is read here");
            assert_eq!(point, theirs.to_sec1_point(false).as_bytes());
        } else {
            assert_eq!(ours, None, "only the uncompressed encoding is read here");
        }
    }
    if let Some(point) = ours {
        if VerifyingKey::from_sec1_bytes(point).is_ok() {
            assert!(
                VerifyingKey::from_public_key_der(spki).is_ok(),
                "a key read here whose point is on the curve is DER p256 reads"
            );
        }
        let _ = verify_prehash(point, &[0; 32], &[1; 32], &[1; 32]);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signature(data);
    key(data);
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(data);
    key(&spki);
});
