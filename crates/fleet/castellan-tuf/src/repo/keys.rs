//! Role keys: the PKCS#8 key files `castellan keygen` writes (Ed25519 or ECDSA P-256), and
//! P-256 keys that never leave a PKCS#11 token (the online keys in an HSM, through
//! `castellan-pki`'s [`CaSigner`]), as TUF public keys and signers.
//!
//! TUF key forms: Ed25519 is `{"keytype": "ed25519", "scheme": "ed25519"}` with the raw public
//! key in hex; P-256 is `{"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256"}` with the PEM
//! SubjectPublicKeyInfo. The key id is the SHA-256 of the key's canonical JSON (what
//! securesystemslib and python-tuf compute).

use std::path::Path;
use std::sync::Arc;

use castellan_pki::CaSigner;
use p256::pkcs8::EncodePublicKey as _;

use castellan_image::{KeyType, SigningKey, public_key_pem, public_spki_from_pem};
use sha2::Digest as _;
use sigstore_tuf::Key;

use crate::error::{TufError, io};

/// Length of the DER prefix of an Ed25519 SubjectPublicKeyInfo before the raw key.
const ED25519_SPKI_PREFIX: usize = 12;

/// A private key that signs TUF roles.
pub struct RoleSigner {
    key: Secret,
    spki: Vec<u8>,
    public: Key,
    keyid: String,
}

/// Where a role key's private half is.
enum Secret {
    /// In memory, from a PKCS#8 file.
    Pkcs8(Box<SigningKey>),
    /// In a token (HSM): ECDSA P-256 over SHA-256, `r || s`.
    Token(Arc<dyn CaSigner>),
}

impl std::fmt::Debug for RoleSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleSigner")
            .field("keyid", &self.keyid)
            .field("held", &self.describe())
            .finish()
    }
}

impl RoleSigner {
    /// A signer over a PKCS#8 PEM key (Ed25519 or ECDSA P-256).
    pub fn from_pem(pem: &str) -> Result<Self, TufError> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| TufError::Key(format!("not a PKCS#8 private key: {e}")))?;
        Self::new(key)
    }

    /// A signer over the key file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, TufError> {
        let pem = std::fs::read_to_string(path).map_err(|e| io(path.display(), e))?;
        Self::from_pem(&pem).map_err(|e| TufError::Key(format!("{}: {e}", path.display())))
    }

    /// A fresh Ed25519 signer (the repository's online keys).
    pub fn generate() -> Result<Self, TufError> {
        Self::new(SigningKey::generate(KeyType::Ed25519))
    }

    fn new(key: SigningKey) -> Result<Self, TufError> {
        let spki = key.public_spki_der();
        Self::with_spki(Secret::Pkcs8(Box::new(key)), spki)
    }

    fn with_spki(key: Secret, spki: Vec<u8>) -> Result<Self, TufError> {
        let public = public_key(&spki)?;
        let keyid = key_id(&public)?;
        Ok(Self {
            key,
            spki,
            public,
            keyid,
        })
    }

    /// The public key as PEM (`BEGIN PUBLIC KEY`), what `castellan repo key add` reads.
    pub fn public_pem(&self) -> Result<String, TufError> {
        public_key_pem(&self.spki).map_err(|e| TufError::Key(e.to_string()))
    }

    /// A signer over a P-256 key that stays in a token (`castellan_pki::Pkcs11Key`): the TUF
    /// key is `ecdsa-sha2-nistp256`, signatures are DER.
    pub fn from_ca_signer(signer: Arc<dyn CaSigner>) -> Result<Self, TufError> {
        let spki = p256::ecdsa::VerifyingKey::from_sec1_bytes(&signer.public_key())
            .ok()
            .and_then(|k| k.to_public_key_der().ok())
            .ok_or_else(|| TufError::Key(format!("{}: not a P-256 key", signer.describe())))?;
        Self::with_spki(Secret::Token(signer), spki.as_bytes().to_vec())
    }

    /// Where the private key is (a file's key in memory, or a token key's label), never the key.
    pub fn describe(&self) -> String {
        match &self.key {
            Secret::Pkcs8(_) => format!("key {} (PKCS#8)", self.keyid),
            Secret::Token(t) => format!("key {} ({})", self.keyid, t.describe()),
        }
    }

    /// The key as PKCS#8 PEM (to store an online key); a token's key cannot leave it.
    pub fn to_pem(&self) -> Result<String, TufError> {
        match &self.key {
            Secret::Pkcs8(key) => key.to_pkcs8_pem().map_err(|e| TufError::Key(e.to_string())),
            Secret::Token(t) => Err(TufError::Key(format!(
                "{} cannot be exported from its token",
                t.describe()
            ))),
        }
    }

    /// The TUF public key.
    pub fn public(&self) -> &Key {
        &self.public
    }

    /// The TUF key id.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// Sign canonical metadata bytes; the signature in hex.
    pub fn sign(&self, canonical: &[u8]) -> Result<String, TufError> {
        let key = match &self.key {
            Secret::Pkcs8(key) => key,
            Secret::Token(token) => {
                // The token signs SHA-256 of the message; TUF wants the DER form.
                let rs = token
                    .sign(canonical)
                    .map_err(|e| TufError::Key(format!("{}: {e}", token.describe())))?;
                let signature = p256::ecdsa::Signature::from_slice(&rs).map_err(|_| {
                    TufError::Key(format!("{}: not a P-256 signature", token.describe()))
                })?;
                return Ok(hex::encode(signature.to_der().as_bytes()));
            }
        };
        let signature = match key.key_type() {
            // Ed25519 signs the message itself.
            KeyType::Ed25519 => key.sign_digest(canonical),
            // ecdsa-sha2-nistp256 signs SHA-256 of the message (DER signature).
            KeyType::EcdsaP256 => key.sign_digest(&sha2::Sha256::digest(canonical)),
            other => {
                return Err(TufError::Key(format!(
                    "{other} keys are not used for TUF roles (Ed25519 or ECDSA P-256)"
                )));
            }
        };
        signature
            .map(hex::encode)
            .map_err(|e| TufError::Key(e.to_string()))
    }
}

/// The TUF public key of a PEM file holding a public or a private key.
pub fn public_key_from_file(path: &Path) -> Result<Key, TufError> {
    let pem = std::fs::read_to_string(path).map_err(|e| io(path.display(), e))?;
    let spki = public_spki_from_pem(&pem)
        .map_err(|e| TufError::Key(format!("{}: {e}", path.display())))?;
    public_key(&spki)
}

/// The TUF public key of a DER SubjectPublicKeyInfo.
pub fn public_key(spki_der: &[u8]) -> Result<Key, TufError> {
    let json = match KeyType::of_spki_der(spki_der) {
        Ok(KeyType::Ed25519) => {
            let raw = spki_der
                .get(ED25519_SPKI_PREFIX..)
                .ok_or_else(|| TufError::Key("short Ed25519 key".into()))?;
            serde_json::json!({"keytype": "ed25519", "scheme": "ed25519",
                "keyval": {"public": hex::encode(raw)}})
        }
        Ok(KeyType::EcdsaP256) => {
            let pem = public_key_pem(spki_der).map_err(|e| TufError::Key(e.to_string()))?;
            serde_json::json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                "keyval": {"public": pem}})
        }
        _ => {
            return Err(TufError::Key(
                "TUF role keys are Ed25519 or ECDSA P-256".into(),
            ));
        }
    };
    Ok(serde_json::from_value(json)?)
}

/// The TUF key id of a public key.
pub fn key_id(key: &Key) -> Result<String, TufError> {
    key.key_id().map_err(|e| TufError::Key(e.to_string()))
}
