//! Building a PKCS#10 CSR on the device side without the private key: the device's secure
//! service signs, the host only assembles the request around the public key.
//!
//! ```text
//!  device secure service            this module                     manufacturer CA
//!  (key never leaves)   ◀─sign(msg)─ build_csr(pubkey, cn, signer) ──CSR──▶ verify_csr + issue
//! ```

use crate::X509Error;
use crate::signing::{RawSigner, RcgenSigner};

/// Wraps a device's signing callback (`msg -> r || s`) and its public key.
struct ExternalSigner<F> {
    public_key: [u8; 65],
    sign: F,
}

impl<F, E> RawSigner for ExternalSigner<F>
where
    F: Fn(&[u8]) -> Result<[u8; 64], E>,
    E: core::fmt::Display,
{
    type Error = X509Error;

    fn public_key(&self) -> [u8; 65] {
        self.public_key
    }

    fn sign_raw(&self, msg: &[u8]) -> Result<[u8; 64], X509Error> {
        (self.sign)(msg).map_err(|e| X509Error::SignerFailed {
            detail: e.to_string(),
        })
    }
}

/// Build a DER PKCS#10 certification request for `public_key` (P-256, SEC1 or DER SPKI) with
/// subject `CN=common_name` (and `serialNumber=serial` when given), signed by `sign`.
///
/// `sign` receives the DER CertificationRequestInfo (the whole message, not a digest) and must
/// return an ECDSA P-256 / SHA-256 signature as `r || s`; this is what a PSA-style
/// `sign_message(ES256)` call in the device's crypto service returns. The signature is checked
/// against `public_key` before the CSR is returned, so a signer that used another key is caught
/// here rather than at the CA.
pub fn build_csr<F, E>(
    public_key: &[u8],
    common_name: &str,
    serial: Option<&str>,
    sign: F,
) -> Result<Vec<u8>, X509Error>
where
    F: Fn(&[u8]) -> Result<[u8; 64], E>,
    E: core::fmt::Display,
{
    let public_key = crate::key::parse_public_key(public_key)?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(serial) = serial {
        dn.push(
            rcgen::DnType::from_oid(&[2, 5, 4, 5]),
            rcgen::DnValue::PrintableString(
                rcgen::string::PrintableString::try_from(serial).map_err(|_| {
                    X509Error::InvalidName {
                        what: "device serial",
                        reason: "only letters, digits, space and '()+,-./:=? are allowed",
                    }
                })?,
            ),
        );
    }
    dn.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let signer = ExternalSigner { public_key, sign };
    let adapter = RcgenSigner::new(signer);
    let csr = params
        .serialize_request(&adapter)
        .map_err(|e| adapter.error(e))?;
    Ok(csr.der().to_vec())
}
