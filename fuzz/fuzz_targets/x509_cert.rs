//! Fuzz target for `castellan-x509`, the parser of certificates and CSRs from devices and TLS
//! clients (the broker's DER): arbitrary bytes go to the certificate parser, the CSR verifier,
//! the public-key reader, and `Pki::identify_client` of a real PKI (castellan-pki, which builds on
//! castellan-x509). Any panic is a bug.
#![no_main]

use std::sync::OnceLock;

use castellan_pki::{KeyBackend, Pki};

fn pki() -> Option<&'static Pki> {
    static PKI: OnceLock<Option<Pki>> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("castellan-fuzz-pki-{}", std::process::id()));
        Pki::init(&dir, KeyBackend::Files).ok()
    })
    .as_ref()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = castellan_x509::parse_certificate(data) {
        let _ = cert.serial_hex();
        let _ = cert.pem();
        let _ = castellan_x509::verify_signed_by(&cert, &cert);
    }
    let _ = castellan_x509::verify_csr(data);
    let _ = castellan_x509::parse_public_key(data);
    if let Some(pki) = pki() {
        let _ = pki.identify_client(data, 1_700_000_000);
    }
});
