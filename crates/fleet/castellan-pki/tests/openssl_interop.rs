//! Interop with the real `openssl` binary: every certificate chain the PKI issues passes
//! `openssl verify`, CRLs pass `openssl crl -verify` and make `openssl verify -crl_check` refuse
//! the revoked leaf, and CSRs go both ways (openssl's accepted by the CA, ours accepted by
//! openssl).

mod common;

use std::time::Duration;

use castellan_pki::{CaKind, KeyBackend, LdevidKey, Pki, RevocationReason, RevokedCert};
use castellan_testkit::peers::openssl::{new_p256_csr, verify_chain, verify_crl};
use common::{SimDevice, now, openssl, write, write_cas};

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Pki) {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::init(state.path(), KeyBackend::Files).unwrap();
    write_cas(&pki, work.path());
    (state, work, pki)
}

#[test]
fn idevid_chain_passes_openssl_verify() {
    let (_s, work, pki) = setup();
    let device = SimDevice::new();
    let cert = pki
        .issue_idevid(&device.csr("ignored"), "SN-0001", "sensor-v1")
        .unwrap();
    write(work.path(), "leaf.pem", &cert.pem);
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "manufacturer.pem",
        &["-purpose", "sslclient"],
        "leaf.pem",
    );
    assert!(ok && out.contains("leaf.pem: OK"), "{out}");

    // The same leaf does not chain through the operational CA: verify really checks.
    let (ok, out) = verify_chain(work.path(), "root.pem", "operational.pem", &[], "leaf.pem");
    assert!(
        !ok,
        "an IDevID must not verify through the operational CA: {out}"
    );

    let (ok, text) = openssl(work.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("serialNumber = SN-0001") || text.contains("serialNumber=SN-0001"),
        "{text}"
    );
    assert!(
        text.contains("OU = sensor-v1") || text.contains("OU=sensor-v1"),
        "{text}"
    );
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(
        text.contains("9999"),
        "IDevIDs never expire (802.1AR): {text}"
    );
    assert!(
        text.contains("Not After : Dec 31 23:59:59 9999 GMT"),
        "{text}"
    );
}

#[test]
fn ldevid_chain_passes_openssl_verify_with_device_id_as_cn() {
    let (_s, work, pki) = setup();
    let device = SimDevice::new();
    let cert = pki
        .issue_ldevid(LdevidKey::Csr(&device.csr("x")), "dev-42")
        .unwrap();
    write(work.path(), "leaf.pem", &cert.pem);
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &["-purpose", "sslclient"],
        "leaf.pem",
    );
    assert!(ok && out.contains("leaf.pem: OK"), "{out}");
    let (_, subject) = openssl(
        work.path(),
        &[
            "x509", "-in", "leaf.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    assert!(subject.contains("CN=dev-42"), "{subject}");

    // The same key given as a bare public key (already proven by an attestation token).
    let cert2 = pki
        .issue_ldevid(LdevidKey::PublicKey(&device.public_key()), "dev-43")
        .unwrap();
    write(work.path(), "leaf2.pem", &cert2.pem);
    let (ok, out) = verify_chain(work.path(), "root.pem", "operational.pem", &[], "leaf2.pem");
    assert!(ok, "{out}");
    assert_ne!(cert.serial, cert2.serial);
}

#[test]
fn server_cert_passes_openssl_verify_for_localhost_and_loopback_ip() {
    let (_s, work, pki) = setup();
    let creds = pki.issue_server_cert(&["localhost", "127.0.0.1"]).unwrap();
    write(work.path(), "server.pem", &creds.certificate.pem);
    write(work.path(), "chain.pem", &creds.chain_pem);
    for check in [
        ["-verify_hostname", "localhost"],
        ["-verify_ip", "127.0.0.1"],
    ] {
        let [option, value] = check;
        let extra = ["-purpose", "sslserver", option, value];
        let (ok, out) = verify_chain(
            work.path(),
            "root.pem",
            "operational.pem",
            &extra,
            "server.pem",
        );
        assert!(ok && out.contains("server.pem: OK"), "{check:?}: {out}");
    }
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &["-verify_hostname", "evil.example"],
        "server.pem",
    );
    assert!(!ok, "a name not in the certificate must fail: {out}");
    // The key file openssl can read and it matches the certificate.
    write(work.path(), "server.key", creds.key_pem.as_bytes());
    let (ok, k) = openssl(work.path(), &["pkey", "-in", "server.key", "-pubout"]);
    let (ok2, c) = openssl(
        work.path(),
        &["x509", "-in", "server.pem", "-noout", "-pubkey"],
    );
    assert!(ok && ok2 && k == c, "key and certificate differ:\n{k}\n{c}");
}

#[test]
fn operator_client_cert_passes_openssl_verify() {
    let (_s, work, pki) = setup();
    let creds = pki.issue_operator_client_cert("alice").unwrap();
    write(work.path(), "op.pem", &creds.certificate.pem);
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &["-purpose", "sslclient"],
        "op.pem",
    );
    assert!(ok, "{out}");
}

#[test]
fn crl_passes_openssl_crl_verify_and_revokes_the_leaf() {
    let (_s, work, pki) = setup();
    let revoked = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-bad",
        )
        .unwrap();
    let good = pki
        .issue_ldevid(
            LdevidKey::PublicKey(&SimDevice::new().public_key()),
            "dev-good",
        )
        .unwrap();
    write(work.path(), "revoked.pem", &revoked.pem);
    write(work.path(), "good.pem", &good.pem);
    let entry = RevokedCert {
        serial: revoked.serial.clone(),
        reason: RevocationReason::KeyCompromise,
        revoked_at: now(),
    };
    let crl = pki
        .crl(CaKind::Operational, &[entry], Duration::from_secs(86400))
        .unwrap();
    write(work.path(), "crl.pem", &crl.pem);

    let (ok, out) = verify_crl(work.path(), "crl.pem", "operational.pem");
    assert!(ok && out.contains("verify OK"), "{out}");
    let (_, text) = openssl(work.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(
        text.to_uppercase()
            .contains(&revoked.serial_hex().to_uppercase()),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");

    // openssl verify with the CRL: the revoked leaf is refused, the other one passes.
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &["-crl_check", "-CRLfile", "crl.pem"],
        "revoked.pem",
    );
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify_chain(
        work.path(),
        "root.pem",
        "operational.pem",
        &["-crl_check", "-CRLfile", "crl.pem"],
        "good.pem",
    );
    assert!(ok, "{out}");

    // A CRL from another CA does not verify with the operational CA's certificate.
    let other = pki
        .crl(CaKind::Manufacturer, &[], Duration::from_secs(3600))
        .unwrap();
    write(work.path(), "other.pem", &other.pem);
    let (ok, out) = verify_crl(work.path(), "other.pem", "operational.pem");
    assert!(!ok || !out.contains("verify OK"), "{out}");
}

#[test]
fn openssl_generated_csr_is_accepted_and_our_csr_is_accepted_by_openssl() {
    let (_s, work, pki) = setup();
    let (ok, out) = new_p256_csr(
        work.path(),
        "dev.key",
        "/CN=whatever",
        &["-outform", "DER"],
        "dev.csr",
    );
    assert!(ok, "{out}");
    let csr = std::fs::read(work.path().join("dev.csr")).unwrap();
    let cert = pki.issue_idevid(&csr, "SN-OPENSSL-1", "gateway").unwrap();
    write(work.path(), "leaf.pem", &cert.pem);
    let (ok, out) = verify_chain(work.path(), "root.pem", "manufacturer.pem", &[], "leaf.pem");
    assert!(ok, "{out}");
    // The certificate certifies openssl's key.
    let (_, k) = openssl(work.path(), &["pkey", "-in", "dev.key", "-pubout"]);
    let (_, c) = openssl(
        work.path(),
        &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
    );
    assert_eq!(k, c);

    let ours = SimDevice::new().csr("device-csr");
    write(work.path(), "ours.der", &ours);
    let (ok, out) = openssl(
        work.path(),
        &[
            "req", "-in", "ours.der", "-inform", "DER", "-noout", "-verify", "-subject",
        ],
    );
    assert!(
        ok && out.contains("OK") && out.contains("device-csr"),
        "{out}"
    );
}

#[test]
fn attack_csr_asking_for_ca_rights_and_another_subject_gets_a_plain_leaf() {
    let (_s, work, pki) = setup();
    let (ok, out) = new_p256_csr(
        work.path(),
        "evil.key",
        "/CN=Castellan Root CA/O=Castellan Fleet",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectAltName=DNS:fleet.example",
            "-outform",
            "DER",
        ],
        "evil.csr",
    );
    assert!(ok, "{out}");
    let csr = std::fs::read(work.path().join("evil.csr")).unwrap();
    let cert = pki.issue_ldevid(LdevidKey::Csr(&csr), "dev-7").unwrap();
    write(work.path(), "leaf.pem", &cert.pem);
    let (_, text) = openssl(work.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert!(!text.contains("fleet.example"), "{text}");
    assert!(
        text.contains("CN = dev-7") || text.contains("CN=dev-7"),
        "{text}"
    );
    // Using it as a CA fails in openssl too: a certificate "issued" by the leaf's key does
    // not verify even with the leaf offered as an intermediate.
    let (ok, out) = new_p256_csr(work.path(), "v.key", "/CN=victim", &[], "v.csr");
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        work.path(),
        &[
            "x509",
            "-req",
            "-in",
            "v.csr",
            "-CA",
            "leaf.pem",
            "-CAkey",
            "evil.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "victim.pem",
        ],
    );
    assert!(ok, "{out}");
    write(
        work.path(),
        "untrusted.pem",
        format!("{}{}", pki.ca_pem(CaKind::Operational), cert.pem),
    );
    let (ok, out) = verify_chain(work.path(), "root.pem", "untrusted.pem", &[], "victim.pem");
    assert!(!ok, "a certificate signed by a leaf must not verify: {out}");
}
