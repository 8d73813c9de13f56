//! Hostile input to the certificate and CSR parsers: every truncation, every single-bit flip,
//! random bytes, oversize input and trailing garbage give a typed error (or a certificate whose
//! signature then fails), never a panic.

mod common;

use castellan_pki::{
    KeyBackend, LdevidKey, MAX_DER_LEN, Pki, PkiError, parse_certificate, parse_public_key,
    verify_csr,
};
use common::{SimDevice, now};

fn sample() -> (tempfile::TempDir, Pki, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let cert = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-1",
        )
        .unwrap();
    (dir, pki, cert.der)
}

#[test]
fn every_truncation_of_a_certificate_is_a_typed_error() {
    let (_d, pki, der) = sample();
    for len in 0..der.len() {
        let err = parse_certificate(&der[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                PkiError::Malformed {
                    what: "certificate",
                    ..
                }
            ),
            "len {len}: {err}"
        );
        assert!(pki.identify_client(&der[..len], now()).is_err());
    }
}

#[test]
fn every_bit_flip_of_a_certificate_is_refused_by_identify_client() {
    let (_d, pki, der) = sample();
    assert!(pki.identify_client(&der, now()).is_ok());
    for i in 0..der.len() {
        for bit in [0x01u8, 0x80] {
            let mut d = der.clone();
            d[i] ^= bit;
            // Parsing may succeed (the flip hit a string), but the identity never does.
            let _ = parse_certificate(&d);
            assert!(
                pki.identify_client(&d, now()).is_err(),
                "flip at byte {i} bit {bit:#x} accepted"
            );
        }
    }
}

#[test]
fn trailing_bytes_and_oversize_input_are_refused() {
    let (_d, _pki, der) = sample();
    let mut d = der.clone();
    d.push(0);
    assert_eq!(
        parse_certificate(&d).unwrap_err(),
        PkiError::Malformed {
            what: "certificate",
            reason: "trailing bytes after the certificate"
        }
    );
    let big = vec![0x30u8; MAX_DER_LEN + 1];
    assert!(matches!(
        parse_certificate(&big),
        Err(PkiError::Malformed { .. })
    ));
    assert!(matches!(verify_csr(&big), Err(PkiError::Malformed { .. })));
}

#[test]
fn pseudo_random_input_never_panics() {
    // xorshift: deterministic, no extra dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (_d, _pki, der) = sample();
    for round in 0..3000 {
        let len = (next() % 600) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && !buf.is_empty() {
            // Start like a certificate so the parser goes deeper.
            let n = buf.len().min(der.len());
            buf[..n / 2].copy_from_slice(&der[..n / 2]);
        }
        let _ = parse_certificate(&buf);
        let _ = verify_csr(&buf);
        let _ = parse_public_key(&buf);
    }
}

#[test]
fn every_truncation_and_flip_of_a_csr_is_refused() {
    let csr = SimDevice::new().csr("dev");
    verify_csr(&csr).unwrap();
    for len in 0..csr.len() {
        assert!(verify_csr(&csr[..len]).is_err(), "truncated to {len}");
    }
    for i in 0..csr.len() {
        let mut d = csr.clone();
        d[i] ^= 0x04;
        if let Ok(info) = verify_csr(&d) {
            // Only a flip in the unsigned outer encoding that DER-decodes identically could pass,
            // and it must still certify the same key.
            panic!("flip at {i} accepted: {info:?}");
        }
    }
}

#[test]
fn non_p256_keys_are_refused() {
    assert!(matches!(
        parse_public_key(&[0x04; 65]),
        Err(PkiError::UnsupportedKey { .. })
    ));
    assert!(matches!(
        parse_public_key(&[]),
        Err(PkiError::UnsupportedKey { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::init(dir.path(), KeyBackend::Files).unwrap();
    let err = pki
        .issue_ldevid(LdevidKey::PublicKey(&[0u8; 33]), "dev-1")
        .unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedKey { .. }));
}
