//! CA keys in a PKCS#11 token, against the real SoftHSM2 (Debian's `softhsm2`): the PKI is
//! created with keys generated inside a fresh token, its chains and CRLs pass openssl, the keys
//! are sensitive and not extractable, no key file is written, and a restart reloads the same
//! CAs from the token.
//!
//! One test function: SoftHSM2 reads `SOFTHSM2_CONF` once per process.

mod common;

use std::path::Path;
use std::time::Duration;

use castellan_pki::{
    CaKind, KeyBackend, LdevidKey, Pkcs11Token, Pki, PkiError, RevocationReason, RevokedCert,
    SOFTHSM2_MODULE,
};
use castellan_testkit::peers::openssl::{verify_chain, verify_crl};
use castellan_testkit::peers::softhsm;
use common::{SimDevice, now, write, write_cas};

#[test]
fn ca_keys_in_softhsm_token() {
    assert_eq!(SOFTHSM2_MODULE, softhsm::MODULE);
    let tokens = softhsm::TokenDir::create();
    #[allow(unsafe_code)]
    // Safety: this is the only test in this binary, so no other thread reads the environment
    // while it is changed; SoftHSM2 reads the variable when the module is initialised below.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", tokens.conf());
    }
    let module = Path::new(SOFTHSM2_MODULE);
    Pkcs11Token::initialize(module, "castellan-ca", "so-secret", "user-secret").unwrap();
    assert!(
        Pkcs11Token::initialize(module, "castellan-ca", "xxxx", "yyyy").is_err(),
        "label must be unique"
    );

    // Wrong PIN is refused.
    let err = Pkcs11Token::open(module, "castellan-ca", "wrong-pin").unwrap_err();
    assert!(
        matches!(err, PkiError::Pkcs11 { op: "C_Login", .. }),
        "{err}"
    );

    let token = Pkcs11Token::open(module, "castellan-ca", "user-secret").unwrap();
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::init(state.path(), KeyBackend::Pkcs11(token.clone())).unwrap();
    for (kind, location) in pki.key_locations() {
        assert!(location.contains("PKCS#11"), "{kind}: {location}");
        let label = format!("castellan-{}-ca", kind.name());
        assert!(
            token.key_is_protected(&label).unwrap(),
            "{label} must be sensitive, not extractable"
        );
    }
    let files: Vec<String> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().all(|f| !f.contains("key")),
        "no key file with an HSM: {files:?}"
    );

    // Issued chains and CRLs signed inside the token pass openssl.
    write_cas(&pki, work.path());
    let device = SimDevice::new();
    let idevid = pki
        .issue_idevid(&device.csr("x"), "SN-HSM-1", "sensor")
        .unwrap();
    let ldevid = pki
        .issue_ldevid(LdevidKey::PublicKey(&device.public_key()), "dev-hsm")
        .unwrap();
    write(work.path(), "idevid.pem", &idevid.pem);
    write(work.path(), "ldevid.pem", &ldevid.pem);
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "manufacturer.pem",
        &[],
        "idevid.pem",
    );
    assert!(ok, "{out}");
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &[],
        "ldevid.pem",
    );
    assert!(ok, "{out}");
    let crl = pki
        .crl(
            CaKind::Operational,
            &[RevokedCert {
                serial: ldevid.serial.clone(),
                reason: RevocationReason::Superseded,
                revoked_at: now(),
            }],
            Duration::from_secs(3600),
        )
        .unwrap();
    write(work.path(), "crl.pem", &crl.pem);
    let (ok, out) = verify_crl(work.path(), "crl.pem", "operational.pem");
    assert!(ok && out.contains("verify OK"), "{out}");

    // Restart: the same CAs come back from the token.
    let root = pki.root_pem();
    drop(pki);
    let pki = Pki::init(state.path(), KeyBackend::Pkcs11(token.clone())).unwrap();
    assert_eq!(pki.root_pem(), root);
    assert!(pki.identify_client(&ldevid.der, now()).is_ok());

    // A token that lacks the keys does not silently get new CAs for existing certificates.
    Pkcs11Token::initialize(module, "empty", "so-pin-2", "user-pin-2").unwrap();
    let empty = Pkcs11Token::open(module, "empty", "user-pin-2").unwrap();
    let err = Pki::init(state.path(), KeyBackend::Pkcs11(empty)).unwrap_err();
    assert!(matches!(err, PkiError::Pkcs11KeyNotFound { .. }), "{err}");
}
