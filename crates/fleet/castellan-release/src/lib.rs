//! Castellan releases: what `castellan release create` uploads, built the same way by the CLI,
//! the rollout benchmark, the demo and the tests.
//!
//! ```text
//!  MCUboot image (signed by the build with the image key)
//!     ├─ image_facts: verified with the key it embeds (PUBKEY TLV) → version, measurement digest,
//!     │               signer id, security counter, SHA-256 and size of the file
//!     └─ build_envelope: SUIT manifest {sequence, vendor id, class id, component
//!                        ["castellan","app"], digest + size of the file, URI, expiry}
//!                        signed ES256 by the release key (PKCS#8 file or PKCS#11 token)
//! ```
//!
//! Two independent signatures protect an update: the image key's (checked by the bootloader
//! at every boot) and the release key's (checked by the device before a byte is downloaded,
//! and by the server when the release is uploaded). The server never holds the release key.

mod error;
mod key;

use castellan_image::{TrustedKey, Version, tlv::kind};
use castellan_pki::CaSigner;
use castellan_suit::SignatureAlgorithm;
use castellan_suit::builder::{ImageSpec, ManifestBuilder, seal_with_signatures, to_be_signed};
use sha2::{Digest, Sha256};

pub use error::ReleaseError;
pub use key::{ReleaseKey, ReleaseKeySource};

/// The SUIT component every Castellan release installs: the application's update slot.
pub const APP_COMPONENT: [&[u8]; 2] = [b"castellan", b"app"];

/// What a release's image is, read from the image after verifying it with its own key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image version (`major.minor.revision+build`).
    pub version: Version,
    /// The MCUboot hash (SHA-256 over header, payload and protected TLVs): the measurement the
    /// bootloader records and attestation tokens report.
    pub measurement: [u8; 32],
    /// SHA-256 of the image key's SubjectPublicKeyInfo.
    pub signer_id: [u8; 32],
    /// The security counter (0 when the image has none).
    pub security_counter: u32,
    /// SHA-256 of the whole image file: the digest the manifest names.
    pub file_sha256: [u8; 32],
    /// Size of the image file in bytes.
    pub size: u64,
}

/// Verifies `image` with the key it carries (PUBKEY TLV) and reads its facts. Whether that key
/// is one the fleet trusts is the caller's (the server's) question: compare `signer_id`.
pub fn image_facts(image: &[u8]) -> Result<ImageFacts, ReleaseError> {
    let description = castellan_image::describe(image, 0xFF).map_err(ReleaseError::Image)?;
    let pubkey = description
        .tlv_area
        .tlvs_prot
        .iter()
        .chain(description.tlv_area.tlvs.iter())
        .find(|t| t.kind == kind::PUBKEY)
        .ok_or(ReleaseError::NoEmbeddedKey)?;
    let spki = hex::decode(&pubkey.data).map_err(|_| ReleaseError::NoEmbeddedKey)?;
    let verified = castellan_image::verify(&mut &image[..], TrustedKey::Spki(&spki))
        .map_err(ReleaseError::Image)?;
    let measurement: [u8; 32] = verified
        .digest
        .as_bytes()
        .try_into()
        .map_err(|_| ReleaseError::Invalid("the image is not hashed with SHA-256"))?;
    Ok(ImageFacts {
        version: verified.version(),
        measurement,
        signer_id: verified.signer_id,
        security_counter: verified.security_counter.unwrap_or(0),
        file_sha256: Sha256::digest(image).into(),
        size: image.len() as u64,
    })
}

/// What goes into a release's manifest besides the image.
#[derive(Clone, Debug)]
pub struct ReleaseSpec<'a> {
    /// The device class (`sensor-v1`, `an505-v1`, ...).
    pub device_class: &'a str,
    /// The manifest sequence number: above every earlier release of the class.
    pub sequence: u64,
    /// The vendor name the ids derive from ([`castellan_suit::ids::DEFAULT_VENDOR`]).
    pub vendor: &'a str,
    /// A human-readable description (manifest text).
    pub description: Option<&'a str>,
    /// When the release expires (Unix seconds): devices that know the time refuse it from then
    /// on, so an attacker who withholds newer releases cannot keep a fleet on this one for ever
    /// (freeze attack). `None` only for tests of that very refusal's absence.
    pub expires_unix: Option<u64>,
}

/// How long a release stays valid by default: 90 days, as TUF's targets metadata.
pub const DEFAULT_VALIDITY_SECS: u64 = 90 * 24 * 3600;

/// Now + [`DEFAULT_VALIDITY_SECS`].
pub fn default_expiry() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + DEFAULT_VALIDITY_SECS
}

/// The URI a release's manifest names for its payload (devices fetch from the offer, so this
/// is an identifier, not a location).
pub fn payload_uri(device_class: &str, sequence: u64) -> String {
    format!("castellan:release/{device_class}/{sequence}")
}

/// Builds the SUIT envelope for `image` and signs it (ES256) with `key`.
pub fn build_envelope(
    image: &[u8],
    spec: &ReleaseSpec<'_>,
    key: &dyn CaSigner,
) -> Result<Vec<u8>, ReleaseError> {
    if spec.device_class.is_empty() {
        return Err(ReleaseError::Invalid("the device class is empty"));
    }
    let vendor = castellan_suit::ids::vendor_id(spec.vendor);
    let class = castellan_suit::ids::class_id(&vendor, spec.device_class);
    let image_spec = ImageSpec::with_digest(
        &APP_COMPONENT,
        Sha256::digest(image).into(),
        image.len() as u64,
    )
    .uri(&payload_uri(spec.device_class, spec.sequence));
    let mut builder = ManifestBuilder::new(spec.sequence, &vendor, &class).image(image_spec);
    if let Some(d) = spec.description {
        builder = builder.description(d);
    }
    if let Some(t) = spec.expires_unix {
        builder = builder.expires(t);
    }
    let built = builder.build_manifest().map_err(ReleaseError::Suit)?;
    let alg = SignatureAlgorithm::Es256;
    let signature = key
        .sign(&to_be_signed(&built.manifest, alg))
        .map_err(ReleaseError::Sign)?;
    let members = builder.members(&built);
    Ok(seal_with_signatures(
        &built.manifest,
        &members,
        &[(alg, signature.to_vec())],
    ))
}

/// The trust anchor devices hold for `key` (what `PUT /api/v1/release-key` takes), hex SEC1.
pub fn trust_anchor_hex(key: &dyn CaSigner) -> String {
    hex::encode(key.public_key())
}
