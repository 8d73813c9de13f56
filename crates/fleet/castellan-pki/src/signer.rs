//! CA signing keys: the [`CaSigner`] seam (ECDSA P-256 / SHA-256 over DER to-be-signed bytes),
//! its file implementation [`FileKey`] (PKCS#8 PEM, mode 0600), and the adapter that lets rcgen
//! sign certificates, CRLs and CSRs with any `CaSigner` or with a device's external signer.
//!
//! ```text
//!  Pki ──issue──▶ rcgen (encodes TBS) ──sign(tbs)──▶ CaSigner ─┬─ FileKey   (p256, key file)
//!                                                            └─ Pkcs11Key (HSM / SoftHSM2)
//! ```

use std::fs;
use std::io::Write as _;
use std::path::Path;

use castellan_x509::sec1_uncompressed;
use castellan_x509::signing::{RawSigner, RcgenSigner};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use crate::PkiError;

/// A CA private key that signs with ECDSA P-256 / SHA-256.
///
/// Implementations never hand out the private key: [`FileKey`] keeps it in memory after reading
/// its file, [`crate::Pkcs11Key`] leaves it in the token.
pub trait CaSigner: Send + Sync {
    /// The public key, SEC1 uncompressed (`04 || X || Y`, 65 bytes).
    fn public_key(&self) -> [u8; 65];

    /// Sign `tbs` (the DER to-be-signed bytes of a certificate, CRL or CSR) with ECDSA P-256
    /// over SHA-256; return the signature as `r || s` (64 bytes).
    fn sign(&self, tbs: &[u8]) -> Result<[u8; 64], PkiError>;

    /// Where the key lives, for logs and error messages (never the key itself).
    fn describe(&self) -> String;
}

/// A P-256 key held in memory, read from or written to a PKCS#8 PEM file.
pub struct FileKey {
    key: SigningKey,
    origin: String,
}

impl core::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FileKey({}, <secret>)", self.origin)
    }
}

impl FileKey {
    /// Generate a fresh key from the operating system's random source.
    pub fn generate() -> FileKey {
        use p256::elliptic_curve::Generate as _;
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        FileKey {
            key: SigningKey::generate_from_rng(&mut rng),
            origin: "memory".into(),
        }
    }

    /// Read a PKCS#8 PEM (`BEGIN PRIVATE KEY`) P-256 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<FileKey, PkiError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| PkiError::KeyFile {
            what: "PEM private key",
        })?;
        Ok(FileKey {
            key,
            origin: "PEM".into(),
        })
    }

    /// The key as unencrypted PKCS#8 PEM. The returned string is zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<zeroize::Zeroizing<String>, PkiError> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| PkiError::Encode {
                detail: "PKCS#8 encoding of a P-256 key".into(),
            })?;
        Ok(zeroize::Zeroizing::new(String::from(pem.as_str())))
    }

    /// Read the key file at `path`.
    pub fn load(path: &Path) -> Result<FileKey, PkiError> {
        let pem =
            zeroize::Zeroizing::new(fs::read_to_string(path).map_err(PkiError::io("CA key file"))?);
        let mut key = FileKey::from_pkcs8_pem(&pem).map_err(|_| PkiError::KeyFile {
            what: "CA key file",
        })?;
        key.origin = format!("file {}", path.display());
        Ok(key)
    }

    /// Write the key to `path` as PKCS#8 PEM readable only by its owner (mode 0600). The file
    /// is written beside its final name and renamed into place, so a crash never leaves a
    /// half-written key; an existing file is never overwritten.
    pub fn save(&mut self, path: &Path) -> Result<(), PkiError> {
        if path.exists() {
            return Err(PkiError::Io {
                what: "CA key file (refusing to overwrite an existing key)",
                kind: std::io::ErrorKind::AlreadyExists,
            });
        }
        let pem = self.to_pkcs8_pem()?;
        write_private_file(path, pem.as_bytes())?;
        self.origin = format!("file {}", path.display());
        Ok(())
    }

    /// The underlying p256 signing key (for tests and for device simulations).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl CaSigner for FileKey {
    fn public_key(&self) -> [u8; 65] {
        sec1_uncompressed(self.key.verifying_key())
    }

    fn sign(&self, tbs: &[u8]) -> Result<[u8; 64], PkiError> {
        let sig: Signature = self.key.sign(tbs);
        Ok(sig.to_bytes().into())
    }

    fn describe(&self) -> String {
        self.origin.clone()
    }
}

/// Write `data` to a new file at `path` with mode 0600, via a temporary file and a rename.
pub(crate) fn write_private_file(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_file_mode(path, data, 0o600, "private key file")
}

/// Write `data` to `path` (replacing it) with the given mode, via a temporary file, fsync and a
/// rename.
pub(crate) fn write_file_mode(
    path: &Path,
    data: &[u8],
    mode: u32,
    what: &'static str,
) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(PkiError::io(what))
}

/// A [`CaSigner`] seen as castellan-x509's [`RawSigner`] (errors stay [`PkiError`]).
pub(crate) struct CaRawSigner<'a, S: CaSigner + ?Sized>(&'a S);

impl<S: CaSigner + ?Sized> RawSigner for CaRawSigner<'_, S> {
    type Error = PkiError;

    fn public_key(&self) -> [u8; 65] {
        CaSigner::public_key(self.0)
    }

    fn sign_raw(&self, msg: &[u8]) -> Result<[u8; 64], PkiError> {
        CaSigner::sign(self.0, msg)
    }
}

/// rcgen signs certificates and CRLs with `signer` through castellan-x509's [`RcgenSigner`]:
/// every signature is verified before it is used, and the signer's own error is kept.
pub(crate) fn rcgen_signer<S: CaSigner + ?Sized>(signer: &S) -> RcgenSigner<CaRawSigner<'_, S>> {
    RcgenSigner::new(CaRawSigner(signer))
}

/// A bare public key (SEC1 uncompressed P-256) for rcgen: the subject key of a certificate.
pub(crate) struct SubjectKey(pub(crate) [u8; 65]);

impl rcgen::PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}
