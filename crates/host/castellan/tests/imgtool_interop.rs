//! Interop with MCUboot's `imgtool` (PyPI `imgtool`), both ways, through the real binaries:
//! images imgtool signs verify with `castellan image verify` and `castellan image info` agrees
//! with `imgtool dumpinfo`; images castellan signs pass `imgtool verify`; Ed25519 images are
//! byte-identical; key files cross over in both directions (and openssl reads ours).
//!
//! `cargo xtask ci` (the README's test command) installs imgtool; run alone, these tests fail
//! with the install command when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CASTELLAN: &str = env!("CARGO_BIN_EXE_castellan");

fn imgtool() -> Command {
    castellan_testkit::peers::imgtool::command()
}

fn run(mut c: Command) -> Output {
    let out = c.output().expect("spawn");
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn castellan(args: &[&str]) -> Command {
    let mut c = Command::new(CASTELLAN);
    c.args(args);
    c
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        let d = Dir(tempfile::tempdir().unwrap());
        // A payload with a header-sized hole of zeros and one without.
        let payload: Vec<u8> = (0..40_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(d.p("raw.bin"), &payload).unwrap();
        let mut zeroed = vec![0u8; 0x200];
        zeroed.extend_from_slice(&payload);
        std::fs::write(d.p("zeroed.bin"), &zeroed).unwrap();
        d
    }
    fn p(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.p(name).to_string_lossy().into_owned()
    }
}

/// The option sets the issue names: plain, with security counter, padded, confirmed, full key.
const VARIANTS: [&[&str]; 6] = [
    &["--pad-header"],
    &["--pad-header", "-s", "auto"],
    &["--pad-header", "-s", "42", "--pad"],
    &["--pad-header", "--confirm", "-s", "auto"],
    &[
        "--pad-header",
        "--public-key-format",
        "full",
        "--confirm",
        "--align",
        "8",
    ],
    &[
        "--boot-record",
        "NSPE",
        "-d",
        "(1, 1.0.0+0)",
        "--pad",
        "--align",
        "4",
    ],
];

fn sign_args<'a>(key: &'a str, variant: &[&'a str], input: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "sign",
        "-k",
        key,
        "--version",
        "1.2.3+4",
        "--header-size",
        "0x200",
        "--slot-size",
        "0x20000",
    ];
    a.extend_from_slice(variant);
    a.push(input);
    a.push(out);
    a
}

fn input_for(variant: &[&str]) -> &'static str {
    if variant.contains(&"--pad-header") {
        "raw.bin"
    } else {
        "zeroed.bin"
    }
}

fn keygen_both(d: &Dir, t: &str) -> [String; 2] {
    let ours = d.s(&format!("castellan-{t}.pem"));
    let theirs = d.s(&format!("imgtool-{t}.pem"));
    run(castellan(&["keygen", "-k", &ours, "-t", t]));
    let mut c = imgtool();
    c.args(["keygen", "-k", &theirs, "-t", t]);
    run(c);
    [ours, theirs]
}

#[test]
fn imgtool_signed_images_verify_with_castellan_and_info_agrees() {
    let d = Dir::new();
    for t in ["ed25519", "ecdsa-p256"] {
        for key in keygen_both(&d, t) {
            for (i, v) in VARIANTS.iter().enumerate() {
                let out = d.s(&format!("imgtool-{t}-{i}.bin"));
                let mut c = imgtool();
                c.args(sign_args(&key, v, &d.s(input_for(v)), &out));
                run(c);
                let o = run(castellan(&["image", "verify", "-k", &key, &out]));
                assert!(String::from_utf8_lossy(&o.stdout).contains("valid, version 1.2.3+4"));
                compare_info(&out);
            }
        }
    }
}

/// `castellan image info --json` and `imgtool dumpinfo --format json` report the same header,
/// TLVs and trailer bytes.
fn compare_info(img: &str) {
    let ours: Value =
        serde_json::from_slice(&run(castellan(&["image", "info", "--json", img])).stdout).unwrap();
    let mut c = imgtool();
    c.args(["dumpinfo", "--format", "json", img]);
    let theirs: Value = serde_json::from_slice(&run(c).stdout).unwrap();
    assert_eq!(ours["header"], theirs["header"], "header of {img}");
    for area in ["tlvs_prot", "tlvs", "tlv_hdr"] {
        assert_eq!(
            ours["tlv_area"][area], theirs["tlv_area"][area],
            "{area} of {img}"
        );
    }
    if ours["tlv_area"]["tlv_hdr_prot"].is_object() {
        assert_eq!(
            ours["tlv_area"]["tlv_hdr_prot"],
            theirs["tlv_area"]["tlv_hdr_prot"]
        );
    }
    match theirs.get("trailer").and_then(Value::as_object) {
        Some(t) if !t.is_empty() => {
            for f in ["magic", "image_ok", "copy_done", "swap_info", "swap_size"] {
                assert_eq!(ours["trailer"][f], t[f], "trailer {f} of {img}");
            }
        }
        _ => assert!(
            ours["trailer"].is_null(),
            "{img}: castellan saw a trailer, imgtool did not"
        ),
    }
}

#[test]
fn castellan_signed_images_pass_imgtool_verify() {
    let d = Dir::new();
    for t in ["ed25519", "ecdsa-p256"] {
        for key in keygen_both(&d, t) {
            for (i, v) in VARIANTS.iter().enumerate() {
                let out = d.s(&format!("castellan-{t}-{i}.bin"));
                let input = d.s(input_for(v));
                let mut args = vec!["image"];
                args.extend(sign_args(&key, v, &input, &out));
                run(castellan(&args));
                let mut c = imgtool();
                c.args(["verify", "-k", &key, &out]);
                let o = run(c);
                assert!(
                    String::from_utf8_lossy(&o.stdout).contains("Image was correctly validated")
                );
            }
        }
    }
}

#[test]
fn ed25519_images_are_byte_identical_to_imgtool() {
    let d = Dir::new();
    for key in keygen_both(&d, "ed25519") {
        for (i, v) in VARIANTS.iter().enumerate() {
            let ours = d.s(&format!("ours-{i}.bin"));
            let theirs = d.s(&format!("theirs-{i}.bin"));
            let input = d.s(input_for(v));
            let mut args = vec!["image"];
            args.extend(sign_args(&key, v, &input, &ours));
            run(castellan(&args));
            let mut c = imgtool();
            c.args(sign_args(&key, v, &d.s(input_for(v)), &theirs));
            run(c);
            let (a, b) = (
                std::fs::read(&ours).unwrap(),
                std::fs::read(&theirs).unwrap(),
            );
            assert_eq!(a.len(), b.len(), "variant {v:?}: lengths differ");
            assert!(
                a == b,
                "variant {v:?}: images differ at byte {:?}",
                a.iter().zip(&b).position(|(x, y)| x != y)
            );
        }
    }
}

#[test]
fn public_keys_agree_and_openssl_reads_our_keys() {
    castellan_testkit::peers::openssl::require();
    let d = Dir::new();
    for t in ["ed25519", "ecdsa-p256"] {
        for key in keygen_both(&d, t) {
            let ours = run(castellan(&["getpub", "-k", &key])).stdout;
            let mut c = imgtool();
            c.args(["getpub", "-k", &key, "-e", "pem"]);
            let theirs = run(c).stdout;
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{key}"
            );
            let mut o = Command::new("openssl");
            o.args(["pkey", "-in", &key, "-pubout"]);
            let from_openssl = run(o).stdout;
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&from_openssl)
            );
        }
    }
}

#[test]
fn verify_exit_code_and_reason_for_a_tampered_imgtool_image() {
    let d = Dir::new();
    let [key, _] = keygen_both(&d, "ecdsa-p256");
    let img = d.s("signed.bin");
    let mut c = imgtool();
    c.args(sign_args(&key, &["--pad-header"], &d.s("raw.bin"), &img));
    run(c);
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[0x200 + 100] ^= 1;
    let bad = d.p("tampered.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let o = castellan(&["image", "verify", "-k", &key, bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let line = String::from_utf8_lossy(&o.stdout);
    assert_eq!(line.lines().count(), 1, "one-line reason: {line}");
    assert!(line.contains("image hash does not match"), "{line}");
    // And imgtool agrees that it is invalid.
    let mut c = imgtool();
    c.args(["verify", "-k", &key, bad.to_str().unwrap()]);
    assert!(!c.output().unwrap().status.success());
}

#[test]
fn sign_refuses_an_image_larger_than_the_slot() {
    let d = Dir::new();
    let key = d.s("k.pem");
    run(castellan(&["keygen", "-k", &key]));
    let o = castellan(&[
        "image",
        "sign",
        "-k",
        &key,
        "--version",
        "1.0.0",
        "--pad-header",
        "--slot-size",
        "0x8000",
        "--pad",
        &d.s("raw.bin"),
        &d.s("out.bin"),
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exceeds the slot size"));
    assert!(!Path::new(&d.s("out.bin")).exists());
}

/// The firmware reads a P-256 image's key and signature with fixed-form readers instead of a
/// DER parser (`castellan-p256-cortex-m`, for the P256-Cortex-M4 assembly): imgtool's images
/// must read there, and to the values the `p256` crate verifies.
#[test]
fn imgtool_p256_images_fit_the_firmware_key_and_signature_readers() {
    use castellan_image::ImageLayout;
    use castellan_image::tlv::kind;
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;

    let d = Dir::new();
    let full_key = VARIANTS[4];
    for key in keygen_both(&d, "ecdsa-p256") {
        let out = d.s("imgtool-p256-full-key.bin");
        let mut c = imgtool();
        c.args(sign_args(&key, full_key, &d.s(input_for(full_key)), &out));
        run(c);
        let image = std::fs::read(&out).unwrap();
        let mut src: &[u8] = &image;
        let layout = ImageLayout::read(&mut src).unwrap();
        let (mut pubkey, mut sig, mut digest) = (None, None, None);
        for t in layout.unprotected.iter(&mut src).flatten() {
            let value = &image[t.offset as usize..t.offset as usize + usize::from(t.len)];
            match t.kind {
                kind::PUBKEY => pubkey = Some(value),
                kind::ECDSA_SIG => sig = Some(value),
                kind::SHA256 => digest = Some(value),
                _ => {}
            }
        }
        let (pubkey, sig, digest) = (pubkey.unwrap(), sig.unwrap(), digest.unwrap());
        let point = castellan_p256_cortex_m::point_of_spki(pubkey)
            .expect("imgtool's P-256 key is the fixed SPKI form");
        let der = &sig[..usize::from(sig[1]) + 2];
        let (r, s) = castellan_p256_cortex_m::signature_of_der(der).expect("strict DER");
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let signature = p256::ecdsa::Signature::from_scalars(
            p256::FieldBytes::from(r),
            p256::FieldBytes::from(s),
        )
        .unwrap();
        vk.verify_prehash(digest, &signature)
            .expect("the readers' key and signature verify the image digest");
    }
}
