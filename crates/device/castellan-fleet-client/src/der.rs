//! The DER the client writes and reads: a PKCS#10 request for a key of the secure partition
//! (signed through the gate: the private key never leaves it), and the PEM/base64 of the
//! certificate the service returns.
//!
//! ```text
//!  CertificationRequest ::= SEQUENCE {
//!    SEQUENCE { INTEGER 0, Name (CN = device id), SubjectPublicKeyInfo (P-256), [0] {} }
//!    AlgorithmIdentifier ecdsa-with-SHA256,
//!    BIT STRING (ECDSA-Sig-Value) }
//! ```

use castellan_gate_api::{GateError, SecureGate};

use crate::FleetError;

/// DER prefix of a P-256 SubjectPublicKeyInfo (the uncompressed point follows).
const SPKI_P256: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// AlgorithmIdentifier ecdsa-with-SHA256 (no parameters).
const ECDSA_SHA256: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// OID 2.5.4.3 (commonName).
const OID_CN: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];

/// A DER writer over a fixed buffer.
struct Der<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Der<N> {
    const fn new() -> Self {
        Der {
            buf: [0; N],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), FleetError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(FleetError::TooLarge)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// `tag`, the DER length of `content` (short form, or long form up to 65 535), `content`.
    fn tlv(&mut self, tag: u8, content: &[u8]) -> Result<(), FleetError> {
        let n = content.len();
        match n {
            0..=0x7f => self.put(&[tag, n as u8])?,
            0x80..=0xff => self.put(&[tag, 0x81, n as u8])?,
            0x100..=0xffff => self.put(&[tag, 0x82, (n >> 8) as u8, n as u8])?,
            _ => return Err(FleetError::TooLarge),
        }
        self.put(content)
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// A 32-byte big-endian unsigned integer as a DER INTEGER's content (no leading zeros but
/// one, a zero byte first when the top bit is set).
fn integer(v: &[u8], out: &mut Der<40>) -> Result<(), FleetError> {
    let first = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    let v = v.get(first..).ok_or(FleetError::TooLarge)?;
    let mut content = Der::<34>::new();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        content.put(&[0])?;
    }
    content.put(v)?;
    out.tlv(0x02, content.bytes())
}

/// SHA-256, as the platform computes it (the firmware passes the one its TLS stack links, so
/// that the image carries a single implementation).
pub type Sha256Fn = fn(&[u8]) -> [u8; 32];

/// The request for key `key_id` (public key `public`, SEC1 uncompressed) with subject CN
/// `id`, into `out`; its length. The secure partition signs `sha256` of the request info.
pub fn build_csr<G: SecureGate>(
    gate: &mut G,
    sha256: Sha256Fn,
    key_id: u32,
    public: &[u8; 65],
    id: &str,
    out: &mut [u8],
) -> Result<usize, FleetError> {
    let mut atv = Der::<96>::new();
    atv.put(&OID_CN)?;
    atv.tlv(0x0c, id.as_bytes())?;
    let mut rdn = Der::<100>::new();
    rdn.tlv(0x30, atv.bytes())?;
    let mut set = Der::<104>::new();
    set.tlv(0x31, rdn.bytes())?;
    let mut info = Der::<256>::new();
    info.put(&[0x02, 0x01, 0x00])?;
    info.tlv(0x30, set.bytes())?;
    info.put(&SPKI_P256)?;
    info.put(public)?;
    info.put(&[0xa0, 0x00])?;
    let mut tbs = Der::<260>::new();
    tbs.tlv(0x30, info.bytes())?;

    let hash = sha256(tbs.bytes());
    let rs = gate.sign_hash(key_id, &hash).map_err(FleetError::Gate)?;
    let (r, s) = rs.split_at(32);
    let mut ints = Der::<40>::new();
    integer(r, &mut ints)?;
    let mut ints_s = Der::<40>::new();
    integer(s, &mut ints_s)?;
    let mut seq = Der::<80>::new();
    seq.put(ints.bytes())?;
    seq.put(ints_s.bytes())?;
    let mut sig = Der::<84>::new();
    sig.tlv(0x30, seq.bytes())?;
    let mut bits = Der::<86>::new();
    bits.put(&[0x00])?;
    bits.put(sig.bytes())?;

    let mut body = Der::<512>::new();
    body.put(tbs.bytes())?;
    body.put(&ECDSA_SHA256)?;
    body.tlv(0x03, bits.bytes())?;
    let mut csr = Der::<516>::new();
    csr.tlv(0x30, body.bytes())?;
    let n = csr.len;
    out.get_mut(..n)
        .ok_or(FleetError::TooLarge)?
        .copy_from_slice(csr.bytes());
    Ok(n)
}

fn b64(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The DER of the first `CERTIFICATE` block of `pem`, into `out`; its length.
pub fn pem_certificate(pem: &[u8], out: &mut [u8]) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let start = pem.windows(BEGIN.len()).position(|w| w == BEGIN)? + BEGIN.len();
    let body = pem.get(start..)?;
    let end = body.windows(END.len()).position(|w| w == END)?;
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in body.get(..end)? {
        if matches!(c, b'\n' | b'\r' | b' ' | b'\t') {
            continue;
        }
        if c == b'=' {
            break;
        }
        acc = (acc << 6) | b64(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    Some(n)
}

/// True when `der` is one DER SEQUENCE whose length covers it exactly.
pub fn is_sequence(der: &[u8]) -> bool {
    let (len, head) = match der {
        [0x30, l, ..] if *l < 0x80 => (usize::from(*l), 2),
        [0x30, 0x81, l, ..] => (usize::from(*l), 3),
        [0x30, 0x82, a, b, ..] => ((usize::from(*a) << 8) | usize::from(*b), 4),
        _ => return false,
    };
    head + len == der.len()
}

impl From<GateError> for FleetError {
    fn from(e: GateError) -> Self {
        FleetError::Gate(e)
    }
}
