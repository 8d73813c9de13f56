//! CA keys in a PKCS#11 token, against the real SoftHSM2 (Debian's `softhsm2`): the PKI is
//! created with keys generated inside a fresh token, its chains and CRLs pass openssl, the keys
//! are sensitive and not extractable, no key file is written, and a restart reloads the same
//! CAs from the token.
//!
//! One test function: SoftHSM2 reads `SOFTHSM2_CONF` once per process.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use castellan_pki::{
    CaKind, KeyBackend, LdevidKey, Pkcs11Token, Pki, PkiError, RevocationReason, RevokedCert,
    SOFTHSM2_MODULE,
};
use common::{SimDevice, now, openssl, write, write_cas};

/// Make sure SoftHSM2 is installed: install it when running as root, otherwise fail with the
/// command to run.
fn ensure_softhsm() {
    if Path::new(SOFTHSM2_MODULE).exists() {
        return;
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.is_ok_and(|u| u == "0") {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "softhsm2"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
            install();
        }
    }
    assert!(
        Path::new(SOFTHSM2_MODULE).exists(),
        "SoftHSM2 is missing ({SOFTHSM2_MODULE}); install it with: sudo apt-get install -y softhsm2"
    );
}

#[test]
fn ca_keys_in_softhsm_token() {
    ensure_softhsm();
    let tokens = tempfile::tempdir().unwrap();
    let conf = tokens.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.path().display()
        ),
    )
    .unwrap();
    #[allow(unsafe_code)]
    // Safety: this is the only test in this binary, so no other thread reads the environment
    // while it is changed; SoftHSM2 reads the variable when the module is initialised below.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", &conf);
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
    let (ok, out) = openssl(
        work.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "manufacturer.pem",
            "idevid.pem",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        work.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "operational.pem",
            "ldevid.pem",
        ],
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
    let (ok, out) = openssl(
        work.path(),
        &[
            "crl",
            "-in",
            "crl.pem",
            "-CAfile",
            "operational.pem",
            "-noout",
            "-verify",
        ],
    );
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
