//! The strict DER reading x509-parser leaves out: the signed envelope of a certificate or CSR
//! with minimal lengths, the signature BIT STRING, serial numbers.

/// DER of the AlgorithmIdentifier ecdsa-with-SHA256 (parameters absent, RFC 5758).
pub(crate) const ECDSA_SHA256_ALGID: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// A strict look at the unsigned outer layer that x509-parser reads leniently:
/// `SEQUENCE { SEQUENCE signed-part, AlgorithmIdentifier, BIT STRING signature }` with minimal
/// DER lengths. Returns (signed part, algorithm, signature BIT STRING
/// content), each as raw bytes.
pub(crate) fn signed_envelope(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    // Trailing bytes after the outer SEQUENCE are reported by the callers.
    let (tag, body, _trailing) = der_tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, _, after1) = der_tlv(body)?;
    let signed = body.get(..body.len() - after1.len())?;
    let (t2, _, after2) = der_tlv(after1)?;
    let alg = after1.get(..after1.len() - after2.len())?;
    let (t3, sig, after3) = der_tlv(after2)?;
    if t1 != 0x30 || t2 != 0x30 || t3 != 0x03 || !after3.is_empty() {
        return None;
    }
    Some((signed, alg, sig))
}

/// One DER TLV with a minimal definite length: (tag, content, what follows).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            if b < 0x80 {
                return None;
            }
            (usize::from(b), rest)
        }
        0x82 => {
            let (&hi, rest) = rest.split_first()?;
            let (&lo, rest) = rest.split_first()?;
            let len = (usize::from(hi) << 8) | usize::from(lo);
            if len < 0x100 {
                return None;
            }
            (len, rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

/// A signature BIT STRING whose unused-bits byte is 0, as X.509 requires.
pub(crate) fn signature_bits(bit_string_content: &[u8]) -> Option<&[u8]> {
    match bit_string_content.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

/// A serial number's magnitude: the big-endian bytes without leading zero bytes (the form the
/// registry and the revocation list compare).
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}
