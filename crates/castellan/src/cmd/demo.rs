//! `castellan demo`: Castellan's main job on embedded defaults, end to end, with nothing to
//! set up. Today it walks the signed-image stage of the chain of trust; each later stage
//! (simulated boot, fleet service, updates) adds its step here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use castellan_image::{
    KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image, verify,
};
use clap::Args;

use super::write_file;

/// Arguments of `castellan demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Directory for the demo's keys and images (created if missing).
    #[arg(long, default_value = ".castellan/demo")]
    dir: PathBuf,
}

fn say(step: usize, text: &str) {
    println!("\n[{step}] {text}");
}

/// Run the demo.
pub(crate) fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create the demo directory {}", a.dir.display()))?;
    println!(
        "Castellan demo: the chain of trust, step by step (files in {})",
        a.dir.display()
    );

    say(
        1,
        "A device maker generates its firmware signing key (Ed25519, PKCS#8 PEM).",
    );
    let key = SigningKey::generate(KeyType::Ed25519);
    let key_path = a.dir.join("signing-key.pem");
    write_file(&key_path, key.to_pkcs8_pem()?.as_bytes())?;
    let spki = key.public_spki_der();
    println!(
        "    key: {}  signer id: {}",
        key_path.display(),
        hex::encode(castellan_image::signer_id(&spki))
    );

    say(
        2,
        "It signs firmware 1.0.0 as an MCUboot image with security counter 1, confirmed, for a 128 KiB slot.",
    );
    let firmware: Vec<u8> = (0..24_000u32).map(|i| (i % 251) as u8).collect();
    let opts = SignOptions {
        version: Version::new(1, 0, 0, 0),
        header_size: 0x200,
        pad_header: true,
        slot_size: 0x20000,
        security_counter: Some(1),
        confirm: true,
        public_key_format: PublicKeyFormat::Hash,
        ..SignOptions::default()
    };
    let image = sign_image(&firmware, &key, &opts)?;
    let image_path = a.dir.join("firmware-1.0.0.bin");
    write_file(&image_path, &image)?;
    println!(
        "    image: {} ({} bytes, padded to the slot)",
        image_path.display(),
        image.len()
    );

    say(
        3,
        "The device verifies it before running it: hash, key, signature.",
    );
    let v = verify(&mut image.as_slice(), TrustedKey::Spki(&spki))?;
    println!(
        "    accepted: version {}, {} signature, security counter {:?}, digest {}",
        v.version(),
        v.key_type,
        v.security_counter,
        hex::encode(v.digest.as_bytes())
    );

    say(
        4,
        "An attacker flips one byte of the payload; the device refuses the image and says why.",
    );
    let mut tampered = image.clone();
    if let Some(b) = tampered.get_mut(0x200 + 1000) {
        *b ^= 0x01;
    }
    let tampered_path = a.dir.join("firmware-tampered.bin");
    write_file(&tampered_path, &tampered)?;
    match verify(&mut tampered.as_slice(), TrustedKey::Spki(&spki)) {
        Ok(_) => anyhow::bail!("the tampered image was accepted: this is a bug"),
        Err(e) => println!("    refused: {e}"),
    }

    say(5, "An image signed with another key is refused too.");
    let rogue = SigningKey::generate(KeyType::Ed25519);
    let rogue_image = sign_image(&firmware, &rogue, &opts)?;
    match verify(&mut rogue_image.as_slice(), TrustedKey::Spki(&spki)) {
        Ok(_) => anyhow::bail!("an image from another key was accepted: this is a bug"),
        Err(e) => println!("    refused: {e}"),
    }

    println!("\nWhere to look next:");
    println!("  castellan image info {}", image_path.display());
    println!(
        "  castellan image verify -k {} {}",
        key_path.display(),
        tampered_path.display()
    );
    println!(
        "  imgtool verify -k {} {}   (MCUboot's own tool agrees)",
        key_path.display(),
        image_path.display()
    );
    println!("  docs/README.md for the design, docs/benchmarks.md for measured figures");
    Ok(ExitCode::SUCCESS)
}
