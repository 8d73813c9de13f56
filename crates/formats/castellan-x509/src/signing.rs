//! Signing X.509 structures with a key this process does not hold: the [`RawSigner`] seam
//! (`msg -> r || s`, ECDSA P-256 / SHA-256) and [`RcgenSigner`], its adapter to rcgen.
//!
//! ```text
//!  rcgen (encodes TBS) ──sign(tbs)──▶ RcgenSigner ──sign_raw──▶ RawSigner ─┬─ device secure service
//!          ◀── DER ECDSA-Sig-Value ── (verified first) ◀── r || s ───────┘  └─ CA key (castellan-pki)
//! ```

use core::cell::RefCell;

use p256::ecdsa::Signature;

use crate::X509Error;
use crate::key::verify_raw;

/// Something that signs `r || s` over a message with a known P-256 public key: a CA key or a
/// device's secure service.
pub trait RawSigner {
    /// The error the signer reports; X.509 failures around it (a bad signature, an encoding
    /// error) are converted into it.
    type Error: From<X509Error>;

    /// The public key, SEC1 uncompressed (65 bytes).
    fn public_key(&self) -> [u8; 65];

    /// Sign `msg` (the whole DER to-be-signed bytes, not a digest) with ECDSA P-256 over
    /// SHA-256; return `r || s`.
    fn sign_raw(&self, msg: &[u8]) -> Result<[u8; 64], Self::Error>;
}

/// Adapts a [`RawSigner`] to rcgen: converts `r || s` to the DER `ECDSA-Sig-Value` X.509 wants,
/// verifies every signature before it is used (a faulty HSM or device cannot slip a bad one
/// into a certificate), and keeps the signer's real error (rcgen only has "remote key error").
pub struct RcgenSigner<S: RawSigner> {
    signer: S,
    public_key: [u8; 65],
    error: RefCell<Option<S::Error>>,
}

impl<S: RawSigner> RcgenSigner<S> {
    /// Wrap `signer`.
    pub fn new(signer: S) -> Self {
        let public_key = signer.public_key();
        RcgenSigner {
            signer,
            public_key,
            error: RefCell::new(None),
        }
    }

    /// Turn an rcgen error into the signer's, preferring the signer's own error when there was
    /// one.
    pub fn error(&self, e: rcgen::Error) -> S::Error {
        self.error.borrow_mut().take().unwrap_or_else(|| {
            X509Error::Encode {
                detail: e.to_string(),
            }
            .into()
        })
    }
}

impl<S: RawSigner> rcgen::PublicKeyData for RcgenSigner<S> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl<S: RawSigner> rcgen::SigningKey for RcgenSigner<S> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let result = self.signer.sign_raw(msg).and_then(|rs| {
            verify_raw(&self.public_key, msg, &rs)?;
            Signature::from_slice(&rs).map_err(|_| X509Error::SignerProducedBadSignature.into())
        });
        match result {
            Ok(sig) => Ok(sig.to_der().as_bytes().to_vec()),
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                Err(rcgen::Error::RemoteKeyError)
            }
        }
    }
}
