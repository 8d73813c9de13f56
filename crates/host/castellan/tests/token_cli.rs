//! `castellan token show | verify` and `castellan suit show` on the published vectors (RFC 9783
//! example tokens, the SUIT draft's example 0), through the real binary.

use std::process::Command;

use base64::Engine as _;
use p256::pkcs8::EncodePublicKey;

const CASTELLAN: &str = env!("CARGO_BIN_EXE_castellan");
const SIGN1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/psa_rfc9783_sign1.hex"
);
const MAC0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/psa_rfc9783_mac0.hex"
);
const SUIT0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/suit_example0_signed.hex"
);

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// The RFC 9783 example signing key's public half, as PEM.
fn rfc_key_pem(dir: &std::path::Path) -> String {
    let mut sec1 = vec![0x04];
    sec1.extend(b64("Tl4iCZ47zrRbRG0TVf0dw7VFlHtv18HInYhnmMNybo8"));
    sec1.extend(b64("gNcLhAslaqw0pi7eEEM2TwRAlfADR0uR4Bggkq-xPy4"));
    let key = p256::PublicKey::from_sec1_bytes(&sec1).unwrap();
    let path = dir.join("rfc9783.pem");
    std::fs::write(&path, key.to_public_key_pem(Default::default()).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn castellan(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(CASTELLAN).args(args).output().unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn token_show_decodes_the_rfc_example_and_says_it_is_unverified() {
    let (code, out) = castellan(&["token", "show", SIGN1]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("UNVERIFIED"), "{out}");
    assert!(out.contains("tag:psacertified.org,2023:psa#tfm"));
    assert!(out.contains("PRoT"));
    let (code, out) = castellan(&["token", "show", "--json", SIGN1]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["client_id"], 2147483647);
    assert_eq!(v["lifecycle"], 12288);
}

#[test]
fn token_verify_accepts_the_rfc_sign1_example_with_its_key() {
    let d = tempfile::tempdir().unwrap();
    let key = rfc_key_pem(d.path());
    let (code, out) = castellan(&["token", "verify", "-k", &key, SIGN1]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("valid token"));
    // With the nonce the RFC token answers (32 bytes of 0x01).
    let nonce = "01".repeat(32);
    let (code, out) = castellan(&["token", "verify", "-k", &key, "--nonce", &nonce, SIGN1]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn token_verify_accepts_the_rfc_mac0_example_with_its_hmac_key() {
    let k = hex::encode(b64(
        "3gOLNKyhJXaMXjNXq40Gs2e5qw1-i-Ek7cpH_gM6W7epPTB_8imqNv8kbBKVlk-s9xq3qm7E_WECt7OYMlWtkg",
    ));
    let (code, out) = castellan(&["token", "verify", "--hmac-key", &k, MAC0]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn attack_replayed_token_with_wrong_nonce_refused_by_cli() {
    let d = tempfile::tempdir().unwrap();
    let key = rfc_key_pem(d.path());
    let (code, out) = castellan(&[
        "token",
        "verify",
        "-k",
        &key,
        "--nonce",
        &"02".repeat(32),
        SIGN1,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("refused") && out.to_lowercase().contains("nonce"),
        "{out}"
    );
}

#[test]
fn attack_tampered_token_refused_by_cli() {
    let d = tempfile::tempdir().unwrap();
    let key = rfc_key_pem(d.path());
    let text: String = std::fs::read_to_string(SIGN1)
        .unwrap()
        .split_whitespace()
        .collect();
    let mut bytes = hex::decode(text).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let bad = d.path().join("bad.cbor");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out) = castellan(&["token", "verify", "-k", &key, bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn suit_show_prints_example_0_with_its_manifest_digest() {
    let (code, out) = castellan(&["suit", "show", SUIT0]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af"));
    assert!(out.contains("matches the manifest"));
}
