//! Signing keys and key files (std): generate, read and write PKCS#8 PEM as imgtool and openssl
//! do, and read public keys from either a public or a private key file.

use std::string::String;
use std::vec::Vec;

use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::key::KeyType;

/// Why a key file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The PEM holds neither an Ed25519, P-256 nor P-384 private key in PKCS#8 form.
    NotAPrivateKey,
    /// The PEM holds no supported public or private key.
    NotAKey,
    /// Encoding the key failed.
    Encode,
}

impl core::fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyFileError::NotAPrivateKey => {
                "not an Ed25519, ECDSA P-256 or P-384 private key in PKCS#8 PEM (BEGIN PRIVATE KEY)"
            }
            KeyFileError::NotAKey => {
                "not an Ed25519, ECDSA P-256 or P-384 key (PKCS#8 private key or SubjectPublicKeyInfo PEM)"
            }
            KeyFileError::Encode => "the key could not be encoded",
        })
    }
}

impl std::error::Error for KeyFileError {}

/// A private signing key.
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// ECDSA P-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384.
    P384(p384::ecdsa::SigningKey),
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SigningKey({}, <secret>)", self.key_type())
    }
}

impl SigningKey {
    /// Generate a new key from the operating system's random source.
    pub fn generate(key_type: KeyType) -> SigningKey {
        use p256::elliptic_curve::Generate;
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        match key_type {
            KeyType::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            KeyType::EcdsaP256 => {
                SigningKey::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
            KeyType::EcdsaP384 => {
                SigningKey::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng))
            }
        }
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        match self {
            SigningKey::Ed25519(_) => KeyType::Ed25519,
            SigningKey::P256(_) => KeyType::EcdsaP256,
            SigningKey::P384(_) => KeyType::EcdsaP384,
        }
    }

    /// Read a PKCS#8 PEM private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, KeyFileError> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Ed25519(k));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P384(k));
        }
        Err(KeyFileError::NotAPrivateKey)
    }

    /// Write the key as unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyFileError> {
        let doc = match self {
            // PKCS#8 v1 (no embedded public key), as openssl and imgtool write it: some
            // readers, Python's `cryptography` among them, refuse the v2 form.
            SigningKey::Ed25519(k) => ed25519_dalek::ed25519::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|_| KeyFileError::Encode)?;
        Ok(String::from(doc.as_str()))
    }

    /// The public key as DER SubjectPublicKeyInfo (what PUBKEY holds and KEYHASH hashes).
    pub fn public_spki_der(&self) -> Vec<u8> {
        let doc = match self {
            SigningKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
            SigningKey::P256(k) => k.verifying_key().to_public_key_der(),
            SigningKey::P384(k) => k.verifying_key().to_public_key_der(),
        };
        // Encoding a valid in-memory key cannot fail; an empty key would fail verification.
        doc.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    /// Sign an image digest the way MCUboot verifies it: Ed25519 over the digest bytes, ECDSA
    /// over the digest as a prehash, DER-encoded.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, KeyFileError> {
        use p256::ecdsa::signature::Signer;
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        match self {
            SigningKey::Ed25519(k) => Ok(k.sign(digest).to_bytes().to_vec()),
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash(digest).map_err(|_| KeyFileError::Encode)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            SigningKey::P384(k) => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(digest).map_err(|_| KeyFileError::Encode)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// PEM of a DER SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
pub fn public_key_pem(spki_der: &[u8]) -> Result<String, KeyFileError> {
    let key = crate::key::PublicKey::from_spki_der(spki_der).map_err(|_| KeyFileError::NotAKey)?;
    let pem = match key {
        crate::key::PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        crate::key::PublicKey::P256(k) => k.to_public_key_pem(LineEnding::LF),
        crate::key::PublicKey::P384(k) => k.to_public_key_pem(LineEnding::LF),
    };
    pem.map_err(|_| KeyFileError::Encode)
}

/// The public key (DER SubjectPublicKeyInfo) in a PEM file holding either a public key or a
/// private key, as imgtool's `-k` accepts both for verification.
pub fn public_spki_from_pem(pem: &str) -> Result<Vec<u8>, KeyFileError> {
    if let Ok(k) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(k.public_spki_der());
    }
    let der = if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
        k.to_public_key_der()
    } else if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        k.to_public_key_der()
    } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_pem(pem) {
        k.to_public_key_der()
    } else {
        return Err(KeyFileError::NotAKey);
    };
    der.map(|d| d.as_bytes().to_vec())
        .map_err(|_| KeyFileError::Encode)
}
