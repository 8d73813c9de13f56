//! The RFC 9124 threats that apply to a manifest processor, one named test each (plus variants).
//! Every test asserts the typed refusal and that the device was not changed or run.

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::builder::{
    EnvelopeMember, ImageSpec, ManifestBuilder, Parameters, Sequence, Signer, seal,
};
use castellan_suit::{
    Condition, Directive, Procedure, Processor, Section, SuitError, authenticate,
    authenticate_copy, process,
};
use common::*;

const URI: &str = "https://updates.example/app.bin";
const OTHER_CLASS: [u8; 16] = [0x99; 16];

fn payload() -> Vec<u8> {
    (0..3000u32).map(|i| (i % 251) as u8).collect()
}

fn envelope(sequence_number: u64, class: &[u8], payload: &[u8]) -> Vec<u8> {
    let key = test_p256_key();
    ManifestBuilder::new(sequence_number, &VENDOR, class)
        .image(ImageSpec::new(&[b"\x00"], payload).uri(URI).invoke())
        .build(&Signer::Es256(&key))
        .unwrap()
}

fn device_serving(content: Vec<u8>) -> MockDevice {
    MockDevice::new(&[&[b"\x00"]])
        .with_content(&[b"\x00"], b"old firmware".to_vec())
        .with_remote(URI, content)
}

fn untouched(dev: &MockDevice) {
    assert!(dev.fetches.is_empty(), "nothing fetched");
    assert!(dev.commits.is_empty(), "nothing committed");
    assert!(dev.invoked.is_empty(), "nothing invoked");
    assert_eq!(dev.content(&[b"\x00"]), b"old firmware");
}

#[test]
fn threat_rollback_sequence_number_refused() {
    let env = envelope(4, &CLASS, &payload());
    let mut dev = device_serving(payload());
    let r = process(&env, &[test_anchor()], 5, Procedure::Update, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::RolledBack {
            stored: 5,
            offered: 4
        })
    );
    untouched(&dev);
    assert!(dev.records.is_empty(), "no command ran");
    // The same sequence number (re-applying the current manifest) and newer ones are accepted.
    assert_eq!(
        process(&env, &[test_anchor()], 4, Procedure::Update, &mut dev),
        Ok(4)
    );
    assert_eq!(
        process(&env, &[test_anchor()], 3, Procedure::Invoke, &mut dev),
        Ok(4)
    );
}

#[test]
fn threat_incompatible_device_class_refused() {
    let env = envelope(1, &OTHER_CLASS, &payload());
    let mut dev = device_serving(payload());
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::ClassIdentifier,
            component: 0
        })
    );
    untouched(&dev);
    assert_eq!(
        dev.trace(),
        [
            "shared-sequence condition-vendor-identifier[0] ok",
            "shared-sequence condition-class-identifier[0] ConditionFailed { condition: ClassIdentifier, component: 0 }",
        ]
    );
}

#[test]
fn threat_incompatible_vendor_refused() {
    let env = envelope(1, &CLASS, &payload());
    let mut dev = device_serving(payload());
    dev.vendor_ids = vec![vec![0x42; 16]];
    let r = process(&env, &[test_anchor()], 0, Procedure::Invoke, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::VendorIdentifier,
            component: 0
        })
    );
    untouched(&dev);
}

#[test]
fn threat_wrong_digest_refused() {
    let good = payload();
    let mut evil = good.clone();
    evil[1234] ^= 0x01;
    let env = envelope(1, &CLASS, &good);
    let mut dev = device_serving(evil);
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(r, Err(SuitError::DigestMismatch { component: 0 }));
    assert_eq!(dev.fetches, [URI]);
    assert!(dev.commits.is_empty(), "refused payload never committed");
    assert_eq!(dev.aborts, [0]);
    assert_eq!(dev.content(&[b"\x00"]), b"old firmware");
    // Booting afterwards does not run anything either.
    let r = process(&env, &[test_anchor()], 0, Procedure::Invoke, &mut dev);
    assert!(matches!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::ImageMatch,
            ..
        })
    ));
    assert!(dev.invoked.is_empty());
}

#[test]
fn threat_wrong_size_refused() {
    // A payload shorter than the image size (whatever its digest).
    let good = payload();
    let env = envelope(1, &CLASS, &good);
    let mut dev = device_serving(good[..good.len() - 1].to_vec());
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::SizeMismatch {
            component: 0,
            expected: good.len() as u64,
            actual: good.len() as u64 - 1
        })
    );
    assert!(dev.commits.is_empty());
    assert_eq!(dev.content(&[b"\x00"]), b"old firmware");

    // An image size the component cannot hold is refused before anything is fetched.
    let mut dev = device_serving(good.clone());
    dev.capacity = 1000;
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::PayloadTooLarge {
            component: 0,
            limit: 1000
        })
    );
    untouched(&dev);
}

#[test]
fn threat_appended_payload_bytes_refused() {
    let good = payload();
    let env = envelope(1, &CLASS, &good);
    // The right image followed by extra bytes, then by "endless" data.
    for extra in [4usize, 4 << 20] {
        let mut served = good.clone();
        served.extend(std::iter::repeat_n(0xAA, extra));
        let mut dev = device_serving(served);
        let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
        assert_eq!(
            r,
            Err(SuitError::PayloadTooLarge {
                component: 0,
                limit: good.len() as u64
            })
        );
        assert!(
            dev.bytes_written <= good.len() as u64,
            "no byte beyond the image size is written"
        );
        assert!(
            dev.bytes_fetched <= good.len() as u64 + 1,
            "reading stops at the first extra byte"
        );
        assert!(dev.commits.is_empty());
        assert_eq!(dev.aborts, [0]);
        assert_eq!(dev.content(&[b"\x00"]), b"old firmware");
    }
}

#[test]
fn threat_appended_bytes_without_image_size_bounded_by_capacity() {
    // A manifest that sets no image size: the component's capacity is the limit.
    let key = test_p256_key();
    let install = Sequence::new()
        .override_parameters(&Parameters::new().uri(URI))
        .directive(Directive::Fetch);
    let shared = Sequence::new()
        .override_parameters(&Parameters::new().vendor_id(&VENDOR).class_id(&CLASS))
        .condition(Condition::VendorIdentifier)
        .condition(Condition::ClassIdentifier);
    let env = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], b""))
        .sequence(Section::Shared, shared)
        .sequence(Section::Install, install)
        .sequence(
            Section::Validate,
            Sequence::new().condition(Condition::VendorIdentifier),
        )
        .build(&Signer::Es256(&key))
        .unwrap();
    let mut dev = device_serving(vec![0x55; 10_000]);
    dev.capacity = 4096;
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::PayloadTooLarge {
            component: 0,
            limit: 4096
        })
    );
    assert!(dev.bytes_written <= 4096);
    assert!(dev.commits.is_empty());
}

#[test]
fn threat_unauthenticated_manifest_refused() {
    let good = payload();
    let (manifest, _) = {
        let b = ManifestBuilder::new(9, &VENDOR, &CLASS)
            .image(ImageSpec::new(&[b"\x00"], &good).uri(URI).invoke())
            .build_manifest()
            .unwrap();
        (b.manifest, b.severed)
    };
    let stranger = p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
    let mut flipped = seal(&manifest, &[], &[Signer::Es256(&test_p256_key())]);
    // The signature is the last 64 bytes of the authentication wrapper, right before key 3.
    let sig_end = flipped
        .windows(2)
        .position(|w| w[0] == 0x03 && (w[1] == 0x58 || w[1] == 0x59))
        .unwrap();
    flipped[sig_end - 1] ^= 0x80;
    let no_wrapper = {
        // {3: manifest} only.
        let mut e = vec![0xd8, 0x6b, 0xa1, 0x03];
        let full = seal(&manifest, &[], &[]);
        let pos = full
            .windows(2)
            .position(|w| w == [0x03, 0x58] || w == [0x03, 0x59])
            .unwrap();
        e.extend_from_slice(&full[pos + 1..]);
        e
    };
    let cases = [
        ("no signature", seal(&manifest, &[], &[])),
        (
            "untrusted key",
            seal(&manifest, &[], &[Signer::Es256(&stranger)]),
        ),
        ("corrupted signature", flipped),
        ("no authentication wrapper", no_wrapper),
    ];
    for (what, env) in cases {
        let mut dev = device_serving(good.clone());
        let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
        assert_eq!(r, Err(SuitError::Unauthenticated), "{what}");
        untouched(&dev);
        assert!(dev.records.is_empty(), "{what}: no command ran");
    }
}

#[test]
fn threat_unauthenticated_manifest_is_not_even_parsed() {
    // Garbage where the manifest should be: without a valid signature the answer is
    // "unauthenticated", not a parse error of the manifest.
    let garbage = [0xff, 0x00, 0x13, 0x37];
    let stranger = p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap();
    let env = seal(&garbage, &[], &[Signer::Es256(&stranger)]);
    assert_eq!(
        authenticate(&env, &[test_anchor()]).map(|_| ()),
        Err(SuitError::Unauthenticated)
    );
    // Signed by the trusted key, the same bytes are then parsed and refused as malformed.
    let env = seal(&garbage, &[], &[Signer::Es256(&test_p256_key())]);
    assert_eq!(
        authenticate(&env, &[test_anchor()]).map(|_| ()),
        Err(SuitError::Malformed(castellan_suit::Part::Manifest))
    );
}

#[test]
fn threat_manifest_modified_after_verification_refused() {
    let good = payload();
    // The envelope sits in storage another party can write (external flash).
    let mut flash = envelope(1, &CLASS, &good);
    let mut ram = vec![0u8; 4096];
    let (ram_start, ram_len) = (ram.as_ptr() as usize, ram.len());
    let authenticated = authenticate_copy(&flash, &mut ram, &[test_anchor()]).unwrap();

    // After verification, the attacker rewrites the manifest in flash: class id and URI.
    assert_eq!(replace_all(&mut flash, &CLASS, &OTHER_CLASS), 1);
    let evil_uri = "https://updates.example/evl.bin";
    assert_eq!(
        replace_all(&mut flash, URI.as_bytes(), evil_uri.as_bytes()),
        1
    );

    // Processing uses exactly the authenticated bytes: the change has no effect.
    let mut dev = device_serving(good.clone()).with_remote(evil_uri, vec![0xEE; good.len()]);
    Processor::new(&mut dev, 0)
        .process(&authenticated, Procedure::Update)
        .unwrap();
    assert_eq!(dev.fetches, [URI]);
    assert_eq!(dev.content(&[b"\x00"]), good);
    let processed = authenticated.manifest_bytes().as_ptr() as usize;
    assert!(
        (ram_start..ram_start + ram_len).contains(&processed),
        "the processed manifest is the private copy"
    );

    // The modified manifest itself is refused: its digest no longer matches the signed one.
    let mut dev = device_serving(good);
    let r = process(&flash, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(r, Err(SuitError::ManifestDigestMismatch));
    untouched(&dev);
}

#[test]
fn threat_payload_replaced_after_verification_refused() {
    let good = payload();
    let env = envelope(1, &CLASS, &good);
    let evil = vec![0xEE; good.len()];

    // Replaced right after the verified fetch was committed: install's image-match, which
    // re-hashes the component, refuses it.
    let mut dev = device_serving(good.clone());
    dev.replace_after_commit = Some((id(&[b"\x00"]), evil.clone()));
    let r = process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev);
    assert_eq!(
        dev.commits,
        [(0, good.len() as u64)],
        "the fetch itself verified"
    );
    assert_eq!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::ImageMatch,
            component: 0
        })
    );

    // Replaced between a successful update and the next boot: validate refuses to invoke it.
    let mut dev = device_serving(good.clone());
    process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev).unwrap();
    dev.components.insert(id(&[b"\x00"]), evil);
    let r = process(&env, &[test_anchor()], 0, Procedure::Invoke, &mut dev);
    assert_eq!(
        r,
        Err(SuitError::ConditionFailed {
            condition: Condition::ImageMatch,
            component: 0
        })
    );
    assert!(dev.invoked.is_empty());
    // With the genuine image back in place, it boots.
    dev.components.insert(id(&[b"\x00"]), good);
    process(&env, &[test_anchor()], 0, Procedure::Invoke, &mut dev).unwrap();
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn threat_severable_element_swapped_refused() {
    // Severed install sequences from two manifests cannot be exchanged: each is bound by digest.
    let key = test_p256_key();
    let a = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], &payload()).uri(URI))
        .severable(true)
        .build_manifest()
        .unwrap();
    let b = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(&[b"\x00"], &payload()).uri("https://evil.example/x.bin"))
        .severable(true)
        .build_manifest()
        .unwrap();
    let mixed = seal(
        &a.manifest,
        &[EnvelopeMember::Severable(20, &b.severed[0].1)],
        &[Signer::Es256(&key)],
    );
    assert_eq!(
        authenticate(&mixed, &[test_anchor()]).map(|_| ()),
        Err(SuitError::SeverableDigestMismatch(Section::Install))
    );
}
