//! A release pipeline for tests: the image key (MCUboot) and the release key (SUIT), signed
//! application images, release envelopes as `castellan-release` builds them, what a device
//! running an image attests, and the body of a release upload.

use base64::Engine as _;
use castellan_image::{
    KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image,
};
use castellan_suit::builder::{ImageSpec, ManifestBuilder, Signer};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The device class of every update test.
pub const CLASS: &str = "sensor-v1";

/// The keys of a release pipeline.
pub struct ReleaseKit {
    /// The image key (MCUboot; the build signs with it).
    pub image_key: SigningKey,
    /// The release key (SUIT; the release manager signs with it).
    pub release_key: p256::ecdsa::SigningKey,
}

impl Default for ReleaseKit {
    fn default() -> Self {
        ReleaseKit::new()
    }
}

impl ReleaseKit {
    /// Fresh random keys.
    pub fn new() -> ReleaseKit {
        let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
        let release_key = {
            use p256::elliptic_curve::Generate as _;
            p256::ecdsa::SigningKey::generate_from_rng(&mut rng)
        };
        ReleaseKit {
            image_key: SigningKey::generate(KeyType::EcdsaP256),
            release_key,
        }
    }

    /// The image key's signer id.
    pub fn signer_id(&self) -> [u8; 32] {
        castellan_image::signer_id(&self.image_key.public_spki_der())
    }

    /// The release trust anchor, hex SEC1.
    pub fn release_public_key_hex(&self) -> String {
        release_key_hex(&self.release_key)
    }

    /// An application image of `version` and security `counter`, signed with the image key.
    pub fn image(&self, version: Version, counter: u32, label: &[u8]) -> Vec<u8> {
        sign_app(&self.image_key, version, counter, label)
    }

    /// The SUIT envelope for `image`, for `class` with `sequence`, signed with the release key.
    pub fn manifest(&self, class: &str, sequence: u64, image: &[u8]) -> Vec<u8> {
        manifest_with(&self.release_key, "castellan", class, sequence, image)
    }
}

/// An application image signed with `key` (PUBKEY TLV, boot record "APP").
pub fn sign_app(key: &SigningKey, version: Version, counter: u32, label: &[u8]) -> Vec<u8> {
    let mut payload = b"castellan test application: ".to_vec();
    payload.extend_from_slice(label);
    payload.resize(3000, 0x5a);
    let opts = SignOptions {
        version,
        pad_header: true,
        public_key_format: PublicKeyFormat::Full,
        security_counter: Some(counter),
        boot_record: Some("APP".into()),
        ..SignOptions::default()
    };
    sign_image(&payload, key, &opts).unwrap()
}

/// A release envelope as `castellan-release` builds it (vendor and class ids, digest and size
/// of the file, URI, fetch + image-match), signed ES256 with `key`.
pub fn manifest_with(
    key: &p256::ecdsa::SigningKey,
    vendor: &str,
    class: &str,
    sequence: u64,
    image: &[u8],
) -> Vec<u8> {
    manifest_for(
        key,
        vendor,
        class,
        sequence,
        Sha256::digest(image).into(),
        image.len() as u64,
    )
}

/// [`manifest_with`] with a chosen digest and size.
pub fn manifest_for(
    key: &p256::ecdsa::SigningKey,
    vendor: &str,
    class: &str,
    sequence: u64,
    digest: [u8; 32],
    size: u64,
) -> Vec<u8> {
    let vendor_id = castellan_suit::ids::vendor_id(vendor);
    let class_id = castellan_suit::ids::class_id(&vendor_id, class);
    let spec = ImageSpec::with_digest(&[b"castellan", b"app"], digest, size)
        .uri(&format!("castellan:release/{class}/{sequence}"));
    ManifestBuilder::new(sequence, &vendor_id, &class_id)
        .image(spec)
        .build(&Signer::Es256(key))
        .unwrap()
}

/// [`manifest_with`] for [`CLASS`], expiring at `expires` (Unix seconds).
pub fn manifest_expiring(
    key: &p256::ecdsa::SigningKey,
    sequence: u64,
    image: &[u8],
    expires: u64,
) -> Vec<u8> {
    let vendor_id = castellan_suit::ids::vendor_id("castellan");
    let class_id = castellan_suit::ids::class_id(&vendor_id, CLASS);
    let spec = ImageSpec::new(&[b"castellan", b"app"], image)
        .uri(&format!("castellan:release/{CLASS}/{sequence}"));
    ManifestBuilder::new(sequence, &vendor_id, &class_id)
        .image(spec)
        .expires(expires)
        .build(&Signer::Es256(key))
        .unwrap()
}

/// What a device running `image` attests: (MCUboot digest, signer id, version).
pub fn measurement_of(image: &[u8]) -> ([u8; 32], [u8; 32], Version) {
    let d = castellan_image::describe(image, 0xFF).unwrap();
    let pubkey = d
        .tlv_area
        .tlvs
        .iter()
        .find(|t| t.kind == castellan_image::tlv::kind::PUBKEY)
        .unwrap();
    let spki = hex::decode(&pubkey.data).unwrap();
    let v = castellan_image::verify(&mut &image[..], TrustedKey::Spki(&spki)).unwrap();
    (
        v.digest.as_bytes().try_into().unwrap(),
        v.signer_id,
        v.version(),
    )
}

/// The body of `POST /api/v1/releases`.
pub fn release_body(class: &str, version: &str, image: &[u8], manifest: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "device_class": class,
        "version": version,
        "image": b64.encode(image),
        "manifest": b64.encode(manifest),
        "notes": "test release",
    })
}

/// The release trust anchor of `key`: its public key, hex uncompressed SEC1 (what the factory
/// gives devices and the release manager puts on the server).
pub fn release_key_hex(key: &p256::ecdsa::SigningKey) -> String {
    hex::encode(key.verifying_key().to_sec1_point(false).as_bytes())
}

/// Version `major.minor.revision+0`.
pub fn v(major: u8, minor: u8, revision: u16) -> Version {
    Version {
        major,
        minor,
        revision,
        build: 0,
    }
}
