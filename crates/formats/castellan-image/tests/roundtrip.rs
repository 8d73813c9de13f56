//! Property tests: every image Castellan signs verifies, with the options it was signed with
//! reflected in what verification reports; random corruption is never accepted and never
//! panics.

// Signing needs `std` (which brings every algorithm); tests/algorithms.rs covers the rest.
#![cfg(feature = "std")]

mod common;

use castellan_image::trailer::{FlagState, MagicState, read_trailer};
use castellan_image::{
    Dependency, KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, describe,
    sign_image, verify,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn keys() -> &'static [SigningKey; 3] {
    static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            SigningKey::generate(KeyType::Ed25519),
            SigningKey::generate(KeyType::EcdsaP256),
            SigningKey::generate(KeyType::EcdsaP384),
        ]
    })
}

fn options() -> impl Strategy<Value = SignOptions> {
    (
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u32>()),
        prop_oneof![Just(0x20u16), Just(0x200), Just(0x400)],
        proptest::option::of(any::<u32>()),
        prop::bool::ANY,
        prop::bool::ANY,
        prop::sample::select(vec![1u32, 2, 4, 8, 16, 32]),
        prop::collection::vec((0u8..3, any::<u8>()), 0..3),
        prop::bool::ANY,
        prop_oneof![Just(0xffu8), Just(0)],
    )
        .prop_map(
            |(v, hdr, sec, confirm, full, align, deps, boot_record, erased)| SignOptions {
                version: Version::new(v.0, v.1, v.2, v.3),
                header_size: hdr,
                pad_header: true,
                slot_size: 0x10000,
                align,
                security_counter: sec,
                pad: true,
                confirm,
                public_key_format: if full {
                    PublicKeyFormat::Full
                } else {
                    PublicKeyFormat::Hash
                },
                dependencies: deps
                    .into_iter()
                    .map(|(id, m)| Dependency {
                        image_id: id,
                        min_version: Version::new(m, 0, 1, 0),
                    })
                    .collect(),
                boot_record: boot_record.then(|| "NSPE".to_string()),
                erased_val: erased,
                ..SignOptions::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips(
        payload in prop::collection::vec(any::<u8>(), 0..4096),
        opts in options(),
        which in 0usize..3,
    ) {
        let key = &keys()[which];
        let img = sign_image(&payload, key, &opts).unwrap();
        prop_assert_eq!(img.len(), 0x10000);
        let spki = key.public_spki_der();
        let v = verify(&mut &img[..], TrustedKey::Spki(&spki)).unwrap();
        prop_assert_eq!(v.version(), opts.version);
        prop_assert_eq!(v.security_counter, opts.security_counter);
        prop_assert_eq!(v.dependencies(), &opts.dependencies[..]);
        prop_assert_eq!(v.boot_record.is_some(), opts.boot_record.is_some());
        prop_assert_eq!(v.header().img_size as usize, payload.len());
        let t = read_trailer(&mut &img[..], opts.erased_val, 8).unwrap();
        prop_assert_eq!(t.magic, MagicState::Good);
        prop_assert_eq!(t.image_ok, if opts.confirm { FlagState::Set } else { FlagState::Unset });
        let d = describe(&img, opts.erased_val).unwrap();
        prop_assert_eq!(d.header, *v.header());
    }

    #[test]
    fn random_corruption_of_the_signed_region_is_refused(
        payload in prop::collection::vec(any::<u8>(), 1..2048),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        which in 0usize..3,
    ) {
        let key = &keys()[which];
        let opts = SignOptions { pad_header: true, security_counter: Some(3), ..SignOptions::default() };
        let img = sign_image(&payload, key, &opts).unwrap();
        let mut bad = img.clone();
        for (i, x) in &flips {
            let at = i.index(bad.len());
            bad[at] ^= x;
        }
        let spki = key.public_spki_der();
        prop_assert!(verify(&mut &bad[..], TrustedKey::Spki(&spki)).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let spki = keys()[0].public_spki_der();
        let _ = verify(&mut &data[..], TrustedKey::Spki(&spki));
        let _ = describe(&data, 0xff);
    }

    #[test]
    fn header_with_random_sizes_never_panics(
        hdr in any::<u16>(), prot in any::<u16>(), size in any::<u32>(), tail in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        let mut img = common::signed(&keys()[1], 64);
        img[8..10].copy_from_slice(&hdr.to_le_bytes());
        img[10..12].copy_from_slice(&prot.to_le_bytes());
        img[12..16].copy_from_slice(&size.to_le_bytes());
        img.extend_from_slice(&tail);
        let spki = keys()[1].public_spki_der();
        prop_assert!(verify(&mut &img[..], TrustedKey::Spki(&spki)).is_err() || (hdr == 0x200 && size == 64 && prot == 12));
    }
}

#[test]
fn boot_record_carries_the_software_type_and_signer() {
    let key = &keys()[1];
    let opts = SignOptions {
        pad_header: true,
        version: Version::new(2, 5, 1, 0),
        boot_record: Some("SPE".into()),
        ..SignOptions::default()
    };
    let img = sign_image(b"secure world", key, &opts).unwrap();
    let spki = key.public_spki_der();
    let v = verify(&mut &img[..], TrustedKey::Spki(&spki)).unwrap();
    let br = v.boot_record.unwrap();
    let cbor = &img[br.offset as usize..br.offset as usize + br.len as usize];
    // CBOR map of 5: type "SPE", version "2.5.1", signer id = hash of key, description, zeroed value.
    assert_eq!(cbor[0], 0xa5);
    assert_eq!(&cbor[1..6], &[0x01, 0x63, b'S', b'P', b'E']);
    assert!(cbor.windows(5).any(|w| w == b"2.5.1"));
    assert!(
        cbor.windows(32)
            .any(|w| w == castellan_image::signer_id(&spki))
    );
    assert!(cbor.ends_with(&[0u8; 32]));
}
