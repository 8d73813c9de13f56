//! Detection reports: signed, parsed and verified; every change to a signed report, another
//! key, or an attestation-style signature is refused; hostile bytes never panic the parser.

use castellan_detect_report::{
    REPORT_MAX, Report, ReportError, encode_report, parse_report, report_len, verify_report,
};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn public(k: &SigningKey) -> Vec<u8> {
    k.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

fn sample(counter: u64) -> Report {
    Report {
        counter,
        first_event: 1000,
        events: 250,
        score_milli: 1234,
        crossed: true,
        counters: [300, 2, 5, 40, 960, 1, 0, 0],
        model_digest: [7; 32],
        instance_id: [1; 33],
        alarm_milli: 800,
    }
}

fn sign(report: &Report, k: &SigningKey) -> Vec<u8> {
    let mut out = [0u8; REPORT_MAX];
    let mut signer = |tbs: &[u8]| -> Result<[u8; 64], i32> {
        let s: Signature = k.sign(tbs);
        Ok(s.to_bytes().into())
    };
    let n = encode_report(report, &mut signer, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn a_signed_report_verifies_and_round_trips() {
    let k = key(3);
    for r in [
        sample(1),
        sample(u64::MAX),
        Report {
            crossed: false,
            ..sample(0)
        },
    ] {
        let bytes = sign(&r, &k);
        assert_eq!(bytes.len(), report_len(&r).unwrap());
        assert!(bytes.len() <= REPORT_MAX);
        assert_eq!(verify_report(&bytes, &public(&k)).unwrap(), r);
    }
}

#[test]
fn attack_forged_report_with_another_key_is_refused() {
    let bytes = sign(&sample(5), &key(4));
    assert_eq!(
        verify_report(&bytes, &public(&key(3))),
        Err(ReportError::BadSignature)
    );
}

#[test]
fn attack_every_changed_byte_is_refused() {
    let k = key(3);
    let bytes = sign(&sample(9), &k);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(verify_report(&b, &public(&k)).is_err(), "byte {i}");
    }
}

#[test]
fn attack_an_attestation_style_signature_is_not_a_report() {
    // The same key signing the same payload under a token's header and empty AAD (what the
    // attestation service signs) does not make a report: content type and domain tag differ.
    let k = key(3);
    let good = sign(&sample(2), &k);
    let parsed = parse_report(&good).unwrap();
    let mut tbs = vec![0x84, 0x6a];
    tbs.extend_from_slice(b"Signature1");
    tbs.extend_from_slice(&[0x43, 0xa1, 0x01, 0x26, 0x40]);
    tbs.push(0x58);
    tbs.push(parsed.payload.len() as u8);
    tbs.extend_from_slice(parsed.payload);
    let s: Signature = k.sign(&tbs);
    let mut forged = good.clone();
    let n = forged.len();
    forged[n - 64..].copy_from_slice(&s.to_bytes());
    assert_eq!(
        verify_report(&forged, &public(&k)),
        Err(ReportError::BadSignature)
    );
    // And a header of a token (alg alone) is refused before any signature check.
    assert!(matches!(
        parse_report(&[0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40, 0x40]),
        Err(ReportError::Malformed(_))
    ));
}

#[test]
fn a_bad_key_is_named() {
    let bytes = sign(&sample(1), &key(3));
    assert_eq!(verify_report(&bytes, &[4; 10]), Err(ReportError::BadKey));
}

#[test]
fn non_shortest_integers_are_refused() {
    let k = key(3);
    let bytes = sign(&sample(1), &k);
    // tag 18 written with a one-byte argument instead of inline.
    let mut b = vec![0xd8, 18];
    b.extend_from_slice(&bytes[1..]);
    assert!(matches!(parse_report(&b), Err(ReportError::Malformed(_))));
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_report(&bytes);
    }

    #[test]
    fn mutated_reports_never_panic(i in 0usize..300, v in any::<u8>(), cut in 0usize..300) {
        let mut b = sign(&sample(7), &key(3));
        let n = b.len();
        b[i % n] = v;
        b.truncate(cut.max(1).min(n));
        let _ = parse_report(&b);
    }
}
