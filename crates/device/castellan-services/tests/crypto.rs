//! Crypto service: key policies (export, usage flags, permitted algorithm), the operations
//! against independent implementations, persistence, destruction, the device identity key and
//! the built-in attestation key.

mod common;

use castellan_services::{
    Algorithm, ItsFlags, KEY_ID_DEVICE_IDENTITY, KEY_ID_IAK, KeyAttributes, KeyId, KeyType,
    KeyUsage, ServiceError, psa, status_of,
};
use common::*;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const SCALAR: [u8; 32] = [
    0x51, 0x9b, 0x42, 0x3d, 0x71, 0x5f, 0x8b, 0x58, 0x1f, 0x4f, 0xa8, 0xee, 0x59, 0xf4, 0x77, 0x1a,
    0x5b, 0x44, 0xc8, 0x13, 0x0b, 0x4e, 0x3e, 0xac, 0xca, 0x54, 0xa5, 0x6d, 0xda, 0x72, 0xb4, 0x64,
];
const AES_KEY: [u8; 32] = *b"AES-256 key material, secret!!!!";
const DERIVE_SECRET: [u8; 32] = *b"HKDF base secret that must stay.";

fn all_but_export() -> KeyUsage {
    KeyUsage::SIGN_HASH
        .union(KeyUsage::VERIFY_HASH)
        .union(KeyUsage::ENCRYPT)
        .union(KeyUsage::DECRYPT)
        .union(KeyUsage::DERIVE)
}

fn p256_pair(usage: KeyUsage) -> KeyAttributes {
    KeyAttributes::new(KeyType::ECC_KEY_PAIR_SECP_R1)
        .with_bits(256)
        .with_usage(usage)
        .with_algorithm(Algorithm::ECDSA_SHA_256)
}

fn aes(usage: KeyUsage) -> KeyAttributes {
    KeyAttributes::new(KeyType::AES)
        .with_bits(256)
        .with_usage(usage)
        .with_algorithm(Algorithm::GCM)
}

fn derive(usage: KeyUsage) -> KeyAttributes {
    KeyAttributes::new(KeyType::DERIVE)
        .with_usage(usage)
        .with_algorithm(Algorithm::HKDF_SHA_256)
}

/// Runs every call of the crypto and storage API that takes a key id or could reveal one on
/// key `id`, whose material is `secret`, and checks that none of them gives the material out.
fn every_call_keeps_the_key_in(svc: &mut Services<'_>, id: KeyId, secret: &[u8]) {
    let leaks = |out: &[u8]| contains(out, secret);
    let mut out = [0u8; 256];

    let e = svc.export_key(id, &mut out).unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_NOT_PERMITTED, "export_key: {e}");
    assert!(!leaks(&out));

    if let Ok(n) = svc.export_public_key(id, &mut out) {
        assert_eq!(n, 65);
        assert!(
            !leaks(&out[..n]),
            "export_public_key leaked the private key"
        );
    }

    let attrs = svc.get_key_attributes(id).unwrap();
    assert!(!attrs.usage.contains(KeyUsage::EXPORT));

    let hash = Sha256::digest(b"message");
    if let Ok(n) = svc.sign_hash(id, Algorithm::ECDSA_SHA_256, &hash, &mut out) {
        assert!(!leaks(&out[..n]));
    }
    let _ = svc.verify_hash(id, Algorithm::ECDSA_SHA_256, &hash, &[0u8; 64]);

    // Encrypting zeros would print a stream cipher's keystream, not its key: still checked.
    if let Ok(n) = svc.aead_encrypt(id, Algorithm::GCM, &[0; 12], b"", &[0u8; 64], &mut out) {
        assert!(!leaks(&out[..n]));
    }
    let _ = svc.aead_decrypt(id, Algorithm::GCM, &[0; 12], b"", &[0u8; 32], &mut out);

    // A derived key that IS exportable must not be the base key.
    let child = derive(KeyUsage::EXPORT.union(KeyUsage::DERIVE)).with_bits(secret.len() as u16 * 8);
    if let Ok(child) = svc.derive_key(id, Algorithm::HKDF_SHA_256, b"", b"", &child) {
        let n = svc.export_key(child, &mut out).unwrap();
        assert!(!leaks(&out[..n]), "a derived key equals its base key");
        svc.destroy_key(child).unwrap();
    }

    // The storage API cannot reach the crypto namespace, not even by guessing the uid.
    let uid = u64::from(id);
    assert_eq!(
        svc.its_get(uid, 0, &mut out),
        Err(ServiceError::DoesNotExist)
    );
    assert_eq!(svc.its_get_info(uid), Err(ServiceError::DoesNotExist));
    assert_eq!(svc.its_remove(uid), Err(ServiceError::DoesNotExist));
    svc.its_set(uid, b"decoy", ItsFlags::NONE).unwrap();
    assert_eq!(
        svc.get_key_attributes(id).unwrap(),
        attrs,
        "its_set clobbered the key"
    );
    svc.its_remove(uid).unwrap();

    // A new key cannot take over the identifier with a laxer policy.
    if attrs.lifetime == castellan_services::Lifetime::PERSISTENT {
        let lax = KeyAttributes {
            usage: KeyUsage::EXPORT,
            ..attrs
        };
        assert_eq!(
            svc.import_key(&lax, secret),
            Err(ServiceError::AlreadyExists)
        );
    }
    let e = svc.export_key(id, &mut out).unwrap_err();
    assert_eq!(e.psa_status(), psa::ERROR_NOT_PERMITTED);
}

#[test]
fn attack_export_non_exportable_key_refused_by_every_call() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let keys: [(KeyAttributes, &[u8]); 6] = [
        (p256_pair(all_but_export()), &SCALAR),
        (p256_pair(all_but_export()).persistent(0x100), &SCALAR),
        (aes(all_but_export()), &AES_KEY),
        (aes(all_but_export()).persistent(0x101), &AES_KEY),
        (derive(all_but_export()), &DERIVE_SECRET),
        (derive(all_but_export()).persistent(0x102), &DERIVE_SECRET),
    ];
    for (attrs, secret) in keys {
        let id = svc.import_key(&attrs, secret).unwrap();
        every_call_keeps_the_key_in(&mut svc, id, secret);
    }
    // Keys generated on the device go through the same calls (their material is unknown to
    // the test, so only the refusals are checked).
    let generated = svc
        .generate_key(&p256_pair(all_but_export()).persistent(0x103))
        .unwrap();
    let mut out = [0u8; 64];
    assert_eq!(
        status_of(&svc.export_key(generated, &mut out)),
        psa::ERROR_NOT_PERMITTED
    );
    drop(svc);
    // Persistent key material is never in the flash in clear.
    for secret in [&SCALAR[..], &AES_KEY, &DERIVE_SECRET] {
        assert!(!contains(dev.flash.contents(), secret));
    }
    // ...and the refusals hold after a reboot, from storage.
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    for (id, secret) in [
        (0x100, &SCALAR[..]),
        (0x101, &AES_KEY),
        (0x102, &DERIVE_SECRET),
    ] {
        every_call_keeps_the_key_in(&mut svc, id, secret);
    }
}

#[test]
fn attack_use_of_the_attestation_key_through_the_crypto_api_refused() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let mut out = [0u8; 128];
    let hash = [7u8; 32];
    let refusals = [
        status_of(&svc.export_key(KEY_ID_IAK, &mut out)),
        status_of(&svc.sign_hash(KEY_ID_IAK, Algorithm::ECDSA_SHA_256, &hash, &mut out)),
        status_of(&svc.aead_encrypt(KEY_ID_IAK, Algorithm::GCM, &[0; 12], b"", b"x", &mut out)),
        status_of(&svc.derive_key(
            KEY_ID_IAK,
            Algorithm::HKDF_SHA_256,
            b"",
            b"",
            &aes(KeyUsage::EXPORT),
        )),
        status_of(&svc.destroy_key(KEY_ID_IAK)),
    ];
    assert_eq!(refusals, [psa::ERROR_NOT_PERMITTED; 5]);
    // Its public key is readable and is the one tokens verify with.
    assert_eq!(svc.export_public_key(KEY_ID_IAK, &mut out), Ok(65));
    assert_eq!(out[..65], svc.attestation_public_key());
    let attrs = svc.get_key_attributes(KEY_ID_IAK).unwrap();
    assert!(!attrs.usage.contains(KeyUsage::EXPORT));
}

#[test]
fn usage_flags_and_permitted_algorithm_are_enforced() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let hash = Sha256::digest(b"m");
    let mut out = [0u8; 128];
    let verify_only = svc
        .import_key(&p256_pair(KeyUsage::VERIFY_HASH), &SCALAR)
        .unwrap();
    let e = svc.sign_hash(verify_only, Algorithm::ECDSA_SHA_256, &hash, &mut out);
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);

    let sign_only = svc
        .import_key(&p256_pair(KeyUsage::SIGN_HASH), &SCALAR)
        .unwrap();
    let n = svc
        .sign_hash(sign_only, Algorithm::ECDSA_SHA_256, &hash, &mut out)
        .unwrap();
    let sig = out[..n].to_vec();
    let e = svc.verify_hash(sign_only, Algorithm::ECDSA_SHA_256, &hash, &sig);
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);
    // Signing with another algorithm than the permitted one is refused...
    let e = svc.sign_hash(
        sign_only,
        Algorithm::DETERMINISTIC_ECDSA_SHA_256,
        &hash,
        &mut out,
    );
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);
    // ...verification accepts both ECDSA variants (PSA: verification-equivalent).
    svc.verify_hash(
        verify_only,
        Algorithm::DETERMINISTIC_ECDSA_SHA_256,
        &hash,
        &sig,
    )
    .unwrap();

    let enc_only = svc.import_key(&aes(KeyUsage::ENCRYPT), &AES_KEY).unwrap();
    let n = svc
        .aead_encrypt(enc_only, Algorithm::GCM, &[1; 12], b"", b"data", &mut out)
        .unwrap();
    let ct = out[..n].to_vec();
    let e = svc.aead_decrypt(enc_only, Algorithm::GCM, &[1; 12], b"", &ct, &mut out);
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);

    let no_derive = svc
        .import_key(&derive(KeyUsage::NONE), &DERIVE_SECRET)
        .unwrap();
    let e = svc.derive_key(
        no_derive,
        Algorithm::HKDF_SHA_256,
        b"",
        b"",
        &aes(KeyUsage::ENCRYPT),
    );
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);

    // A key of the wrong type for the operation.
    let e = svc.aead_encrypt(sign_only, Algorithm::GCM, &[1; 12], b"", b"d", &mut out);
    assert_eq!(status_of(&e), psa::ERROR_NOT_PERMITTED);
    let e = svc.export_public_key(enc_only, &mut out);
    assert_eq!(status_of(&e), psa::ERROR_INVALID_ARGUMENT);
}

#[test]
fn ecdsa_signatures_verify_with_an_independent_implementation() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let usage = KeyUsage::SIGN_HASH.union(KeyUsage::VERIFY_HASH);
    let id = svc.generate_key(&p256_pair(usage)).unwrap();
    let mut public = [0u8; 65];
    svc.export_public_key(id, &mut public).unwrap();
    let vk = VerifyingKey::from_sec1_bytes(&public).unwrap();
    let hash = Sha256::digest(b"firmware manifest");
    let mut sig = [0u8; 64];
    assert_eq!(
        svc.sign_hash(id, Algorithm::ECDSA_SHA_256, &hash, &mut sig),
        Ok(64)
    );
    vk.verify_prehash(&hash, &Signature::from_slice(&sig).unwrap())
        .unwrap();
    svc.verify_hash(id, Algorithm::ECDSA_SHA_256, &hash, &sig)
        .unwrap();
    // Hedged ECDSA: two signatures of the same hash differ, both verify.
    let mut sig2 = [0u8; 64];
    svc.sign_hash(id, Algorithm::ECDSA_SHA_256, &hash, &mut sig2)
        .unwrap();
    assert_ne!(sig, sig2);
    let mut bad = sig;
    bad[10] ^= 1;
    let e = svc.verify_hash(id, Algorithm::ECDSA_SHA_256, &hash, &bad);
    assert_eq!(e, Err(ServiceError::InvalidSignature));
    assert_eq!(status_of(&e), psa::ERROR_INVALID_SIGNATURE);
    // Deterministic ECDSA of an imported key matches RFC 6979 as p256 computes it.
    let det = svc
        .import_key(
            &p256_pair(KeyUsage::SIGN_HASH).with_algorithm(Algorithm::DETERMINISTIC_ECDSA_SHA_256),
            &SCALAR,
        )
        .unwrap();
    svc.sign_hash(det, Algorithm::DETERMINISTIC_ECDSA_SHA_256, &hash, &mut sig)
        .unwrap();
    let reference: Signature = p256::ecdsa::signature::hazmat::PrehashSigner::sign_prehash(
        &SigningKey::from_slice(&SCALAR).unwrap(),
        &hash,
    )
    .unwrap();
    assert_eq!(sig, reference.to_bytes().as_slice());
    // A public key imported alone verifies too.
    let pub_only = svc
        .import_key(
            &KeyAttributes::new(KeyType::ECC_PUBLIC_KEY_SECP_R1)
                .with_usage(KeyUsage::VERIFY_HASH)
                .with_algorithm(Algorithm::ECDSA_SHA_256),
            &public,
        )
        .unwrap();
    svc.verify_hash(pub_only, Algorithm::ECDSA_SHA_256, &hash, &sig2)
        .unwrap();
    let mut out = [0u8; 65];
    assert_eq!(
        svc.export_key(pub_only, &mut out),
        Ok(65),
        "public keys are always exportable"
    );
    assert_eq!(
        status_of(&svc.sign_hash(id, Algorithm::ECDSA_SHA_256, &hash[..31], &mut sig)),
        psa::ERROR_INVALID_ARGUMENT
    );
}

#[test]
fn aes_gcm_round_trip_and_tamper_detection() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let id = svc
        .import_key(&aes(KeyUsage::ENCRYPT.union(KeyUsage::DECRYPT)), &AES_KEY)
        .unwrap();
    let mut ct = [0u8; 64];
    let n = svc
        .aead_encrypt(
            id,
            Algorithm::GCM,
            &[9; 12],
            b"header",
            b"telemetry record",
            &mut ct,
        )
        .unwrap();
    assert_eq!(n, 16 + 16);
    // Same result as the aes-gcm crate used directly.
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let mut reference = *b"telemetry record";
    let tag = aes_gcm::Aes256Gcm::new_from_slice(&AES_KEY)
        .unwrap()
        .encrypt_inout_detached(&[9u8; 12].into(), b"header", (&mut reference[..]).into())
        .unwrap();
    assert_eq!(&ct[..16], &reference);
    assert_eq!(&ct[16..32], tag.as_slice());
    let mut pt = [0u8; 64];
    assert_eq!(
        svc.aead_decrypt(id, Algorithm::GCM, &[9; 12], b"header", &ct[..n], &mut pt),
        Ok(16)
    );
    assert_eq!(&pt[..16], b"telemetry record");
    let mut bad = ct;
    bad[3] ^= 0x80;
    assert_eq!(
        svc.aead_decrypt(id, Algorithm::GCM, &[9; 12], b"header", &bad[..n], &mut pt),
        Err(ServiceError::InvalidSignature)
    );
    assert_eq!(
        svc.aead_decrypt(id, Algorithm::GCM, &[9; 12], b"Header", &ct[..n], &mut pt),
        Err(ServiceError::InvalidSignature)
    );
    assert_eq!(
        status_of(&svc.aead_encrypt(id, Algorithm::GCM, &[9; 8], b"", b"x", &mut ct)),
        psa::ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        svc.aead_encrypt(id, Algorithm::GCM, &[9; 12], b"", &[0; 60], &mut ct),
        Err(ServiceError::BufferTooSmall { needed: 76 })
    );
}

#[test]
fn hkdf_derivation_matches_the_reference_and_separates_contexts() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    let base = svc
        .import_key(&derive(KeyUsage::DERIVE), &DERIVE_SECRET)
        .unwrap();
    let out_attrs = aes(KeyUsage::EXPORT);
    let a = svc
        .derive_key(
            base,
            Algorithm::HKDF_SHA_256,
            b"salt",
            b"context A",
            &out_attrs,
        )
        .unwrap();
    let b = svc
        .derive_key(
            base,
            Algorithm::HKDF_SHA_256,
            b"salt",
            b"context B",
            &out_attrs,
        )
        .unwrap();
    let (mut ka, mut kb) = ([0u8; 32], [0u8; 32]);
    svc.export_key(a, &mut ka).unwrap();
    svc.export_key(b, &mut kb).unwrap();
    assert_ne!(ka, kb);
    let mut reference = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(b"salt"), &DERIVE_SECRET)
        .expand(b"context A", &mut reference)
        .unwrap();
    assert_eq!(ka, reference);
}

#[test]
fn persistent_keys_survive_a_power_cycle_and_destroy_removes_them() {
    let mut dev = device(8, 0x00);
    let mut svc = boot(&mut dev);
    let usage = KeyUsage::SIGN_HASH.union(KeyUsage::VERIFY_HASH);
    let id = svc
        .generate_key(&p256_pair(usage).persistent(0x42))
        .unwrap();
    assert_eq!(id, 0x42);
    let volatile = svc.generate_key(&p256_pair(usage)).unwrap();
    let mut public = [0u8; 65];
    svc.export_public_key(id, &mut public).unwrap();
    drop(svc);
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    let mut again = [0u8; 65];
    svc.export_public_key(id, &mut again).unwrap();
    assert_eq!(public, again);
    let hash = [3u8; 32];
    let mut sig = [0u8; 64];
    svc.sign_hash(id, Algorithm::ECDSA_SHA_256, &hash, &mut sig)
        .unwrap();
    VerifyingKey::from_sec1_bytes(&public)
        .unwrap()
        .verify_prehash(&hash, &Signature::from_slice(&sig).unwrap())
        .unwrap();
    // Volatile keys do not survive.
    assert_eq!(
        svc.get_key_attributes(volatile),
        Err(ServiceError::DoesNotExist)
    );
    svc.destroy_key(id).unwrap();
    assert_eq!(svc.get_key_attributes(id), Err(ServiceError::DoesNotExist));
    assert_eq!(svc.destroy_key(id), Err(ServiceError::DoesNotExist));
    drop(svc);
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    assert_eq!(svc.get_key_attributes(id), Err(ServiceError::DoesNotExist));
    let v = svc.generate_key(&aes(KeyUsage::ENCRYPT)).unwrap();
    svc.destroy_key(v).unwrap();
    assert_eq!(svc.get_key_attributes(v), Err(ServiceError::DoesNotExist));
}

#[test]
fn identity_key_is_generated_on_the_device_and_never_exported() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    // Nobody can plant a known key under the identity id before provisioning.
    let planted = p256_pair(KeyUsage::SIGN_HASH).persistent(KEY_ID_DEVICE_IDENTITY);
    assert_eq!(
        status_of(&svc.import_key(&planted, &SCALAR)),
        psa::ERROR_NOT_PERMITTED
    );
    assert_eq!(
        status_of(&svc.generate_key(&planted)),
        psa::ERROR_NOT_PERMITTED
    );
    let public = svc.provision_identity_key().unwrap();
    assert_eq!(
        svc.provision_identity_key().unwrap(),
        public,
        "provisioning twice keeps the key"
    );
    let mut out = [0u8; 65];
    assert_eq!(
        status_of(&svc.export_key(KEY_ID_DEVICE_IDENTITY, &mut out)),
        psa::ERROR_NOT_PERMITTED
    );
    // It signs (a CSR's hash, say) and the signature verifies with the public key.
    let hash = Sha256::digest(b"certification request info");
    let mut sig = [0u8; 64];
    svc.sign_hash(
        KEY_ID_DEVICE_IDENTITY,
        Algorithm::ECDSA_SHA_256,
        &hash,
        &mut sig,
    )
    .unwrap();
    VerifyingKey::from_sec1_bytes(&public)
        .unwrap()
        .verify_prehash(&hash, &Signature::from_slice(&sig).unwrap())
        .unwrap();
    drop(svc);
    dev.power_cycle();
    let mut svc = boot(&mut dev);
    assert_eq!(svc.provision_identity_key().unwrap(), public);
    // Another device generates another key.
    let mut other = seeded_device(4, 0xFF, 4242);
    let mut svc2 = boot(&mut other);
    assert_ne!(svc2.provision_identity_key().unwrap(), public);
}

#[test]
fn volatile_slots_and_unsupported_policies_give_clear_errors() {
    let mut dev = device(4, 0xFF);
    let mut svc = boot(&mut dev);
    for _ in 0..8 {
        svc.generate_key(&aes(KeyUsage::ENCRYPT)).unwrap();
    }
    let e = svc.generate_key(&aes(KeyUsage::ENCRYPT)).unwrap_err();
    assert_eq!(e, ServiceError::KeySlotsFull);
    assert_eq!(e.psa_status(), psa::ERROR_INSUFFICIENT_MEMORY);
    let p384 = p256_pair(KeyUsage::SIGN_HASH).with_bits(384);
    assert_eq!(
        status_of(&svc.generate_key(&p384)),
        psa::ERROR_NOT_SUPPORTED
    );
    let aes192 = aes(KeyUsage::ENCRYPT).with_bits(192);
    assert_eq!(
        status_of(&svc.generate_key(&aes192.persistent(5))),
        psa::ERROR_NOT_SUPPORTED
    );
    let bad_id = aes(KeyUsage::ENCRYPT).persistent(0x4000_0000);
    assert_eq!(
        status_of(&svc.generate_key(&bad_id)),
        psa::ERROR_INVALID_ARGUMENT
    );
    let not_a_point = KeyAttributes::new(KeyType::ECC_PUBLIC_KEY_SECP_R1).persistent(6);
    assert_eq!(
        status_of(&svc.import_key(&not_a_point, &[4u8; 65])),
        psa::ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        status_of(&svc.import_key(&p256_pair(KeyUsage::SIGN_HASH).persistent(7), &[0xFF; 32])),
        psa::ERROR_INVALID_ARGUMENT
    );
    let mut h = [0u8; 32];
    assert_eq!(svc.hash_compute(Algorithm::SHA_256, b"abc", &mut h), Ok(32));
    assert_eq!(h[..], Sha256::digest(b"abc")[..]);
}
