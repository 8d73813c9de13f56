//! The six envelopes of draft-ietf-suit-manifest-34 Appendix B, processed on a mock device.
//!
//! As published, the examples' image digests are sample patterns ("not a real one", says example
//! 2's text), so a correct processor must stop at the first digest check: each `*_as_published`
//! test asserts exactly how far processing gets and what it asked of the device. The
//! `*_real_digests` tests replace the sample digests with digests of real payloads (same lengths,
//! re-signed with a test key) and assert the complete flow: what is fetched from which URI, what
//! is copied, what is invoked.

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::{
    Condition, DigestAlgorithm, Procedure, Processor, Section, SignatureAlgorithm, SuitError,
    authenticate,
};
use common::*;

fn run(
    envelope: &[u8],
    anchor: castellan_suit::TrustAnchor,
    dev: &mut MockDevice,
    p: Procedure,
) -> Result<(), SuitError> {
    let m = authenticate(envelope, &[anchor]).unwrap();
    Processor::new(dev, 0).process(&m, p)
}

fn image_match_fails(component: usize) -> Result<(), SuitError> {
    Err(SuitError::ConditionFailed {
        condition: Condition::ImageMatch,
        component,
    })
}

#[test]
fn all_six_examples_authenticate_with_the_published_key() {
    for n in 0..6 {
        let env = example(n);
        let m =
            authenticate(&env, &[example_anchor()]).unwrap_or_else(|e| panic!("example {n}: {e}"));
        assert_eq!(m.sequence_number(), n as u64, "example {n}");
        assert_eq!(m.signature_algorithm(), SignatureAlgorithm::Es256);
        assert_eq!(m.manifest_digest().algorithm, DigestAlgorithm::Sha256);
    }
}

#[test]
fn example_0_manifest_digest_is_the_published_value() {
    let env = hex::decode(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/suit_example0_signed.hex"
        ))
        .unwrap()
        .split_whitespace()
        .collect::<String>(),
    )
    .unwrap();
    assert_eq!(env.len(), 237);
    assert_eq!(env, example(0));
    let m = authenticate(&env, &[example_anchor()]).unwrap();
    assert_eq!(
        hex::encode(m.manifest_digest().bytes),
        "6658ea560262696dd1f13b782239a064da7c6c5cbaf52fded428a6fc83c7e5af"
    );
    assert_eq!(m.component_count(), 1);
    assert!(m.component_id(0).unwrap().is(&[b"\x00"]));
}

#[test]
fn example_0_secure_boot_as_published_stops_at_image_match() {
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_content(&[b"\x00"], payload_a());
    let r = run(&example(0), example_anchor(), &mut dev, Procedure::Invoke);
    assert_eq!(r, image_match_fails(0));
    assert_eq!(
        dev.trace(),
        [
            "shared-sequence condition-vendor-identifier[0] ok",
            "shared-sequence condition-class-identifier[0] ok",
            "validate condition-image-match[0] ConditionFailed { condition: ImageMatch, component: 0 }",
        ]
    );
    assert!(dev.invoked.is_empty());
}

#[test]
fn example_0_secure_boot_real_digests_invokes_component_0() {
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_content(&[b"\x00"], payload_a());
    run(
        &example_with_real_digests(0),
        test_anchor(),
        &mut dev,
        Procedure::Invoke,
    )
    .unwrap();
    assert_eq!(
        dev.trace(),
        [
            "shared-sequence condition-vendor-identifier[0] ok",
            "shared-sequence condition-class-identifier[0] ok",
            "validate condition-image-match[0] ok",
            "shared-sequence condition-vendor-identifier[0] ok",
            "shared-sequence condition-class-identifier[0] ok",
            "invoke directive-invoke[0] ok",
        ]
    );
    assert_eq!(dev.invoked, [(0, None)]);
    assert!(dev.fetches.is_empty());
}

#[test]
fn example_1_download_as_published_fetches_then_refuses_the_digest() {
    let mut dev =
        MockDevice::new(&[&[b"\x00"]]).with_remote("http://example.com/file.bin", payload_a());
    let r = run(&example(1), example_anchor(), &mut dev, Procedure::Update);
    assert_eq!(r, Err(SuitError::DigestMismatch { component: 0 }));
    assert_eq!(dev.fetches, ["http://example.com/file.bin"]);
    assert!(dev.commits.is_empty(), "nothing committed");
    assert_eq!(dev.aborts, [0]);
    assert!(dev.content(&[b"\x00"]).is_empty());
}

#[test]
fn example_1_download_real_digests_installs_and_does_not_invoke() {
    let mut dev =
        MockDevice::new(&[&[b"\x00"]]).with_remote("http://example.com/file.bin", payload_a());
    let env = example_with_real_digests(1);
    run(&env, test_anchor(), &mut dev, Procedure::Update).unwrap();
    assert_eq!(dev.fetches, ["http://example.com/file.bin"]);
    assert_eq!(dev.commits, [(0, SIZE_A as u64)]);
    assert_eq!(dev.content(&[b"\x00"]), payload_a());
    assert!(
        dev.trace()
            .contains(&"install condition-image-match[0] ok".to_string())
    );
    assert!(
        dev.trace()
            .contains(&"validate condition-image-match[0] ok".to_string())
    );
    // Example 1 has no invoke sequence: booting validates and invokes nothing.
    run(&env, test_anchor(), &mut dev, Procedure::Invoke).unwrap();
    assert!(dev.invoked.is_empty());
}

#[test]
fn example_2_severable_install_and_text_are_verified_and_used() {
    let env = example(2);
    assert_eq!(env.len(), 923);
    let m = authenticate(&env, &[example_anchor()]).unwrap();
    assert!(m.has_section(Section::Install));
    assert!(!m.is_severed(Section::Install));
    assert_eq!(m.reference_uri(), Some("https://git.io/JJYoj"));
    let text = m.text().expect("text present and verified");
    assert!(text.windows(7).any(|w| w == b"arm.com"));

    let uri = "http://example.com/very/long/path/to/file/file.bin";
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(uri, payload_a());
    let r = run(&env, example_anchor(), &mut dev, Procedure::Update);
    assert_eq!(r, Err(SuitError::DigestMismatch { component: 0 }));
    assert_eq!(dev.fetches, [uri]);
}

#[test]
fn example_2_with_elements_severed_boots_but_cannot_update() {
    let blocks = example_blocks(2);
    let severed = &blocks[blocks.len() - 2];
    assert_eq!(severed.len(), 333);
    let m = authenticate(severed, &[example_anchor()]).unwrap();
    assert!(m.is_severed(Section::Install) && m.is_severed(Section::Text));
    assert!(m.text().is_none());

    let mut dev = MockDevice::new(&[&[b"\x00"]]);
    assert_eq!(
        Processor::new(&mut dev, 0).process(&m, Procedure::Update),
        Err(SuitError::SeveredMemberMissing(Section::Install))
    );
    assert!(dev.fetches.is_empty());
    assert_eq!(
        Processor::new(&mut dev, 0).process(&m, Procedure::Invoke),
        image_match_fails(0)
    );
}

#[test]
fn example_2_real_digests_downloads_then_boots() {
    let uri = "http://example.com/very/long/path/to/file/file.bin";
    let env = example_with_real_digests(2);
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(uri, payload_a());
    run(&env, test_anchor(), &mut dev, Procedure::Update).unwrap();
    assert_eq!(dev.content(&[b"\x00"]), payload_a());
    run(&env, test_anchor(), &mut dev, Procedure::Invoke).unwrap();
    assert_eq!(dev.fetches, [uri]);
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn example_2_tampered_severable_element_is_refused() {
    let mut env = example(2);
    let pos = env.windows(7).position(|w| w == b"arm.com").unwrap();
    env[pos] = b'e';
    assert_eq!(
        authenticate(&env, &[example_anchor()]).map(|_| ()),
        Err(SuitError::SeverableDigestMismatch(Section::Text))
    );
}

#[test]
fn example_3_ab_slots_choose_the_uri_and_digest() {
    for (slot, uri, payload) in [
        (0u64, "http://example.com/file1.bin", payload_a()),
        (1, "http://example.com/file2.bin", payload_b()),
    ] {
        // As published: the selected alternative's URI is fetched, the sample digest refuses it.
        let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(uri, payload.clone());
        dev.slots.insert(id(&[b"\x00"]), slot);
        let r = run(&example(3), example_anchor(), &mut dev, Procedure::Update);
        assert_eq!(
            r,
            Err(SuitError::DigestMismatch { component: 0 }),
            "slot {slot}"
        );
        assert_eq!(dev.fetches, [uri]);
        let trace = dev.trace();
        let slot_checks: Vec<_> = trace
            .iter()
            .filter(|l| l.contains("component-slot"))
            .take(2)
            .collect();
        let passed = "shared-sequence condition-component-slot[0] ok";
        if slot == 0 {
            assert_eq!(slot_checks[0], passed);
        } else {
            assert!(slot_checks[0].contains("ConditionFailed { condition: ComponentSlot"));
            assert_eq!(slot_checks[1], passed);
        }

        // Real digests: the payload for that slot installs and validates.
        let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(uri, payload.clone());
        dev.slots.insert(id(&[b"\x00"]), slot);
        run(
            &example_with_real_digests(3),
            test_anchor(),
            &mut dev,
            Procedure::Update,
        )
        .unwrap();
        assert_eq!(dev.fetches, [uri]);
        assert_eq!(dev.content(&[b"\x00"]), payload);
    }
}

#[test]
fn example_3_without_a_matching_slot_fails_the_try_each() {
    let mut dev = MockDevice::new(&[&[b"\x00"]]);
    dev.slots.insert(id(&[b"\x00"]), 7);
    let r = run(&example(3), example_anchor(), &mut dev, Procedure::Invoke);
    assert_eq!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::ComponentSlot,
            component: 0
        })
    );
}

const EX4: [&[&[u8]]; 3] = [&[b"\x00"], &[b"\x02"], &[b"\x01"]];

#[test]
fn example_4_as_published_fetches_into_the_staging_component() {
    let mut dev = MockDevice::new(&EX4).with_remote("http://example.com/file.bin", payload_a());
    let r = run(&example(4), example_anchor(), &mut dev, Procedure::Update);
    assert_eq!(r, Err(SuitError::DigestMismatch { component: 1 }));
    assert_eq!(dev.fetches, ["http://example.com/file.bin"]);
}

#[test]
fn example_4_real_digests_fetch_copy_install_then_load_refuses_the_plain_copy() {
    let env = example_with_real_digests(4);
    let mut dev = MockDevice::new(&EX4).with_remote("http://example.com/file.bin", payload_a());
    run(&env, test_anchor(), &mut dev, Procedure::Update).unwrap();
    assert_eq!(dev.fetches, ["http://example.com/file.bin"]);
    // payload-fetch into component 1 ([h'02']), install copies it to component 0 ([h'00']).
    assert_eq!(dev.commits, [(1, SIZE_A as u64), (0, SIZE_A as u64)]);
    assert_eq!(dev.content(&[b"\x02"]), payload_a());
    assert_eq!(dev.content(&[b"\x00"]), payload_a());

    // The load sequence copies component 0 into component 2 ([h'01']) but expects a different
    // image (digest B, 76834 bytes): a plain copy cannot produce it, so it is refused and
    // nothing is invoked.
    let r = run(&env, test_anchor(), &mut dev, Procedure::Invoke);
    assert_eq!(
        r,
        Err(SuitError::SizeMismatch {
            component: 2,
            expected: SIZE_B as u64,
            actual: SIZE_A as u64
        })
    );
    assert!(
        dev.trace()
            .contains(&"validate condition-image-match[0] ok".to_string())
    );
    assert!(dev.invoked.is_empty());
    assert!(dev.content(&[b"\x01"]).is_empty());
}

#[test]
fn example_4_load_and_invoke_with_consistent_load_digest() {
    // Give component 2 the digest and size of the image in component 0: the load copy then
    // verifies and component 2 is invoked.
    let mut env = example_with_real_digests(4);
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    let mut manifest = strip_bstr(m.manifest_bytes()).to_vec();
    let real_a: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(payload_a()).into();
    let real_b: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(payload_b()).into();
    assert_eq!(replace_all(&mut manifest, &real_b, &real_a), 1);
    // image-size 76834 (1a 00012c22) -> 34768 (1a 000087d0), same encoded length.
    assert_eq!(
        replace_all(
            &mut manifest,
            &[0x0e, 0x1a, 0x00, 0x01, 0x2c, 0x22],
            &[0x0e, 0x1a, 0x00, 0x00, 0x87, 0xd0]
        ),
        1
    );
    let key = test_p256_key();
    env = castellan_suit::builder::seal(
        &manifest,
        &[],
        &[castellan_suit::builder::Signer::Es256(&key)],
    );
    let mut dev = MockDevice::new(&EX4).with_content(&[b"\x00"], payload_a());
    run(&env, test_anchor(), &mut dev, Procedure::Invoke).unwrap();
    assert_eq!(dev.content(&[b"\x01"]), payload_a());
    assert_eq!(dev.invoked, [(2, None)]);
}

const EX5: [&[&[u8]]; 2] = [&[b"\x00"], &[b"\x01"]];

#[test]
fn example_5_as_published_fetches_the_first_image_and_refuses_it() {
    let mut dev = MockDevice::new(&EX5)
        .with_remote("http://example.com/file1.bin", payload_a())
        .with_remote("http://example.com/file2.bin", payload_b());
    let r = run(&example(5), example_anchor(), &mut dev, Procedure::Update);
    assert_eq!(r, Err(SuitError::DigestMismatch { component: 0 }));
    assert_eq!(dev.fetches, ["http://example.com/file1.bin"]);
}

#[test]
fn example_5_real_digests_two_fetches_then_invokes_component_0() {
    let env = example_with_real_digests(5);
    let mut dev = MockDevice::new(&EX5)
        .with_remote("http://example.com/file1.bin", payload_a())
        .with_remote("http://example.com/file2.bin", payload_b());
    run(&env, test_anchor(), &mut dev, Procedure::Update).unwrap();
    assert_eq!(
        dev.fetches,
        [
            "http://example.com/file1.bin",
            "http://example.com/file2.bin"
        ]
    );
    assert_eq!(dev.content(&[b"\x00"]), payload_a());
    assert_eq!(dev.content(&[b"\x01"]), payload_b());
    run(&env, test_anchor(), &mut dev, Procedure::Invoke).unwrap();
    assert_eq!(dev.invoked, [(0, None)]);
    assert_eq!(
        dev.trace()
            .iter()
            .filter(|l| l.starts_with("validate condition-image-match"))
            .count(),
        4,
        "validate checks both images in both procedures"
    );
}

#[test]
fn example_5_device_without_second_component_refuses_before_any_command() {
    let mut dev = MockDevice::new(&[&[b"\x00"]]);
    let r = run(&example(5), example_anchor(), &mut dev, Procedure::Invoke);
    assert_eq!(r, Err(SuitError::UnsupportedComponent { index: 1 }));
    assert!(dev.records.is_empty());
}
