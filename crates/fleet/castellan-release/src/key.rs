//! The release key: a P-256 key in a PKCS#8 PEM file or inside a PKCS#11 token (SoftHSM2, an
//! HSM). Either way it is used through [`castellan_pki::CaSigner`], which never hands out the
//! private key.

use std::path::{Path, PathBuf};

use castellan_pki::{CaSigner, FileKey, Pkcs11Token};

use crate::ReleaseError;

/// Where the release key lives.
#[derive(Clone, Debug)]
pub enum ReleaseKeySource {
    /// A PKCS#8 PEM file (`castellan keygen -t ecdsa-p256`).
    File(PathBuf),
    /// A key labelled `key_label` in the PKCS#11 token `token_label` of `module`.
    Pkcs11 {
        /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// The user PIN.
        pin: String,
        /// The key's label.
        key_label: String,
    },
}

/// A loaded release key.
pub struct ReleaseKey {
    signer: Box<dyn CaSigner>,
}

impl ReleaseKey {
    /// Loads the key from `source`.
    pub fn load(source: &ReleaseKeySource) -> Result<ReleaseKey, ReleaseError> {
        let signer: Box<dyn CaSigner> = match source {
            ReleaseKeySource::File(path) => Box::new(load_file(path)?),
            ReleaseKeySource::Pkcs11 {
                module,
                token_label,
                pin,
                key_label,
            } => {
                let token =
                    Pkcs11Token::open(module, token_label, pin).map_err(ReleaseError::Key)?;
                Box::new(token.key(key_label).map_err(ReleaseError::Key)?)
            }
        };
        Ok(ReleaseKey { signer })
    }

    /// Wraps any signer (tests, keys already in memory).
    pub fn from_signer(signer: Box<dyn CaSigner>) -> ReleaseKey {
        ReleaseKey { signer }
    }

    /// The signer.
    pub fn signer(&self) -> &dyn CaSigner {
        self.signer.as_ref()
    }
}

fn load_file(path: &Path) -> Result<FileKey, ReleaseError> {
    FileKey::load(path).map_err(|source| ReleaseError::KeyFile {
        path: path.to_path_buf(),
        source,
    })
}
