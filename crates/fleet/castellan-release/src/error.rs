//! The one error type of release building.

use core::fmt;

/// Why a release could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The image does not verify (or does not parse) as an MCUboot image.
    Image(castellan_image::ImageError),
    /// The image carries no PUBKEY TLV, so nobody can tell which key signed it.
    NoEmbeddedKey,
    /// The manifest could not be built.
    Suit(castellan_suit::SuitError),
    /// The release key could not sign (file unreadable, token refused, ...).
    Sign(castellan_pki::PkiError),
    /// The release key's file could not be loaded.
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: castellan_pki::PkiError,
    },
    /// The release key could not be found on its PKCS#11 token.
    Key(castellan_pki::PkiError),
    /// An input is not acceptable.
    Invalid(&'static str),
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Image(e) => write!(f, "the image does not verify: {e}"),
            ReleaseError::NoEmbeddedKey => f.write_str(
                "the image carries no public key (PUBKEY TLV): sign it with --public-key-format full",
            ),
            ReleaseError::Suit(e) => write!(f, "the manifest could not be built: {e}"),
            ReleaseError::Sign(e) => write!(f, "the release key could not sign: {e}"),
            ReleaseError::KeyFile { path, source } => write!(
                f,
                "release key: {}: {source} (make one with `castellan keygen -t ecdsa-p256 -k FILE`)",
                path.display()
            ),
            ReleaseError::Key(e) => write!(f, "release key: {e}"),
            ReleaseError::Invalid(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ReleaseError {}
