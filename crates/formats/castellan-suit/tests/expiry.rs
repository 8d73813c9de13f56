//! Castellan's extensions a device needs before it downloads a payload: the release expiry (custom
//! parameter -257 "castellan-expires" in the shared sequence) and the shared sequence run alone
//! (compatibility check, image size and digest), without fetching anything.

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::builder::{ImageSpec, ManifestBuilder, Parameters, Sequence, Signer};
use castellan_suit::{
    CUSTOM_PARAMETER_EXPIRES, Condition, Part, Procedure, Processor, Section, SuitError,
    authenticate, describe, process,
};
use common::*;
use sha2::Digest;

const URI: &str = "castellan:release/r1";

fn builder(payload: &[u8]) -> ManifestBuilder {
    ManifestBuilder::new(3, &VENDOR, &CLASS).image(ImageSpec::new(&[b"\x00"], payload).uri(URI))
}

fn sign(b: &ManifestBuilder) -> Vec<u8> {
    b.build(&Signer::Es256(&test_p256_key())).unwrap()
}

#[test]
fn expiry_round_trips_and_is_ignored_by_the_commands() {
    let payload = payload_a();
    let env = sign(&builder(&payload).expires(1_900_000_000));
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    assert_eq!(m.expires(), Ok(Some(1_900_000_000)));
    assert!(
        m.custom_parameter(CUSTOM_PARAMETER_EXPIRES)
            .unwrap()
            .is_some()
    );
    assert_eq!(m.custom_parameter(-300), Ok(None));
    // The processor ignores the custom parameter: the update still runs.
    let mut dev = MockDevice::new(&[&[b"\x00"]]).with_remote(URI, payload.clone());
    assert_eq!(
        process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev),
        Ok(3)
    );
    assert_eq!(dev.content(&[b"\x00"]), payload);
    let text = describe(&env).unwrap();
    assert!(
        text.contains("castellan-expires (-257): 1900000000"),
        "{text}"
    );
}

#[test]
fn a_manifest_without_expiry_has_none() {
    let env = sign(&builder(&payload_a()));
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    assert_eq!(m.expires(), Ok(None));
}

#[test]
fn override_replaces_and_set_keeps_the_first_value() {
    let shared = Sequence::new()
        .set_parameters(&Parameters::new().expires(10))
        .set_parameters(&Parameters::new().expires(20))
        .override_parameters(
            &Parameters::new()
                .vendor_id(&VENDOR)
                .class_id(&CLASS)
                .image(&payload_a()),
        )
        .condition(Condition::VendorIdentifier);
    let env = sign(&builder(&payload_a()).sequence(Section::Shared, shared.clone()));
    assert_eq!(
        authenticate(&env, &[test_anchor()]).unwrap().expires(),
        Ok(Some(10))
    );
    let shared = shared.override_parameters(&Parameters::new().expires(30));
    let env = sign(&builder(&payload_a()).sequence(Section::Shared, shared));
    assert_eq!(
        authenticate(&env, &[test_anchor()]).unwrap().expires(),
        Ok(Some(30))
    );
}

#[test]
fn an_expiry_that_is_not_an_unsigned_integer_is_malformed() {
    let shared = Sequence::new()
        .override_parameters(&Parameters::new().vendor_id(&VENDOR).class_id(&CLASS))
        .condition(Condition::VendorIdentifier)
        .set_parameters(&Parameters::new().raw(CUSTOM_PARAMETER_EXPIRES, vec![0x41, 0x00]));
    let env = sign(&builder(&payload_a()).sequence(Section::Shared, shared));
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    assert_eq!(m.expires(), Err(SuitError::Malformed(Part::Parameters)));
}

#[test]
fn run_shared_checks_compatibility_and_reports_size_and_digest_without_fetching() {
    let payload = payload_b();
    let env = sign(&builder(&payload).expires(5));
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    let mut dev = MockDevice::new(&[&[b"\x00"]]);
    let p = Processor::new(&mut dev, 0).run_shared(&m, 0).unwrap();
    assert_eq!(p.image_size, Some(payload.len() as u64));
    let digest: [u8; 32] = sha2::Sha256::digest(&payload).into();
    assert_eq!(p.image_digest.unwrap().bytes, digest.as_slice());
    assert_eq!(
        p.uri, None,
        "the URI is set by the install sequence, not the shared one"
    );
    assert!(dev.fetches.is_empty() && dev.bytes_written == 0);
    assert_eq!(
        dev.trace(),
        [
            "shared-sequence condition-vendor-identifier[0] ok",
            "shared-sequence condition-class-identifier[0] ok"
        ]
    );

    // Another class: refused by the shared sequence's condition.
    let mut other = MockDevice::new(&[&[b"\x00"]]);
    other.class_ids = vec![vec![0x77; 16]];
    assert_eq!(
        Processor::new(&mut other, 0).run_shared(&m, 0),
        Err(SuitError::ConditionFailed {
            condition: Condition::ClassIdentifier,
            component: 0
        })
    );
    // Rolled back: refused before anything runs.
    assert_eq!(
        Processor::new(&mut dev, 4).run_shared(&m, 0),
        Err(SuitError::RolledBack {
            stored: 4,
            offered: 3
        })
    );
    // A component index the manifest does not have.
    assert_eq!(
        Processor::new(&mut dev, 0).run_shared(&m, 1).map(|_| ()),
        Err(SuitError::InvalidComponentIndex(1))
    );
}
