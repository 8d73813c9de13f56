//! The throwaway PKI used by the tests and the benchmark produces certificates that OpenSSL
//! verifies, with the serial the broker will report.

mod common;

use std::time::Duration;

use castellan_testkit::peers::openssl;
use castellan_testkit::test_pki::{ClientCertOptions, TestPki};
use common::{path, run};

#[tokio::test]
async fn openssl_verifies_issued_certificates_and_reads_the_same_serial() {
    openssl::require();
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "t").unwrap();
    let ca = path(pki.ca_pem());
    let server = pki.issue_server("server").unwrap();
    let dev = pki.issue_client("dev-a").unwrap();
    for f in [&server, &dev] {
        let (ok, out) = run(
            "openssl",
            &["verify".into(), "-CAfile".into(), ca.clone(), path(&f.cert)],
            Duration::from_secs(10),
        )
        .await;
        assert!(ok && out.contains(": OK"), "{out}");
    }
    let (ok, out) = run(
        "openssl",
        &[
            "x509".into(),
            "-noout".into(),
            "-serial".into(),
            "-subject".into(),
            "-in".into(),
            path(&dev.cert),
        ],
        Duration::from_secs(10),
    )
    .await;
    assert!(ok, "{out}");
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap()
        .to_lowercase();
    assert_eq!(serial.trim_start_matches('0'), dev.serial_hex);
    assert!(
        out.contains("CN = dev-a") || out.contains("CN=dev-a"),
        "{out}"
    );
    // An expired certificate fails verification; one from another CA does too.
    let expired = pki
        .issue_client_with(
            "dev-a",
            &ClientCertOptions {
                expired: true,
                ..Default::default()
            },
        )
        .unwrap();
    let (ok, out) = run(
        "openssl",
        &[
            "verify".into(),
            "-CAfile".into(),
            ca.clone(),
            path(&expired.cert),
        ],
        Duration::from_secs(10),
    )
    .await;
    assert!(!ok && out.contains("expired"), "{out}");
    let other = TestPki::new(&dir.path().join("o"), "o")
        .unwrap()
        .issue_client("dev-a")
        .unwrap();
    let (ok, _) = run(
        "openssl",
        &["verify".into(), "-CAfile".into(), ca, path(&other.cert)],
        Duration::from_secs(10),
    )
    .await;
    assert!(!ok);
}
