//! The algorithm features: an image signed with an algorithm this build leaves out is refused
//! with `UnsupportedAlgorithm` naming it (never a panic, never another verification path), and
//! the same image verifies when the feature is on.
//!
//! These tests need no `std` feature: images are assembled here and signed with the
//! dev-dependencies (which every build of the tests has), so they run under every combination,
//! e.g. `cargo test -p castellan-image --no-default-features --features p256 --test algorithms`.

use castellan_image::header::{IMAGE_MAGIC, ImageHeader};
use castellan_image::tlv::{TLV_INFO_MAGIC, kind};
use castellan_image::{
    Algorithm, HashAlg, ImageError, KeyType, TrustedKey, Version, check_trusted_key, signer_id,
    verify,
};
use sha2::Digest as _;

/// DER SubjectPublicKeyInfo prefixes (RFC 8410, RFC 5480) before the raw key bytes.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P384_SPKI_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// A signing key of any type, from the dev-dependency crates (not from this crate's features).
enum Key {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl Key {
    fn new(t: KeyType) -> Key {
        match t {
            KeyType::Ed25519 => Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[0x11; 32])),
            KeyType::EcdsaP256 => {
                Key::P256(p256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap())
            }
            KeyType::EcdsaP384 => {
                Key::P384(p384::ecdsa::SigningKey::from_slice(&[0x33; 48]).unwrap())
            }
        }
    }

    fn spki(&self) -> Vec<u8> {
        let (prefix, raw) = match self {
            Key::Ed25519(k) => (ED25519_SPKI_PREFIX, k.verifying_key().to_bytes().to_vec()),
            Key::P256(k) => (
                P256_SPKI_PREFIX,
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            Key::P384(k) => (
                P384_SPKI_PREFIX,
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
        };
        [prefix, &raw].concat()
    }

    /// Sign an image digest as MCUboot verifies it (Ed25519 over the digest, ECDSA prehash DER).
    fn sign(&self, digest: &[u8]) -> (u16, Vec<u8>) {
        use ed25519_dalek::Signer as _;
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        match self {
            Key::Ed25519(k) => (kind::ED25519, k.sign(digest).to_bytes().to_vec()),
            Key::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash(digest).unwrap();
                (kind::ECDSA_SIG, sig.to_der().as_bytes().to_vec())
            }
            Key::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign_prehash(digest).unwrap();
                (kind::ECDSA_SIG, sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
        HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
        HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

fn push_tlv(area: &mut Vec<u8>, k: u16, value: &[u8]) {
    area.extend_from_slice(&k.to_le_bytes());
    area.extend_from_slice(&(value.len() as u16).to_le_bytes());
    area.extend_from_slice(value);
}

/// A complete, correctly signed MCUboot image: header, payload, unprotected TLVs (hash, PUBKEY,
/// signature).
fn image(key: &Key, alg: HashAlg) -> Vec<u8> {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 13 + 5) as u8).collect();
    let header = ImageHeader {
        magic: IMAGE_MAGIC,
        load_addr: 0,
        hdr_size: 0x20,
        protected_tlv_size: 0,
        img_size: payload.len() as u32,
        flags: 0,
        version: Version::new(1, 0, 0, 0),
    };
    let mut img = header.encode().to_vec();
    img.extend_from_slice(&payload);
    let digest = hash(alg, &img);
    let (sig_kind, sig) = key.sign(&digest);
    let mut tlvs = Vec::new();
    push_tlv(&mut tlvs, alg.tlv_kind(), &digest);
    push_tlv(&mut tlvs, kind::PUBKEY, &key.spki());
    push_tlv(&mut tlvs, sig_kind, &sig);
    img.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
    img.extend_from_slice(&((tlvs.len() + 4) as u16).to_le_bytes());
    img.extend_from_slice(&tlvs);
    img
}

/// What this build must answer for an image signed with `key_type` over `alg`: the key type on
/// success, or the first algorithm left out (the hash is checked before the key).
fn expected(key_type: KeyType, alg: HashAlg) -> Result<KeyType, ImageError> {
    if !alg.is_supported() {
        return Err(ImageError::UnsupportedAlgorithm(Algorithm::Hash(alg)));
    }
    if !Algorithm::Signature(key_type).is_supported() {
        return Err(ImageError::UnsupportedAlgorithm(Algorithm::Signature(
            key_type,
        )));
    }
    Ok(key_type)
}

const CASES: [(KeyType, HashAlg); 4] = [
    (KeyType::EcdsaP256, HashAlg::Sha256),
    (KeyType::Ed25519, HashAlg::Sha256),
    (KeyType::Ed25519, HashAlg::Sha512),
    (KeyType::EcdsaP384, HashAlg::Sha384),
];

#[test]
fn features_say_what_is_built_in() {
    let on = |a| Algorithm::is_supported(a);
    assert_eq!(
        on(Algorithm::Signature(KeyType::Ed25519)),
        cfg!(feature = "ed25519")
    );
    assert_eq!(
        on(Algorithm::Signature(KeyType::EcdsaP256)),
        cfg!(feature = "p256")
    );
    assert_eq!(
        on(Algorithm::Signature(KeyType::EcdsaP384)),
        cfg!(feature = "p384")
    );
    assert!(HashAlg::Sha256.is_supported());
    assert_eq!(HashAlg::Sha384.is_supported(), cfg!(feature = "sha512"));
    assert_eq!(HashAlg::Sha512.is_supported(), cfg!(feature = "sha512"));
    // P-384 images are hashed with SHA-384: the feature brings the hash with it.
    if cfg!(feature = "p384") {
        assert!(HashAlg::Sha384.is_supported());
    }
}

#[test]
fn each_algorithm_verifies_when_built_in_and_is_refused_by_name_when_not() {
    for (key_type, alg) in CASES {
        let key = Key::new(key_type);
        let spki = key.spki();
        let img = image(&key, alg);
        for trusted in [
            TrustedKey::Spki(&spki),
            TrustedKey::Sha256OfSpki(signer_id(&spki)),
        ] {
            let got = verify(&mut &img[..], trusted).map(|v| v.key_type);
            assert_eq!(got, expected(key_type, alg), "{key_type} over {alg:?}");
        }
    }
}

#[test]
fn unsupported_algorithm_error_names_the_algorithm_and_the_feature() {
    let e = ImageError::UnsupportedAlgorithm(Algorithm::Signature(KeyType::Ed25519));
    assert_eq!(
        e.to_string(),
        "Ed25519 is not supported by this build of the verifier (castellan-image feature `ed25519` is off)"
    );
    let e = ImageError::UnsupportedAlgorithm(Algorithm::Hash(HashAlg::Sha384));
    assert!(e.to_string().contains("SHA-384"), "{e}");
    assert!(e.to_string().contains("`sha512`"), "{e}");
}

#[test]
fn trusted_key_of_an_algorithm_left_out_is_refused_at_provisioning() {
    for key_type in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::EcdsaP384] {
        let spki = Key::new(key_type).spki();
        assert_eq!(KeyType::of_spki_der(&spki), Ok(key_type));
        let want = if Algorithm::Signature(key_type).is_supported() {
            Ok(key_type)
        } else {
            Err(ImageError::UnsupportedAlgorithm(Algorithm::Signature(
                key_type,
            )))
        };
        assert_eq!(check_trusted_key(&spki), want, "{key_type}");
    }
}

#[test]
fn malformed_keys_stay_bad_keys_whatever_the_features() {
    // Not a SubjectPublicKeyInfo at all.
    assert_eq!(
        check_trusted_key(&[0x30, 0x00]),
        Err(ImageError::BadPublicKey)
    );
    // An RSA key's algorithm identifier (rsaEncryption, NULL parameters).
    let rsa = [
        0x30, 0x1a, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
        0x05, 0x00, 0x03, 0x09, 0x00, 0x30, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x03,
    ];
    assert_eq!(KeyType::of_spki_der(&rsa), Err(ImageError::BadPublicKey));
    assert_eq!(check_trusted_key(&rsa), Err(ImageError::BadPublicKey));
    // An EC key on a curve the crate does not know (secp256k1).
    // (the P-256 prefix's curve OID, `06 08 2a..07`, is bytes 13..23; secp256k1's is 3 shorter)
    let mut k1 = Key::new(KeyType::EcdsaP256).spki();
    k1.splice(13..23, [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]);
    k1[1] -= 3;
    k1[3] -= 3;
    assert_eq!(KeyType::of_spki_der(&k1), Err(ImageError::BadPublicKey));
}

#[test]
fn every_truncation_and_bit_flip_of_an_unsupported_image_is_refused_without_panic() {
    for (key_type, alg) in CASES {
        if expected(key_type, alg).is_ok() {
            continue;
        }
        let key = Key::new(key_type);
        let spki = key.spki();
        let img = image(&key, alg);
        for len in 0..img.len() {
            assert!(verify(&mut &img[..len], TrustedKey::Spki(&spki)).is_err());
        }
        for i in 0..img.len() {
            let mut bad = img.clone();
            bad[i] ^= 0x40;
            assert!(verify(&mut &bad[..], TrustedKey::Spki(&spki)).is_err());
        }
    }
}
