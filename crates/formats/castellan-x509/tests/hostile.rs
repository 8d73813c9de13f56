//! CSRs built around an external signer, certificates from the outside world, and hostile input:
//! every truncation, bit flip, oversize input and trailing byte gives a typed error, never a
//! panic.

use castellan_x509::signing::{RawSigner, RcgenSigner};
use castellan_x509::{
    X509Error, build_csr, parse_certificate, parse_certificate_pem, parse_public_key,
    sec1_uncompressed, verify_csr, verify_signed_by,
};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// A fixed P-256 key (tests only).
struct TestKey(SigningKey);

impl TestKey {
    fn new(seed: u8) -> TestKey {
        TestKey(SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    fn public(&self) -> [u8; 65] {
        sec1_uncompressed(self.0.verifying_key())
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], X509Error> {
        let sig: Signature = self.0.sign(msg);
        Ok(sig.to_bytes().into())
    }
}

impl RawSigner for &TestKey {
    type Error = X509Error;

    fn public_key(&self) -> [u8; 65] {
        self.public()
    }

    fn sign_raw(&self, msg: &[u8]) -> Result<[u8; 64], X509Error> {
        self.sign(msg)
    }
}

/// A self-signed CA certificate made with `key` through [`RcgenSigner`].
fn self_signed(key: &TestKey) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x23]));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let signer = RcgenSigner::new(key);
    params.self_signed(&signer).unwrap().der().to_vec()
}

#[test]
fn a_csr_built_around_an_external_signer_verifies_and_carries_its_names() {
    let key = TestKey::new(7);
    let csr = build_csr(&key.public(), "dev-1", Some("SN-1"), |m: &[u8]| key.sign(m)).unwrap();
    let info = verify_csr(&csr).unwrap();
    assert_eq!(info.public_key, key.public());
    assert_eq!(info.requested_common_name.as_deref(), Some("dev-1"));
    assert_eq!(info.requested_serial_number.as_deref(), Some("SN-1"));
}

#[test]
fn a_signer_using_another_key_or_failing_is_caught() {
    let key = TestKey::new(7);
    let other = TestKey::new(8);
    let err = build_csr(&key.public(), "x", None, |m: &[u8]| other.sign(m)).unwrap_err();
    assert_eq!(err, X509Error::SignerProducedBadSignature);
    let err = build_csr(&key.public(), "x", None, |_m: &[u8]| {
        Err::<[u8; 64], _>("secure service busy")
    })
    .unwrap_err();
    assert_eq!(
        err,
        X509Error::SignerFailed {
            detail: "secure service busy".into()
        }
    );
    assert!(matches!(
        build_csr(&key.public(), "x", Some("no_underscore"), |m: &[u8]| key
            .sign(m)),
        Err(X509Error::InvalidName { .. })
    ));
}

#[test]
fn a_certificate_parses_verifies_and_survives_pem() {
    let key = TestKey::new(9);
    let der = self_signed(&key);
    let cert = parse_certificate(&der).unwrap();
    assert!(cert.is_ca);
    assert!(cert.signed_with_ecdsa_sha256);
    assert_eq!(cert.public_key_p256, Some(key.public()));
    assert_eq!(cert.subject_common_name.as_deref(), Some("test CA"));
    assert_eq!(cert.dns_names, vec!["ca.example".to_string()]);
    verify_signed_by(&cert, &cert).unwrap();
    assert_eq!(parse_certificate_pem(&cert.pem()).unwrap(), cert);
    assert!(cert.check_validity(cert.not_before).is_ok());
    assert!(matches!(
        cert.check_validity(cert.not_after + 1),
        Err(X509Error::NotValidNow { .. })
    ));
}

#[test]
fn every_truncation_and_flip_of_a_certificate_is_refused() {
    let key = TestKey::new(9);
    let der = self_signed(&key);
    for len in 0..der.len() {
        assert!(matches!(
            parse_certificate(&der[..len]),
            Err(X509Error::Malformed {
                what: "certificate",
                ..
            })
        ));
    }
    let issuer = parse_certificate(&der).unwrap();
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 0x01;
        // Parsing may succeed (the flip hit a string), but the signature never does.
        if let Ok(cert) = parse_certificate(&d) {
            assert!(verify_signed_by(&cert, &issuer).is_err(), "flip at {i}");
        }
    }
}

#[test]
fn every_truncation_of_a_csr_and_bad_keys_are_refused() {
    let key = TestKey::new(7);
    let csr = build_csr(&key.public(), "dev", None, |m: &[u8]| key.sign(m)).unwrap();
    for len in 0..csr.len() {
        assert!(verify_csr(&csr[..len]).is_err(), "truncated to {len}");
    }
    for bad in [&[0x04u8; 65][..], &[][..], &[0u8; 33][..]] {
        assert!(matches!(
            parse_public_key(bad),
            Err(X509Error::UnsupportedKey { .. })
        ));
    }
}
