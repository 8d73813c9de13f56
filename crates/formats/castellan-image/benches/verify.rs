//! `cargo bench -p castellan-image`: time to verify a 1 MiB image against the floor measured in
//! the same run — SHA-256 of the same bytes plus one signature verification — for each
//! algorithm. Prints medians and the ratio verify / floor.

use std::hint::black_box;
use std::time::{Duration, Instant};

use castellan_image::{KeyType, SignOptions, SigningKey, TrustedKey, Version, sign_image, verify};
use sha2::{Digest, Sha256, Sha384};

const IMAGE_SIZE: usize = 1 << 20;

/// Medians of several measured functions, run interleaved (one call of each per round) so that
/// a change in machine load during the run affects all of them alike.
fn interleaved_medians<const N: usize>(
    budget: Duration,
    fs: &mut [&mut dyn FnMut(); N],
) -> [Duration; N] {
    for f in fs.iter_mut() {
        f();
    }
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    let start = Instant::now();
    while samples[0].len() < 15 || (start.elapsed() < budget && samples[0].len() < 500) {
        for (f, s) in fs.iter_mut().zip(samples.iter_mut()) {
            let t = Instant::now();
            f();
            s.push(t.elapsed());
        }
    }
    samples.map(|mut s| {
        s.sort();
        s[s.len() / 2]
    })
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
        let digest = match kt {
            KeyType::EcdsaP384 => Sha384::digest(&img[..hashed_len]).to_vec(),
            _ => Sha256::digest(&img[..hashed_len]).to_vec(),
        };
        let sig = key.sign_digest(&digest).unwrap();
        let mut verify_image = || {
            black_box(verify(&mut black_box(&img[..]), TrustedKey::Spki(&spki)).unwrap());
        };
        let mut hash_only = || match kt {
            KeyType::EcdsaP384 => {
                black_box(Sha384::digest(black_box(&img[..hashed_len])));
            }
            _ => {
                black_box(Sha256::digest(black_box(&img[..hashed_len])));
            }
        };
        let mut sig_only: Box<dyn FnMut()> = match &key {
            SigningKey::Ed25519(k) => {
                let vk = k.verifying_key();
                let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
                let d = digest.clone();
                Box::new(move || vk.verify_strict(black_box(&d), &s).unwrap())
            }
            SigningKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = *k.verifying_key();
                let s = p256::ecdsa::Signature::from_der(&sig).unwrap();
                let d = digest.clone();
                Box::new(move || vk.verify_prehash(black_box(&d), &s).unwrap())
            }
            SigningKey::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashVerifier;
                let vk = *k.verifying_key();
                let s = p384::ecdsa::Signature::from_der(&sig).unwrap();
                let d = digest.clone();
                Box::new(move || vk.verify_prehash(black_box(&d), &s).unwrap())
            }
        };
        let [t_verify, t_hash, t_sig] = interleaved_medians(
            budget,
            &mut [&mut verify_image, &mut hash_only, &mut *sig_only],
        );
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
