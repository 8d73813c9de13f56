//! TLS client configuration for a device whose private key it cannot see: rustls asks a
//! [`DeviceKey`] to sign the handshake (ECDSA P-256 with SHA-256, DER signature), so the key
//! stays in the crypto service.
//!
//! ```text
//!  rustls handshake ── CertificateVerify message ──▶ DeviceSigner::sign
//!                                                     SHA-256(message) ──▶ DeviceKey::sign_digest
//!                                                     (crypto service sign_hash, r‖s) ──▶ DER
//! ```
//!
//! TLS 1.3 and TLS 1.2 (AEAD suites only, rustls's safe defaults) with the aws-lc-rs provider.
//! The server is verified against the CA bundle the factory stored (`mqtt-ca.pem`), never the
//! system roots.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::sign::{CertifiedKey, Signer, SigningKey};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, SignatureAlgorithm, SignatureScheme};

use crate::error::AgentError;
use crate::identity::DeviceKey;

/// Parses every certificate of a PEM bundle.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, AgentError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| AgentError::tls("bad PEM certificate", e))?;
    if certs.is_empty() {
        return Err(AgentError::Tls {
            what: "no certificate in the PEM bundle".into(),
            cause: None,
        });
    }
    Ok(certs)
}

/// The trust anchors of a CA bundle.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, AgentError> {
    let mut roots = RootCertStore::empty();
    for c in certificates_from_pem(ca_pem)? {
        roots
            .add(c)
            .map_err(|e| AgentError::tls("bad CA certificate", e))?;
    }
    Ok(roots)
}

/// A rustls client configuration that trusts `ca_pem` and authenticates with `chain_pem` (leaf
/// first, then intermediates) whose private key is `key`.
pub fn client_config(
    ca_pem: &str,
    chain_pem: &str,
    key: Arc<dyn DeviceKey>,
) -> Result<Arc<ClientConfig>, AgentError> {
    let chain = certificates_from_pem(chain_pem)?;
    let certified = Arc::new(CertifiedKey::new(chain, Arc::new(DeviceSigningKey { key })));
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::tls("protocol versions", e))?
        .with_root_certificates(root_store(ca_pem)?)
        .with_client_cert_resolver(Arc::new(FixedClientCert(certified)));
    Ok(Arc::new(config))
}

/// A rustls client configuration without client authentication (the factory station's HTTPS).
pub fn server_only_config(ca_pem: &str) -> Result<ClientConfig, AgentError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::tls("protocol versions", e))?
        .with_root_certificates(root_store(ca_pem)?)
        .with_no_client_auth())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Always presents the one certificate the device has.
#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// rustls's view of a [`DeviceKey`].
#[derive(Debug)]
struct DeviceSigningKey {
    key: Arc<dyn DeviceKey>,
}

impl SigningKey for DeviceSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        if offered.contains(&SignatureScheme::ECDSA_NISTP256_SHA256) {
            Some(Box::new(DeviceSigner {
                key: self.key.clone(),
            }))
        } else {
            None
        }
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

/// Signs one handshake message with the device key.
#[derive(Debug)]
struct DeviceSigner {
    key: Arc<dyn DeviceKey>,
}

impl Signer for DeviceSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let raw = self
            .key
            .sign_digest(&digest)
            .map_err(|e| rustls::Error::General(format!("device key: {e}")))?;
        let sig = p256::ecdsa::Signature::from_slice(&raw)
            .map_err(|_| rustls::Error::General("device key: malformed signature".into()))?;
        Ok(sig.to_der().as_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}
