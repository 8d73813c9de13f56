//! Hostile input never panics: the fuzz target's body run over systematic mutations of real
//! tokens, random bytes, random payloads and a few adversarial CBOR shapes (deep nesting,
//! huge declared lengths). A panic fails the test.

mod common;

use castellan_attest::{Error, ReferenceValues, VerificationKey, decode_token, verify_token};

/// Same body as fuzz/fuzz_targets/attest_token.rs.
fn fuzz_one(data: &[u8], ec: &VerificationKey, mac: &VerificationKey) {
    let _ = decode_token(data);
    let _ = verify_token(data, ec);
    let _ = verify_token(data, mac);
    let _ = castellan_attest::appraise(data, ec, &[0u8; 32], &ReferenceValues::default());
    let mut token = vec![0u8; data.len() + 96];
    if let Ok(n) = castellan_attest::assemble_sign1(data, &[0u8; 64], &mut token) {
        if let Ok(decoded) = decode_token(&token[..n]) {
            let _ = decoded.claims.to_string();
            let _ = ReferenceValues::default().check(&decoded.claims, &[0u8; 32]);
        }
    }
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        common::rfc_sign1(),
        common::rfc_mac0(),
        common::make_token(&common::claims(), &common::device_key()),
    ]
}

fn payload_of(token: &[u8]) -> Vec<u8> {
    use coset::{CoseSign1, TaggedCborSerializable};
    CoseSign1::from_tagged_slice(token)
        .unwrap()
        .payload
        .unwrap()
}

#[test]
fn mutated_tokens_never_panic() {
    let (ec, mac) = (common::rfc_key(), common::rfc_hmac_key());
    for seed in seeds() {
        for i in 0..seed.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut t = seed.clone();
                t[i] ^= mask;
                // Cheap paths only per byte: decoding (no signature check).
                let _ = decode_token(&t);
            }
            for value in [0x00u8, 0x17, 0x18, 0x1b, 0x5b, 0x7b, 0x9b, 0xbb, 0xdb, 0xff] {
                let mut t = seed.clone();
                t[i] = value;
                let _ = decode_token(&t);
            }
            let mut t = seed.clone();
            t.remove(i);
            let _ = decode_token(&t);
        }
        fuzz_one(&seed, &ec, &mac);
    }
}

#[test]
fn mutated_payloads_never_panic_in_claims_parser() {
    let (ec, mac) = (common::rfc_key(), common::rfc_hmac_key());
    for token in [
        common::rfc_sign1(),
        common::make_token(&common::claims(), &common::device_key()),
    ] {
        let payload = payload_of(&token);
        for i in 0..payload.len() {
            for value in [
                0x00u8, 0x01, 0x18, 0x19, 0x20, 0x38, 0x40, 0x5f, 0x60, 0x80, 0x9f, 0xa0, 0xbf,
                0xc0, 0xf6, 0xf9, 0xff,
            ] {
                let mut p = payload.clone();
                p[i] = value;
                fuzz_one(&p, &ec, &mac);
            }
            fuzz_one(&payload[..i], &ec, &mac);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let (ec, mac) = (common::rfc_key(), common::rfc_hmac_key());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let len = (rng.next() % 300) as usize;
        let mut data = rng.bytes(len);
        // Steer a third of the inputs past the first COSE checks.
        match round % 3 {
            0 if data.len() > 2 => data[..2].copy_from_slice(&[0xd2, 0x84]),
            1 if data.len() > 2 => data[..2].copy_from_slice(&[0xa8, 0x0a]),
            _ => {}
        }
        fuzz_one(&data, &ec, &mac);
    }
}

#[test]
fn deeply_nested_payload_is_malformed_not_a_stack_overflow() {
    let mut payload = vec![0x81u8; 100_000]; // [[[[ ... ]]]]
    payload.push(0x00);
    let mut token = vec![0u8; payload.len() + 96];
    let n = castellan_attest::assemble_sign1(&payload, &[0u8; 64], &mut token).unwrap();
    assert!(matches!(
        decode_token(&token[..n]),
        Err(Error::Malformed(_))
    ));
    // Nested at the COSE level too.
    let mut nested = vec![0xd2u8];
    nested.extend(std::iter::repeat_n(0x81u8, 100_000));
    assert!(matches!(decode_token(&nested), Err(Error::Malformed(_))));
}

#[test]
fn huge_declared_lengths_are_malformed_without_allocating_them() {
    // Payload claiming a 2^62-byte byte string / 2^62-entry map, then nothing.
    for payload in [
        vec![0xa1, 0x0a, 0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0],
        vec![0xbb, 0x40, 0, 0, 0, 0, 0, 0, 0],
        vec![0x9b, 0x40, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let mut token = vec![0u8; payload.len() + 96];
        let n = castellan_attest::assemble_sign1(&payload, &[0u8; 64], &mut token).unwrap();
        assert!(
            matches!(decode_token(&token[..n]), Err(Error::Malformed(_))),
            "{payload:02x?}"
        );
    }
    // And at the COSE level: a token whose payload bstr claims 2^62 bytes.
    let token = [
        0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert!(matches!(
        verify_token(&token, &common::rfc_key()),
        Err(Error::Malformed(_))
    ));
}
