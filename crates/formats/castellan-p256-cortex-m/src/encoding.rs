//! The two encodings an MCUboot image carries for a P-256 check, read without a general DER
//! parser so that a verify-only build links neither `der` nor `spki` nor the `p256` crate:
//!
//! * the PUBKEY TLV: a SubjectPublicKeyInfo for `id-ecPublicKey` on `prime256v1` with an
//!   uncompressed point, whose DER encoding is unique: a fixed 26-byte prefix and the 65-byte
//!   point (what imgtool and Castellan's signer write; any other form is refused);
//! * the signature TLV: `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` in strict DER
//!   (short lengths, minimal non-negative integers, nothing after the sequence).
//!
//! The point itself (on the curve, coordinates below p) and the range of `r` and `s` are
//! checked by the assembly, not here.

/// DER of SubjectPublicKeyInfo { AlgorithmIdentifier { id-ecPublicKey, prime256v1 },
/// BIT STRING (0 unused bits) } up to the point: RFC 5480.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, // SEQUENCE, 89 bytes
    0x30, 0x13, // SEQUENCE, 19 bytes
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // OID 1.2.840.10045.2.1
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // OID 1.2.840.10045.3.1.7
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, 0 unused bits
];

/// Length of an uncompressed SEC1 point of P-256.
pub const POINT_LEN: usize = 65;

/// The uncompressed point of a P-256 SubjectPublicKeyInfo, or `None` when `spki` is anything
/// else (another algorithm or curve, a compressed point, trailing bytes).
pub fn point_of_spki(spki: &[u8]) -> Option<&[u8]> {
    let point = spki.strip_prefix(P256_SPKI_PREFIX.as_slice())?;
    (point.len() == POINT_LEN && point.first() == Some(&0x04)).then_some(point)
}

/// `r` and `s` (big-endian, 32 bytes each) of a strict-DER ECDSA-Sig-Value, or `None`.
pub fn signature_of_der(der: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    // Short-form length only: the largest P-256 signature body is 70 bytes.
    if tag != 0x30 || len >= 0x80 || usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = integer(body)?;
    let (s, rest) = integer(rest)?;
    rest.is_empty().then_some((r, s))
}

/// One minimal, non-negative DER INTEGER of at most 256 bits, left-padded to 32 bytes; and
/// what follows it.
fn integer(der: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if tag != 0x02 || len == 0 || len >= 0x80 {
        return None;
    }
    let (content, rest) = rest.split_at_checked(usize::from(len))?;
    let value = match content {
        // Negative integers are not ECDSA values.
        [first, ..] if *first >= 0x80 => return None,
        // A leading zero only where the next byte would otherwise read as negative.
        [0, next, ..] if *next < 0x80 => return None,
        [0, magnitude @ ..] if !magnitude.is_empty() => magnitude,
        other => other,
    };
    let mut out = [0u8; 32];
    let start = out.len().checked_sub(value.len())?;
    out.get_mut(start..)?.copy_from_slice(value);
    Some((out, rest))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::EncodePublicKey as _;
    use std::vec::Vec;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    #[test]
    fn the_point_of_a_real_p256_spki_is_found() {
        let k = key(7);
        let der = k.verifying_key().to_public_key_der().unwrap();
        let point = point_of_spki(der.as_bytes()).unwrap();
        assert_eq!(point, k.verifying_key().to_sec1_point(false).as_bytes());
    }

    #[test]
    fn attack_other_key_encodings_are_refused() {
        let k = key(7);
        let der = k.verifying_key().to_public_key_der().unwrap();
        let der = der.as_bytes();
        let mut trailing = der.to_vec();
        trailing.push(0);
        let mut other_curve = der.to_vec();
        other_curve[22] ^= 1;
        let mut compressed = der.to_vec();
        compressed[26] = 0x02;
        for bad in [
            &trailing[..],
            &other_curve[..],
            &compressed[..],
            &der[..90],
            &[][..],
        ] {
            assert_eq!(point_of_spki(bad), None);
        }
    }

    #[test]
    fn signatures_read_the_same_as_the_p256_crate() {
        for seed in 1..40u8 {
            let sig: Signature = key(seed).sign_prehash(&[seed; 32]).unwrap();
            let der = sig.to_der();
            let (r, s) = signature_of_der(der.as_bytes()).unwrap();
            let (er, es) = sig.split_bytes();
            assert_eq!((r.as_slice(), s.as_slice()), (er.as_slice(), es.as_slice()));
        }
    }

    fn sig_der(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for v in [r, s] {
            body.extend_from_slice(&[0x02, v.len() as u8]);
            body.extend_from_slice(v);
        }
        let mut der = std::vec![0x30, body.len() as u8];
        der.extend_from_slice(&body);
        der
    }

    #[test]
    fn attack_non_canonical_signature_encodings_are_refused() {
        let one = [1u8];
        assert!(signature_of_der(&sig_der(&one, &one)).is_some());
        // A redundant leading zero, a negative integer, an over-long integer.
        assert_eq!(signature_of_der(&sig_der(&[0, 1], &one)), None);
        assert_eq!(signature_of_der(&sig_der(&[0x80], &one)), None);
        assert_eq!(signature_of_der(&sig_der(&[1; 33], &one)), None);
        // Trailing bytes inside and after the sequence, a wrong outer length, a wrong tag.
        let mut inside = sig_der(&one, &one);
        inside.push(0);
        inside[1] += 1;
        assert_eq!(signature_of_der(&inside), None);
        let mut after = sig_der(&one, &one);
        after.push(0);
        assert_eq!(signature_of_der(&after), None);
        let mut tag = sig_der(&one, &one);
        tag[0] = 0x31;
        assert_eq!(signature_of_der(&tag), None);
        assert_eq!(signature_of_der(&[0x30, 0x81, 0x06]), None);
        assert_eq!(signature_of_der(&[]), None);
    }

    #[test]
    fn a_33_byte_integer_with_its_sign_zero_is_accepted() {
        let mut r = [0xffu8; 33];
        r[0] = 0;
        let (pr, _) = signature_of_der(&sig_der(&r, &[1])).unwrap();
        assert_eq!(pr, [0xff; 32]);
    }
}
