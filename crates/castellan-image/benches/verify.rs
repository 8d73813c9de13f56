//! `cargo bench -p castellan-image`: time to verify a 1 MiB image against the floor measured in
//! the same run — SHA-256 of the same bytes plus one signature verification — for each
//! algorithm. Prints medians and the ratio verify / floor.

use std::hint::black_box;
use std::time::{Duration, Instant};

use castellan_image::{KeyType, SignOptions, SigningKey, TrustedKey, Version, sign_image, verify};
use sha2::{Digest, Sha256, Sha384};

const IMAGE_SIZE: usize = 1 << 20;

/// Median duration of `f` over enough runs to fill about `budget`.
fn median(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 15 || (start.elapsed() < budget && samples.len() < 500) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    let payload: Vec<u8> = (0..IMAGE_SIZE).map(|i| (i * 31 % 251) as u8).collect();
    println!(
        "verify a 1 MiB MCUboot image vs. the floor (hash of the same bytes + one signature check)"
    );
    println!(
        "{:<11} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "algorithm", "verify", "hash", "sig check", "floor", "ratio"
    );
    for kt in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::EcdsaP384] {
        let key = SigningKey::generate(kt);
        let opts = SignOptions {
            version: Version::new(1, 0, 0, 0),
            pad_header: true,
            security_counter: Some(1),
            ..SignOptions::default()
        };
        let img = sign_image(&payload, &key, &opts).unwrap();
        let spki = key.public_spki_der();
        let hashed_len = {
            let v = verify(&mut &img[..], TrustedKey::Spki(&spki)).unwrap();
            v.layout.hashed_end() as usize
        };
        let t_verify = median(budget, || {
            black_box(verify(&mut black_box(&img[..]), TrustedKey::Spki(&spki)).unwrap());
        });
        let t_hash = match kt {
            KeyType::EcdsaP384 => median(budget, || {
                black_box(Sha384::digest(black_box(&img[..hashed_len])));
            }),
            _ => median(budget, || {
                black_box(Sha256::digest(black_box(&img[..hashed_len])));
            }),
        };
        let digest = match kt {
            KeyType::EcdsaP384 => Sha384::digest(&img[..hashed_len]).to_vec(),
            _ => Sha256::digest(&img[..hashed_len]).to_vec(),
        };
        let sig = key.sign_digest(&digest).unwrap();
        let t_sig = match &key {
            SigningKey::Ed25519(k) => {
                let vk = k.verifying_key();
                let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
                median(budget, || vk.verify_strict(black_box(&digest), &s).unwrap())
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = *k.verifying_key();
                let s = p256::ecdsa::Signature::from_der(&sig).unwrap();
                median(budget, || {
                    vk.verify_prehash(black_box(&digest), &s).unwrap()
                })
            }
            SigningKey::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = *k.verifying_key();
                let s = p384::ecdsa::Signature::from_der(&sig).unwrap();
                median(budget, || {
                    vk.verify_prehash(black_box(&digest), &s).unwrap()
                })
            }
        };
        let floor = t_hash + t_sig;
        println!(
            "{:<11} {:>12.3?} {:>12.3?} {:>12.3?} {:>12.3?} {:>8.3}",
            kt.to_string(),
            t_verify,
            t_hash,
            t_sig,
            floor,
            t_verify.as_secs_f64() / floor.as_secs_f64()
        );
    }
}
