//! The TLS client's provisioned material in trusted storage (command `tls-provision`): the CA
//! certificate the server's chain must lead to, and the device's client certificate.
//!
//! ```text
//!  tls-provision: download buffer CTLS ‖ len ‖ CA cert ‖ len ‖ client cert (DER)
//!                 → ITS 0x7100 (CA length) + 0x7101.. (CA, 512-byte chunks)   write-once
//!                 → ITS 0x7110 (cert length) + 0x7111.. (cert, 512-byte chunks)
//!  tls, mqtt:     both read back from trusted storage; the download buffer is not read
//! ```
//!
//! Trusted storage is the secure partition's (encrypted under a key sealed to this boot
//! chain's CDI_Seal, replay-protected by OTP counters), so what a later run reads is what the
//! factory step wrote, not what the host or the network left in RAM. The CA is written once:
//! the same CA again is accepted, another is refused (the secure partition stores assets for
//! the application and does not itself enforce the rule; the application is the one that
//! writes these assets). The client certificate may be replaced (a new one after a renewal).
//! Chunks are written before the length that makes them valid.

use castellan_gate::client::Veneers;
use castellan_gate::{GateError, ITS_CHUNK, SecureGate as _, psa};

/// Largest certificate kept (four trusted-storage chunks).
pub const CERT_MAX: usize = 2048;
/// Base asset of the CA certificate (its length; chunks follow).
pub const UID_CA: u32 = 0x7100;
/// Base asset of the client certificate (its length; chunks follow).
pub const UID_CLIENT_CERT: u32 = 0x7110;

/// Why provisioned material could not be stored or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustError {
    /// Nothing is provisioned under this asset.
    Missing,
    /// A different CA is already provisioned (the CA is written once).
    OtherCa,
    /// Empty, longer than [`CERT_MAX`], or a stored length that does not fit.
    BadLength(usize),
    /// The gate refused or failed a trusted-storage call.
    Gate(GateError),
}

impl core::fmt::Display for TrustError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrustError::Missing => f.write_str("nothing provisioned in trusted storage"),
            TrustError::OtherCa => f.write_str(
                "another CA is already provisioned in trusted storage (the CA is written once)",
            ),
            TrustError::BadLength(n) => write!(f, "certificate of {n} bytes (1 to {CERT_MAX})"),
            TrustError::Gate(e) => write!(f, "trusted storage: {}", e.name()),
        }
    }
}

impl From<GateError> for TrustError {
    fn from(e: GateError) -> Self {
        if e.status() == psa::ERROR_DOES_NOT_EXIST {
            TrustError::Missing
        } else {
            TrustError::Gate(e)
        }
    }
}

/// Reads the certificate under `base` into `out`; its length.
pub fn load(base: u32, out: &mut [u8; CERT_MAX]) -> Result<usize, TrustError> {
    let mut l = [0u8; 4];
    if Veneers.its_get(base, &mut l)? != 4 {
        return Err(TrustError::BadLength(0));
    }
    let len = u32::from_le_bytes(l) as usize;
    if len == 0 || len > CERT_MAX {
        return Err(TrustError::BadLength(len));
    }
    let mut at = 0;
    for (uid, chunk) in (base + 1..).zip(out[..len].chunks_mut(ITS_CHUNK)) {
        let n = Veneers.its_get(uid, chunk)?;
        if n != chunk.len() {
            return Err(TrustError::BadLength(at + n));
        }
        at += n;
    }
    Ok(len)
}

/// Stores `data` under `base`: the chunks, then the length.
fn store(base: u32, data: &[u8]) -> Result<(), TrustError> {
    if data.is_empty() || data.len() > CERT_MAX {
        return Err(TrustError::BadLength(data.len()));
    }
    for (uid, chunk) in (base + 1..).zip(data.chunks(ITS_CHUNK)) {
        Veneers.its_set(uid, chunk)?;
    }
    Veneers.its_set(base, &(data.len() as u32).to_le_bytes())?;
    Ok(())
}

/// Provisions the CA (write-once: the same CA again is fine) and the client certificate.
pub fn provision(ca: &[u8], cert: &[u8]) -> Result<(), TrustError> {
    let mut stored = [0u8; CERT_MAX];
    match load(UID_CA, &mut stored) {
        Ok(n) if stored.get(..n) == Some(ca) => {}
        Ok(_) => return Err(TrustError::OtherCa),
        Err(TrustError::Missing) => store(UID_CA, ca)?,
        Err(e) => return Err(e),
    }
    store(UID_CLIENT_CERT, cert)
}
