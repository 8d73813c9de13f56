//! A PKCS#10 certificate request built on the device for a key of the secure partition
//! (command `tls-csr <serial>`): the factory sends it to the fleet service, which checks its
//! self-signature and issues the IDevID. The signature is made by the secure partition (gate
//! `SignHash` over the SHA-256 of the request info): the private key never leaves it.
//!
//! ```text
//!  CertificationRequest ::= SEQUENCE {
//!    SEQUENCE { INTEGER 0, Name (CN = serial), SubjectPublicKeyInfo (P-256), [0] {} }
//!    AlgorithmIdentifier ecdsa-with-SHA256,
//!    BIT STRING (ECDSA-Sig-Value DER) }
//! ```

use castellan_gate::client::Veneers;
use castellan_gate::{GateError, SecureGate as _};
use p256_tls::ecdsa::Signature;
use sha2_tls::Digest as _;

/// Largest request built.
pub const CSR_MAX: usize = 512;
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

/// Why no request was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrError {
    /// The serial is not `[A-Za-z0-9._-]{1,64}`.
    BadSerial,
    /// The request does not fit [`CSR_MAX`].
    TooLarge,
    /// The secure partition refused or failed the signature or the public key.
    Gate(GateError),
    /// The partition's signature is not a valid P-256 `r ‖ s`.
    BadSignature,
}

impl From<GateError> for CsrError {
    fn from(e: GateError) -> Self {
        CsrError::Gate(e)
    }
}

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

    fn put(&mut self, bytes: &[u8]) -> Result<(), CsrError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(CsrError::TooLarge)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// `tag`, the DER length of `content` (short form, or long form up to 65 535), `content`.
    fn tlv(&mut self, tag: u8, content: &[u8]) -> Result<(), CsrError> {
        let n = content.len();
        match n {
            0..=0x7f => self.put(&[tag, n as u8])?,
            0x80..=0xff => self.put(&[tag, 0x81, n as u8])?,
            0x100..=0xffff => self.put(&[tag, 0x82, (n >> 8) as u8, n as u8])?,
            _ => return Err(CsrError::TooLarge),
        }
        self.put(content)
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

fn valid_serial(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request for key `key_id` (whose public key is `public`, SEC1 uncompressed) with
/// subject CN `serial`, into `out`; its length.
pub fn build(
    key_id: u32,
    public: &[u8; 65],
    serial: &str,
    out: &mut [u8; CSR_MAX],
) -> Result<usize, CsrError> {
    if !valid_serial(serial) {
        return Err(CsrError::BadSerial);
    }
    // Name: SEQUENCE { SET { SEQUENCE { commonName, UTF8String serial } } }
    let mut atv = Der::<96>::new();
    atv.put(&OID_CN)?;
    atv.tlv(0x0c, serial.as_bytes())?;
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

    let hash: [u8; 32] = sha2_tls::Sha256::digest(tbs.bytes()).into();
    let rs = Veneers.sign_hash(key_id, &hash)?;
    let sig = Signature::from_slice(&rs).map_err(|_| CsrError::BadSignature)?;
    let sig = sig.to_der();
    let mut bits = Der::<80>::new();
    bits.put(&[0x00])?;
    bits.put(sig.as_bytes())?;

    let mut body = Der::<CSR_MAX>::new();
    body.put(tbs.bytes())?;
    body.put(&ECDSA_SHA256)?;
    body.tlv(0x03, bits.bytes())?;
    let mut csr = Der::<CSR_MAX>::new();
    csr.tlv(0x30, body.bytes())?;
    let n = csr.len;
    out.get_mut(..n)
        .ok_or(CsrError::TooLarge)?
        .copy_from_slice(csr.bytes());
    Ok(n)
}
