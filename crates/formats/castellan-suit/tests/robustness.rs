//! Hostile input: random bytes, truncations and random mutations of the draft's examples (before
//! and after signing) must give typed errors, never a panic, and never authenticate.

// The shared support builds envelopes with the host builder (`std`); tests/eddsa_feature.rs
// runs without it.
#![cfg(feature = "std")]

mod common;

use castellan_suit::builder::{EnvelopeMember, Signer, seal};
use castellan_suit::{Envelope, Procedure, Processor, Section, SuitError, authenticate, describe};
use common::*;
use proptest::prelude::*;

/// A device with every component the examples use, serving every URI they fetch.
fn device() -> MockDevice {
    let mut dev = MockDevice::new(&[&[b"\x00"], &[b"\x01"], &[b"\x02"]])
        .with_content(&[b"\x00"], payload_a())
        .with_content(&[b"\x01"], payload_b());
    for uri in [
        "http://example.com/file.bin",
        "http://example.com/file1.bin",
        "http://example.com/file2.bin",
        "http://example.com/very/long/path/to/file/file.bin",
    ] {
        dev.remote.insert(uri.into(), payload_a());
    }
    dev.slots.insert(id(&[b"\x00"]), 1);
    dev
}

/// Authenticates with both the example key and the test key, then runs both procedures.
fn exercise(envelope: &[u8]) -> Result<(), SuitError> {
    let _ = describe(envelope);
    let m = authenticate(envelope, &[example_anchor(), test_anchor()])?;
    let mut dev = device();
    let update = Processor::new(&mut dev, 0).process(&m, Procedure::Update);
    let boot = Processor::new(&mut dev, 0).process(&m, Procedure::Invoke);
    update.and(boot)
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    let at = |i: usize| i % data.len();
    match *m {
        Mutation::Flip(i, x) => {
            let i = at(i);
            data[i] ^= x;
        }
        Mutation::Truncate(i) => data.truncate(at(i)),
        Mutation::Insert(i, b) => {
            let i = at(i);
            data.insert(i, b);
        }
        Mutation::Remove(i) => {
            let i = at(i);
            data.remove(i);
        }
    }
}

#[test]
fn every_truncation_of_every_example_is_refused() {
    for n in 0..6 {
        let env = example(n);
        for len in 0..env.len() {
            let r = authenticate(&env[..len], &[example_anchor()]);
            assert!(
                r.is_err(),
                "example {n} truncated to {len} bytes was accepted"
            );
        }
    }
}

#[test]
fn trailing_bytes_after_the_envelope_are_refused() {
    let mut env = example(0);
    env.push(0x00);
    assert_eq!(
        authenticate(&env, &[example_anchor()]).map(|_| ()),
        Err(SuitError::Malformed(castellan_suit::Part::Envelope))
    );
}

#[test]
fn duplicate_envelope_keys_are_refused() {
    // {2: auth, 3: manifest, 3: manifest}: which manifest was signed must never be ambiguous.
    let env = example(0);
    assert!(Envelope::parse(&env).is_ok());
    let mut dup = env.clone();
    dup[2] = 0xa3; // map of 3 pairs
    let manifest_at = env.len() - (0x71 + 3);
    dup.extend_from_slice(&env[manifest_at..]);
    assert_eq!(env[manifest_at], 0x03);
    assert_eq!(
        Envelope::parse(&dup).map(|_| ()),
        Err(SuitError::Malformed(castellan_suit::Part::Envelope))
    );
}

fn resigned_examples() -> &'static [Vec<u8>] {
    static CACHE: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| (0..6).map(example_with_real_digests).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_and_never_authenticate(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(exercise(&data).is_err());
    }

    #[test]
    fn random_bytes_behind_an_envelope_tag_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut env = vec![0xd8, 0x6b, 0xa2, 0x02];
        env.extend_from_slice(&data);
        prop_assert!(exercise(&env).is_err());
    }

    #[test]
    fn mutated_signed_examples_never_panic(n in 0usize..6, muts in proptest::collection::vec(mutation(), 1..4)) {
        let original = example(n);
        let mut env = original.clone();
        for m in &muts {
            apply(&mut env, m);
        }
        let r = exercise(&env);
        // Mutations of the signed bytes must not produce a *different* accepted manifest.
        if let Ok(m) = authenticate(&env, &[example_anchor()]) {
            let o = authenticate(&original, &[example_anchor()]).unwrap();
            prop_assert_eq!(m.manifest_bytes(), o.manifest_bytes());
        }
        let _ = r;
    }

    /// Mutations after signing reach the manifest decoder and the interpreter.
    #[test]
    fn mutated_manifests_resigned_never_panic(n in 0usize..6, muts in proptest::collection::vec(mutation(), 1..4)) {
        let env = &resigned_examples()[n];
        let e = Envelope::parse(env).unwrap();
        let m = e.authenticate(&[test_anchor()]).unwrap();
        let mut manifest = strip_bstr(m.manifest_bytes()).to_vec();
        for mu in &muts {
            apply(&mut manifest, mu);
        }
        let install = e.severable_element(Section::Install);
        let text = e.severable_element(Section::Text);
        let mut members = Vec::new();
        if let Some(i) = install { members.push(EnvelopeMember::Severable(20, i)); }
        if let Some(t) = text { members.push(EnvelopeMember::Severable(23, t)); }
        let resigned = seal(&manifest, &members, &[Signer::Es256(&test_p256_key())]);
        let _ = exercise(&resigned);
    }

    /// Random command sequences (pairs of small codes and arguments) run by the interpreter.
    #[test]
    fn random_sequences_never_panic(body in proptest::collection::vec(any::<u8>(), 1..80), pairs in 1u8..12) {
        // set-component-index 0, then random commands.
        let mut seq = vec![0x80 | (2 * pairs).min(22), 0x0c, 0x00];
        seq.extend_from_slice(&body);
        let mut validate = vec![0x58, seq.len() as u8];
        validate.extend_from_slice(&seq);
        // {1:1, 2:0, 3: << {2: [[h'00'],[h'01']]} >>, 7: validate}
        let mut manifest = vec![0xa4, 0x01, 0x01, 0x02, 0x00, 0x03, 0x4a, 0xa1, 0x02, 0x82, 0x81, 0x41, 0x00, 0x81, 0x41, 0x01, 0x07];
        manifest.extend_from_slice(&validate);
        let env = seal(&manifest, &[], &[Signer::Es256(&test_p256_key())]);
        let _ = exercise(&env);
    }
}
