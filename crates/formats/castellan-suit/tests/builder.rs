//! The host-side builder: round trips through the processor with ES256 and EdDSA, algorithm
//! labels, multiple signatures, severable elements, `describe`, and an interoperability check of
//! the produced envelopes with an independent COSE implementation (Python pycose).

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::builder::{EnvelopeMember, ImageSpec, ManifestBuilder, Signer, seal};
use castellan_suit::{
    Procedure, Section, SignatureAlgorithm, SuitError, authenticate, describe, process,
};
use common::*;

const URI: &str = "coaps://fw.example/app.bin";

fn build(signer: &Signer<'_>, payload: &[u8]) -> Vec<u8> {
    ManifestBuilder::new(7, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], payload).uri(URI).invoke())
        .reference_uri("https://fw.example/manifest.suit")
        .build(signer)
        .unwrap()
}

fn round_trip(signer: Signer<'_>, expected: SignatureAlgorithm) {
    let payload = payload_b();
    let env = build(&signer, &payload);
    let anchor = signer.trust_anchor();
    let m = authenticate(&env, std::slice::from_ref(&anchor)).unwrap();
    assert_eq!(m.signature_algorithm(), expected);
    assert_eq!(m.sequence_number(), 7);
    assert_eq!(m.reference_uri(), Some("https://fw.example/manifest.suit"));

    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(URI, payload.clone());
    assert_eq!(
        process(
            &env,
            std::slice::from_ref(&anchor),
            6,
            Procedure::Update,
            &mut dev
        ),
        Ok(7)
    );
    assert_eq!(dev.fetches, [URI]);
    assert_eq!(dev.content(&[b"\x00"]), payload);
    assert_eq!(
        process(&env, &[anchor], 7, Procedure::Invoke, &mut dev),
        Ok(7)
    );
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn builder_round_trip_es256() {
    round_trip(Signer::Es256(&test_p256_key()), SignatureAlgorithm::Es256);
}

#[test]
fn builder_round_trip_eddsa() {
    round_trip(
        Signer::EdDsa(&test_ed25519_key()),
        SignatureAlgorithm::EdDsa,
    );
}

#[test]
fn builder_round_trip_esp256() {
    round_trip(Signer::Esp256(&test_p256_key()), SignatureAlgorithm::Esp256);
}

#[test]
fn es256_and_esp256_labels_both_accepted_for_the_example_manifest() {
    let published = example(0);
    let original = authenticate(&published, &[example_anchor()]).unwrap();
    let manifest = strip_bstr(original.manifest_bytes()).to_vec();
    let key = test_p256_key();
    for (signer, alg) in [
        (Signer::Es256(&key), SignatureAlgorithm::Es256),
        (Signer::Esp256(&key), SignatureAlgorithm::Esp256),
    ] {
        let env = seal(&manifest, &[], &[signer]);
        let m = authenticate(&env, &[test_anchor()]).unwrap();
        assert_eq!(m.signature_algorithm(), alg);
        // Same manifest bytes, same digest as published.
        assert_eq!(
            hex::encode(m.manifest_digest().bytes),
            "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af"
        );
    }
}

#[test]
fn a_key_only_verifies_its_own_algorithm_family() {
    let p256 = test_p256_key();
    let ed = test_ed25519_key();
    let env = build(&Signer::Es256(&p256), b"x");
    assert_eq!(
        authenticate(&env, &[Signer::EdDsa(&ed).trust_anchor()]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
    let env = build(&Signer::EdDsa(&ed), b"x");
    assert_eq!(
        authenticate(&env, &[Signer::Es256(&p256).trust_anchor()]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
}

#[test]
fn any_trusted_signature_among_several_authenticates() {
    let stranger = p256::ecdsa::SigningKey::from_slice(&[0x44; 32]).unwrap();
    let ed = test_ed25519_key();
    let b = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], b"fw"))
        .build_manifest()
        .unwrap();
    let env = seal(
        &b.manifest,
        &[],
        &[Signer::Es256(&stranger), Signer::EdDsa(&ed)],
    );
    let m = authenticate(&env, &[Signer::EdDsa(&ed).trust_anchor()]).unwrap();
    assert_eq!(m.signature_algorithm(), SignatureAlgorithm::EdDsa);
    assert_eq!(
        authenticate(&env, &[test_anchor()]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
}

#[test]
fn severable_install_and_text_can_be_severed_after_signing() {
    let key = test_p256_key();
    let builder = ManifestBuilder::new(2, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], &payload_a()).uri(URI).invoke())
        .description("Release 2: fixes CVE-0000-0000")
        .severable(true);
    let full = builder.build(&Signer::Es256(&key)).unwrap();
    let m = authenticate(&full, &[test_anchor()]).unwrap();
    assert!(m.has_section(Section::Install));
    let text = m.text().unwrap();
    assert!(text.windows(7).any(|w| w == b"CVE-000"));
    let shown = describe(&full).unwrap();
    assert!(
        shown.contains("install: severable element in envelope (digest matches)"),
        "{shown}"
    );
    assert!(
        shown.contains("manifest-description (1): \"Release 2: fixes CVE-0000-0000\""),
        "{shown}"
    );

    // Sever both elements: same signature, boot still works, update needs the install sequence.
    let b = builder.build_manifest().unwrap();
    let severed = seal(&b.manifest, &[], &[Signer::Es256(&key)]);
    let m = authenticate(&severed, &[test_anchor()]).unwrap();
    assert!(m.is_severed(Section::Install) && m.is_severed(Section::Text));
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_content(&[b"\x00"], payload_a());
    assert_eq!(
        process(&severed, &[test_anchor()], 0, Procedure::Invoke, &mut dev),
        Ok(2)
    );
    assert_eq!(
        process(&severed, &[test_anchor()], 0, Procedure::Update, &mut dev),
        Err(SuitError::SeveredMemberMissing(Section::Install))
    );
    // Put back only the install element: update works again.
    let install = b.severed.iter().find(|(k, _)| *k == 20).unwrap();
    let restored = seal(
        &b.manifest,
        &[EnvelopeMember::Severable(20, &install.1)],
        &[Signer::Es256(&key)],
    );
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(URI, payload_a());
    assert_eq!(
        process(&restored, &[test_anchor()], 0, Procedure::Update, &mut dev),
        Ok(2)
    );
}

#[test]
fn build_without_images_is_refused() {
    let key = test_p256_key();
    assert!(
        ManifestBuilder::new(1, &VENDOR, &CLASS)
            .build(&Signer::Es256(&key))
            .is_err()
    );
}

#[test]
fn describe_example_2_shows_every_part() {
    let shown = describe(&example(2)).unwrap();
    for needle in [
        "SUIT envelope, 923 bytes",
        "manifest digest: sha-256 6a5197ed8f9dccf733d1c89a359441708e070b4c6dcb9a1c2c82c6165f609b90 (matches the manifest)",
        "signature 1: COSE_Sign1, ES256 (not verified",
        "manifest-sequence-number: 2",
        "reference-uri: \"https://git.io/JJYoj\"",
        "[0] [h'00']",
        "directive-override-parameters (20) {",
        "vendor-id (1): h'fa6b4a53d5ad5fdfbe9de663e4d41ffe'",
        "image-digest (3): sha-256 00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210",
        "image-size (14): 34768",
        "condition-class-identifier (2), policy 15",
        "install: severable element in envelope (digest matches)",
        "uri (21): \"http://example.com/very/long/path/to/file/file.bin\"",
        "directive-fetch (21), policy 2",
        "directive-invoke (23), policy 2",
        "language \"en-US\":",
        "vendor-domain (3): \"arm.com\"",
    ] {
        assert!(shown.contains(needle), "missing {needle:?} in:\n{shown}");
    }
    let blocks = example_blocks(2);
    let severed = describe(&blocks[blocks.len() - 2]).unwrap();
    assert!(
        severed.contains("install: severed (digest sha-256 cfa90c5c"),
        "{severed}"
    );
    let ab = describe(&example(3)).unwrap();
    assert!(
        ab.contains("directive-try-each (15):") && ab.contains("alternative 1:"),
        "{ab}"
    );
}

#[test]
fn describe_flags_a_modified_manifest() {
    let mut env = example(0);
    let last = env.len() - 1;
    env[last] ^= 1; // invoke reporting policy 2 -> 3
    let shown = describe(&env).unwrap();
    assert!(shown.contains("DOES NOT MATCH the manifest"), "{shown}");
}

/// Verifies builder envelopes with pycose + cbor2 (an independent COSE implementation).
#[test]
fn builder_envelopes_verify_with_pycose() {
    castellan_testkit::peers::pycose::require();
    let dir = std::env::temp_dir().join(format!("castellan-suit-pycose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p256 = test_p256_key();
    let ed = test_ed25519_key();
    let point = p256.verifying_key().to_sec1_point(false);
    let sec1 = point.as_bytes();
    let cases = [
        (
            "es256",
            build(&Signer::Es256(&p256), b"payload"),
            format!("ec2:{}", hex::encode(&sec1[1..])),
        ),
        (
            "eddsa",
            build(&Signer::EdDsa(&ed), b"payload"),
            format!("okp:{}", hex::encode(ed.verifying_key().as_bytes())),
        ),
    ];
    let script = r#"
import sys, hashlib, cbor2
from pycose.messages import Sign1Message
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import P256, Ed25519
env = cbor2.loads(open(sys.argv[1], 'rb').read())
assert env.tag == 107
m = env.value
auth = cbor2.loads(m[2])
digest = cbor2.loads(auth[0])
assert digest[0] == -16
assert digest[1] == hashlib.sha256(cbor2.dumps(m[3])).digest()
kind, raw = sys.argv[2].split(':')
raw = bytes.fromhex(raw)
if kind == 'ec2':
    key = EC2Key(crv=P256, x=raw[:32], y=raw[32:])
else:
    key = OKPKey(crv=Ed25519, x=raw)
tagged = cbor2.loads(auth[1])
assert tagged.tag == 18
# cbor2 6 decodes items inside tags as tuples / frozen maps, which pycose 1.x rejects.
obj = list(tagged.value)
obj[1] = dict(obj[1])
msg = Sign1Message.from_cose_obj(obj, True)
assert msg.payload is None  # detached
msg.key = key
assert msg.verify_signature(detached_payload=auth[0])
manifest = cbor2.loads(m[3])
assert manifest[1] == 1 and manifest[2] == 7
print('ok')
"#;
    let script_path = dir.join("verify.py");
    std::fs::write(&script_path, script).unwrap();
    for (name, env, key) in cases {
        let path = dir.join(format!("{name}.suit"));
        std::fs::write(&path, &env).unwrap();
        let out = std::process::Command::new("python3")
            .arg(&script_path)
            .arg(&path)
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "{name}: pycose refused the envelope: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A signature made outside the builder (as a PKCS#11 token would) over `to_be_signed` gives
/// the same envelope as the in-memory signer, and it authenticates.
#[test]
fn external_signature_matches_the_in_memory_signer() {
    use castellan_suit::builder::{seal_with_signatures, to_be_signed};
    use p256::ecdsa::signature::Signer as _;
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let manifest = castellan_suit::builder::ManifestBuilder::new(3, &[1u8; 16], &[2u8; 16])
        .image(castellan_suit::builder::ImageSpec::new(
            &[b"app"],
            b"payload",
        ))
        .build_manifest()
        .unwrap();
    let alg = castellan_suit::SignatureAlgorithm::Es256;
    let tbs = to_be_signed(&manifest.manifest, alg);
    let sig: p256::ecdsa::Signature = key.sign(&tbs);
    let external = seal_with_signatures(&manifest.manifest, &[], &[(alg, sig.to_bytes().to_vec())]);
    let internal = castellan_suit::builder::seal(
        &manifest.manifest,
        &[],
        &[castellan_suit::builder::Signer::Es256(&key)],
    );
    assert_eq!(external, internal, "RFC 6979 signatures are deterministic");
    let anchor = castellan_suit::TrustAnchor::P256(*key.verifying_key());
    castellan_suit::authenticate(&external, &[anchor]).unwrap();
}
