//! Command semantics of the abstract machine (draft section 6): try-each and run-sequence with
//! soft-failure, component index forms, write/check-content, copy/swap, integrated payloads,
//! invoke arguments, and the typed refusals for what the processor does not support.

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::builder::{ImageSpec, ManifestBuilder, Parameters, Sequence, Signer, seal};
use castellan_suit::{
    Condition, Directive, Parameter, Part, Procedure, Processor, Section, SuitError, authenticate,
    process,
};
use common::*;

const C0: &[&[u8]] = &[b"\x00"];
const C1: &[&[u8]] = &[b"\x01"];
const C2: &[&[u8]] = &[b"\x02"];

fn compat() -> Sequence {
    Sequence::new()
        .override_parameters(&Parameters::new().vendor_id(&VENDOR).class_id(&CLASS))
        .condition(Condition::VendorIdentifier)
        .condition(Condition::ClassIdentifier)
}

/// One-component envelope whose validate sequence is `validate`.
fn with_validate(validate: Sequence) -> Vec<u8> {
    let key = test_p256_key();
    ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(C0, b""))
        .sequence(Section::Shared, compat())
        .sequence(Section::Validate, validate)
        .build(&Signer::Es256(&key))
        .unwrap()
}

fn boot(env: &[u8], dev: &mut MockDevice) -> Result<u64, SuitError> {
    process(env, &[test_anchor()], 0, Procedure::Invoke, dev)
}

fn abort() -> Sequence {
    Sequence::new().condition(Condition::Abort)
}

fn abort_failed(component: usize) -> SuitError {
    SuitError::ConditionFailed {
        condition: Condition::Abort,
        component,
    }
}

#[test]
fn try_each_with_all_alternatives_failing_reports_the_condition() {
    let env = with_validate(
        Sequence::new()
            .try_each(&[abort(), abort()], false)
            .directive(Directive::Invoke),
    );
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(boot(&env, &mut dev), Err(abort_failed(0)));
    assert!(dev.invoked.is_empty());
    let aborts = dev.count_in_trace("condition-abort");
    assert_eq!(aborts, 2, "both alternatives were tried");
}

#[test]
fn try_each_with_trailing_nil_continues() {
    let env = with_validate(
        Sequence::new()
            .try_each(&[abort()], true)
            .directive(Directive::Invoke),
    );
    let mut dev = MockDevice::new(&[C0]);
    boot(&env, &mut dev).unwrap();
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn try_each_stops_at_the_first_success() {
    let first = Sequence::new().directive(Directive::Invoke);
    let env = with_validate(Sequence::new().try_each(&[abort(), first, abort()], false));
    let mut dev = MockDevice::new(&[C0]);
    boot(&env, &mut dev).unwrap();
    assert_eq!(dev.invoked.len(), 1);
    let aborts = dev.count_in_trace("condition-abort");
    assert_eq!(aborts, 1, "the third alternative was not run");
}

#[test]
fn soft_failure_false_inside_try_each_makes_a_failure_final() {
    let hard = Sequence::new()
        .override_parameters(&Parameters::new().soft_failure(false))
        .condition(Condition::Abort);
    let never = Sequence::new().directive(Directive::Invoke);
    let env = with_validate(Sequence::new().try_each(&[hard, never], false));
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(boot(&env, &mut dev), Err(abort_failed(0)));
    assert!(dev.invoked.is_empty(), "the next alternative was not tried");
}

#[test]
fn soft_failure_outside_try_each_or_run_sequence_is_refused() {
    let env =
        with_validate(Sequence::new().override_parameters(&Parameters::new().soft_failure(true)));
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(boot(&env, &mut dev), Err(SuitError::SoftFailureNotAllowed));
}

#[test]
fn run_sequence_with_soft_failure_halts_and_continues_after() {
    let inner = Sequence::new()
        .override_parameters(&Parameters::new().soft_failure(true))
        .condition(Condition::Abort)
        .directive(Directive::Invoke); // not reached
    let env = with_validate(
        Sequence::new()
            .run_sequence(&inner)
            .override_parameters(&Parameters::new().invoke_args(b"after"))
            .directive(Directive::Invoke),
    );
    let mut dev = MockDevice::new(&[C0]);
    boot(&env, &mut dev).unwrap();
    assert_eq!(dev.invoked, [(0, Some(b"after".to_vec()))]);
}

#[test]
fn run_sequence_defaults_to_hard_failure() {
    let env = with_validate(
        Sequence::new()
            .run_sequence(&abort())
            .directive(Directive::Invoke),
    );
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(boot(&env, &mut dev), Err(abort_failed(0)));
    assert!(dev.invoked.is_empty());
}

#[test]
fn nesting_beyond_the_limit_is_refused() {
    let mut seq = Sequence::new().directive(Directive::Invoke);
    for _ in 0..=castellan_suit::MAX_NESTING {
        seq = Sequence::new().run_sequence(&seq);
    }
    let env = with_validate(seq.clone());
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::LimitExceeded(Part::Sequence))
    );
    assert!(dev.invoked.is_empty());
    // MAX_NESTING levels run.
    let mut ok = Sequence::new().directive(Directive::Invoke);
    for _ in 0..castellan_suit::MAX_NESTING {
        ok = Sequence::new().run_sequence(&ok);
    }
    let mut dev = MockDevice::new(&[C0]);
    boot(&with_validate(ok), &mut dev).unwrap();
    assert_eq!(dev.invoked.len(), 1);
}

fn three_components(validate: Sequence) -> Vec<u8> {
    let key = test_p256_key();
    let shared = Sequence::new()
        .set_component_all()
        .override_parameters(&Parameters::new().vendor_id(&VENDOR).class_id(&CLASS));
    ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(C0, b""))
        .image(ImageSpec::new(C1, b""))
        .image(ImageSpec::new(C2, b""))
        .sequence(Section::Shared, shared)
        .sequence(Section::Validate, validate)
        .build(&Signer::Es256(&key))
        .unwrap()
}

#[test]
fn component_index_true_and_lists_select_components() {
    let env = three_components(
        Sequence::new()
            .set_component_all()
            .condition(Condition::ClassIdentifier)
            .set_component_list(&[2, 0])
            .directive(Directive::Invoke),
    );
    let mut dev = MockDevice::new(&[C0, C1, C2]);
    boot(&env, &mut dev).unwrap();
    assert_eq!(
        dev.trace(),
        [
            "validate condition-class-identifier[0] ok",
            "validate condition-class-identifier[1] ok",
            "validate condition-class-identifier[2] ok",
            "validate directive-invoke[2] ok",
            "validate directive-invoke[0] ok",
        ]
    );
}

#[test]
fn out_of_range_component_index_is_refused() {
    let env = three_components(Sequence::new().set_component_index(5));
    let mut dev = MockDevice::new(&[C0, C1, C2]);
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::InvalidComponentIndex(5))
    );
}

#[test]
fn multi_component_sequence_must_start_with_set_component_index() {
    let env = three_components(Sequence::new().directive(Directive::Invoke));
    let mut dev = MockDevice::new(&[C0, C1, C2]);
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::MissingComponentIndex(Section::Validate))
    );
    assert!(dev.invoked.is_empty());
}

#[test]
fn unknown_commands_and_parameters_are_refused_custom_parameters_ignored() {
    let env = with_validate(Sequence::new().raw(99, &[0x0f]));
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(boot(&env, &mut dev), Err(SuitError::UnsupportedCommand(99)));

    // 11 = process-dependency (trust-domains draft): not implemented.
    let env = with_validate(Sequence::new().raw(11, &[0x0f]));
    assert_eq!(boot(&env, &mut dev), Err(SuitError::UnsupportedCommand(11)));

    // 19 = encryption-info: refusing beats installing ciphertext.
    let env =
        with_validate(Sequence::new().override_parameters(&Parameters::new().raw(19, vec![0x40])));
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::UnsupportedParameter(19))
    );

    let env = with_validate(
        Sequence::new()
            .override_parameters(&Parameters::new().raw(-300, vec![0x01]).invoke_args(b"x"))
            .directive(Directive::Invoke),
    );
    boot(&env, &mut dev).unwrap();
    assert_eq!(dev.invoked, [(0, Some(b"x".to_vec()))]);
}

#[test]
fn write_then_check_content() {
    let env = with_validate(
        Sequence::new()
            .override_parameters(&Parameters::new().content(b"config=1"))
            .directive(Directive::Write)
            .condition(Condition::CheckContent)
            .override_parameters(&Parameters::new().content(b"config=2"))
            .condition(Condition::CheckContent),
    );
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::ConditionFailed {
            condition: Condition::CheckContent,
            component: 0
        })
    );
    assert_eq!(dev.content(C0), b"config=1");
    assert!(
        dev.trace()
            .contains(&"validate condition-check-content[0] ok".to_string())
    );
}

#[test]
fn copy_and_swap_use_the_source_component() {
    let key = test_p256_key();
    let validate = Sequence::new()
        .set_component_index(1)
        .override_parameters(&Parameters::new().source_component(0).image(b"image"))
        .directive(Directive::Copy)
        .condition(Condition::ImageMatch)
        .set_component_index(0)
        .override_parameters(&Parameters::new().source_component(1))
        .directive(Directive::Swap);
    let env = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(C0, b""))
        .image(ImageSpec::new(C1, b""))
        .sequence(Section::Shared, Sequence::new().set_component_index(0))
        .sequence(Section::Validate, validate)
        .build(&Signer::Es256(&key))
        .unwrap();
    let mut dev = MockDevice::new(&[C0, C1]).with_content(C0, b"image".to_vec());
    dev.components.insert(id(C1), b"previous".to_vec());
    boot(&env, &mut dev).unwrap();
    assert_eq!(dev.swaps, [(0, 1)]);
    assert_eq!(dev.content(C0), b"image");
    assert_eq!(dev.content(C1), b"image");

    // Copying a component onto itself, or without a source, is refused.
    let bad = Sequence::new()
        .set_component_index(0)
        .override_parameters(&Parameters::new().source_component(0))
        .directive(Directive::Copy);
    let env = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(C0, b""))
        .image(ImageSpec::new(C1, b""))
        .sequence(Section::Shared, Sequence::new().set_component_index(0))
        .sequence(Section::Validate, bad)
        .build(&Signer::Es256(&key))
        .unwrap();
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::InvalidComponentIndex(0))
    );
    let missing = with_validate(Sequence::new().directive(Directive::Swap));
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(
        boot(&missing, &mut dev),
        Err(SuitError::MissingParameter {
            directive: Directive::Swap,
            parameter: Parameter::SourceComponent,
            component: 0
        })
    );
}

#[test]
fn fetch_without_uri_names_the_missing_parameter() {
    let env = with_validate(Sequence::new().directive(Directive::Fetch));
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(
        boot(&env, &mut dev),
        Err(SuitError::MissingParameter {
            directive: Directive::Fetch,
            parameter: Parameter::Uri,
            component: 0
        })
    );
}

#[test]
fn integrated_payload_is_fetched_from_the_envelope() {
    let key = test_p256_key();
    let image = payload_a();
    let env = ManifestBuilder::new(3, &VENDOR, &CLASS)
        .image(
            ImageSpec::new(C0, &image)
                .integrated("#app.bin", &image)
                .invoke(),
        )
        .build(&Signer::Es256(&key))
        .unwrap();
    let mut dev = MockDevice::new(&[C0]);
    assert_eq!(
        process(&env, &[test_anchor()], 0, Procedure::Update, &mut dev),
        Ok(3)
    );
    assert!(dev.fetches.is_empty(), "no network fetch");
    assert_eq!(dev.content(C0), image);
    process(&env, &[test_anchor()], 3, Procedure::Invoke, &mut dev).unwrap();
    assert_eq!(dev.invoked, [(0, None)]);
}

#[test]
fn manifest_without_sequences_still_checks_compatibility() {
    let key = test_p256_key();
    let env = ManifestBuilder::new(1, &VENDOR, &CLASS)
        .image(ImageSpec::new(C0, b""))
        .sequence(Section::Shared, compat())
        .sequence(Section::Validate, Sequence::new())
        .build(&Signer::Es256(&key))
        .unwrap();
    let m = authenticate(&env, &[test_anchor()]).unwrap();
    assert!(!m.has_section(Section::Validate));
    let mut dev = MockDevice::new(&[C0]);
    dev.class_ids.clear();
    assert_eq!(
        Processor::new(&mut dev, 0).process(&m, Procedure::Invoke),
        Err(SuitError::ConditionFailed {
            condition: Condition::ClassIdentifier,
            component: 0
        })
    );
}

/// Hand-encoded manifests for fields the builder never writes.
fn raw_manifest(version: u8, common: &[u8]) -> Vec<u8> {
    let mut m = vec![0xa3, 0x01, version, 0x02, 0x00, 0x03];
    m.push(0x40 | common.len() as u8);
    m.extend_from_slice(common);
    m
}

#[test]
fn unsupported_version_and_dependencies_are_refused() {
    let key = test_p256_key();
    // common = {2: [[h'00']]}
    let common = [0xa1, 0x02, 0x81, 0x81, 0x41, 0x00];
    let env = seal(&raw_manifest(2, &common), &[], &[Signer::Es256(&key)]);
    assert_eq!(
        authenticate(&env, &[test_anchor()]).map(|_| ()),
        Err(SuitError::UnsupportedVersion(2))
    );
    let env = seal(&raw_manifest(1, &common), &[], &[Signer::Es256(&key)]);
    assert!(authenticate(&env, &[test_anchor()]).is_ok());
    // common = {1: [{1: [-16, h'']}], 2: [[h'00']]}: dependencies (trust-domains draft).
    let deps = [
        0xa2, 0x01, 0x81, 0xa1, 0x01, 0x82, 0x2f, 0x40, 0x02, 0x81, 0x81, 0x41, 0x00,
    ];
    let env = seal(&raw_manifest(1, &deps), &[], &[Signer::Es256(&key)]);
    assert_eq!(
        authenticate(&env, &[test_anchor()]).map(|_| ()),
        Err(SuitError::UnsupportedFeature(Section::Common))
    );
}

#[test]
fn errors_display_what_failed() {
    let e = SuitError::ConditionFailed {
        condition: Condition::ClassIdentifier,
        component: 0,
    };
    assert_eq!(
        e.to_string(),
        "condition condition-class-identifier failed for component 0"
    );
    assert_eq!(
        SuitError::RolledBack {
            stored: 5,
            offered: 4
        }
        .to_string(),
        "rollback refused: manifest sequence number 4 is older than 5"
    );
    assert_eq!(
        SuitError::PayloadTooLarge {
            component: 1,
            limit: 10
        }
        .to_string(),
        "payload for component 1 exceeds its limit of 10 bytes"
    );
}
