//! Releases: the facts read from a signed image, the envelope a device authenticates, the
//! refusals, and a release key inside a PKCS#11 token (SoftHSM2).

use std::path::Path;

use castellan_image::{KeyType, PublicKeyFormat, SignOptions, SigningKey, Version, sign_image};
use castellan_pki::{CaSigner, FileKey, Pkcs11Token, SOFTHSM2_MODULE};
use castellan_release::{
    ReleaseError, ReleaseKey, ReleaseKeySource, ReleaseSpec, build_envelope, image_facts,
};
use castellan_suit::TrustAnchor;

fn image(format: PublicKeyFormat, version: Version, counter: u32) -> (Vec<u8>, SigningKey) {
    let key = SigningKey::generate(KeyType::EcdsaP256);
    let opts = SignOptions {
        version,
        pad_header: true,
        public_key_format: format,
        security_counter: Some(counter),
        ..SignOptions::default()
    };
    (sign_image(&[0x5a; 4096], &key, &opts).unwrap(), key)
}

fn spec(class: &str, sequence: u64) -> ReleaseSpec<'_> {
    ReleaseSpec {
        device_class: class,
        sequence,
        vendor: castellan_suit::ids::DEFAULT_VENDOR,
        description: Some("test release"),
        expires_unix: Some(4_000_000_000),
    }
}

fn anchor(key: &dyn CaSigner) -> TrustAnchor {
    TrustAnchor::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key()).unwrap())
}

#[test]
fn facts_come_from_the_verified_image() {
    let (img, key) = image(PublicKeyFormat::Full, Version::new(2, 1, 0, 7), 3);
    let facts = image_facts(&img).unwrap();
    assert_eq!(facts.version, Version::new(2, 1, 0, 7));
    assert_eq!(facts.security_counter, 3);
    assert_eq!(
        facts.signer_id,
        castellan_image::signer_id(&key.public_spki_der())
    );
    assert_eq!(facts.size, img.len() as u64);
    assert_ne!(facts.measurement, facts.file_sha256);
}

#[test]
fn attack_tampered_image_has_no_facts() {
    let (mut img, _) = image(PublicKeyFormat::Full, Version::new(1, 0, 0, 0), 1);
    img[0x300] ^= 1;
    assert!(matches!(image_facts(&img), Err(ReleaseError::Image(_))));
}

#[test]
fn image_naming_its_key_by_hash_only_is_refused() {
    let (img, _) = image(PublicKeyFormat::Hash, Version::new(1, 0, 0, 0), 1);
    let err = image_facts(&img).unwrap_err();
    assert!(matches!(err, ReleaseError::NoEmbeddedKey), "{err}");
    assert!(err.to_string().contains("PUBKEY"));
}

#[test]
fn envelope_authenticates_with_the_release_key_only_and_names_class_and_digest() {
    let (img, _) = image(PublicKeyFormat::Full, Version::new(2, 0, 0, 0), 1);
    let key = FileKey::generate();
    let env = build_envelope(&img, &spec("sensor-v1", 5), &key).unwrap();
    let manifest = castellan_suit::authenticate(&env, &[anchor(&key)]).unwrap();
    assert_eq!(manifest.sequence_number(), 5);
    assert_eq!(manifest.expires().unwrap(), Some(4_000_000_000));
    let other = FileKey::generate();
    assert!(castellan_suit::authenticate(&env, &[anchor(&other)]).is_err());
    let text = castellan_suit::describe(&env).unwrap();
    let vendor = castellan_suit::ids::vendor_id("castellan");
    let class = castellan_suit::ids::class_id(&vendor, "sensor-v1");
    let digest = castellan_release::image_facts(&img).unwrap().file_sha256;
    for needle in [
        hex::encode(class),
        hex::encode(digest),
        "castellan:release/sensor-v1/5".into(),
    ] {
        assert!(text.contains(&needle), "{needle} not in\n{text}");
    }
}

#[test]
fn release_key_from_a_pem_file_and_a_clear_error_for_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.key");
    let mut k = FileKey::generate();
    k.save(&path).unwrap();
    let loaded = ReleaseKey::load(&ReleaseKeySource::File(path.clone())).unwrap();
    assert_eq!(loaded.signer().public_key(), k.public_key());
    let err = ReleaseKey::load(&ReleaseKeySource::File(dir.path().join("nope.key")))
        .err()
        .unwrap();
    assert!(err.to_string().contains("castellan keygen"), "{err}");
}

#[test]
fn release_key_in_a_pkcs11_token_signs_envelopes() {
    let tokens = castellan_testkit::peers::softhsm::TokenDir::create();
    #[allow(unsafe_code)]
    // Safety: the only test of this binary that touches the environment or SoftHSM2, and it
    // sets the variable before the module is loaded; other tests here do not read it.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", tokens.conf());
    }
    let module = Path::new(SOFTHSM2_MODULE);
    Pkcs11Token::initialize(module, "release", "so-pin", "user-pin").unwrap();
    Pkcs11Token::open(module, "release", "user-pin")
        .unwrap()
        .generate_key("release-key")
        .unwrap();
    let key = ReleaseKey::load(&ReleaseKeySource::Pkcs11 {
        module: module.to_path_buf(),
        token_label: "release".into(),
        pin: "user-pin".into(),
        key_label: "release-key".into(),
    })
    .unwrap();
    let (img, _) = image(PublicKeyFormat::Full, Version::new(2, 0, 0, 0), 1);
    let env = build_envelope(&img, &spec("sensor-v1", 1), key.signer()).unwrap();
    castellan_suit::authenticate(&env, &[anchor(key.signer())]).unwrap();
}
