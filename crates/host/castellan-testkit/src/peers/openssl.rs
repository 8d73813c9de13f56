//! OpenSSL's command line (`openssl`): verifies our certificates, CRLs and TLS endpoints.

use std::path::Path;
use std::process::Command;

/// How to install it.
pub const INSTALL: &str = "apt-get install -y openssl";

/// Fails the test unless `openssl` is on the `PATH`.
#[track_caller]
pub fn require() {
    super::require_tool("openssl", INSTALL);
}

/// Runs `openssl args` in `dir`; returns (success, stdout + stderr).
#[track_caller]
pub fn run_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| super::missing("`openssl`", &format!("cannot run it: {e}"), INSTALL));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `openssl verify -CAfile ca cert`: whether OpenSSL accepts `cert`'s chain to the
/// certificates in `ca`; returns (success, stdout + stderr).
#[track_caller]
pub fn verify(ca: &Path, cert: &Path) -> (bool, String) {
    require();
    let (ca, cert) = (ca.to_string_lossy(), cert.to_string_lossy());
    run_in(Path::new("."), &["verify", "-CAfile", &ca, &cert])
}

/// `openssl verify -CAfile root -untrusted intermediate [extra…] leaf` in `dir`: whether
/// OpenSSL accepts `leaf` through `intermediate` to `root` (`extra`: `-purpose sslclient`,
/// `-verify_hostname name`, `-crl_check -CRLfile crl.pem`, …); returns (success, output).
#[track_caller]
pub fn verify_chain(
    dir: &Path,
    root: &str,
    intermediate: &str,
    extra: &[&str],
    leaf: &str,
) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", root, "-untrusted", intermediate];
    args.extend_from_slice(extra);
    args.push(leaf);
    run_in(dir, &args)
}

/// `openssl crl -in crl -CAfile ca -noout -verify` in `dir`: whether `crl` is signed by the CA
/// of `ca` (OpenSSL prints `verify OK`); returns (success, output).
#[track_caller]
pub fn verify_crl(dir: &Path, crl: &str, ca: &str) -> (bool, String) {
    run_in(
        dir,
        &["crl", "-in", crl, "-CAfile", ca, "-noout", "-verify"],
    )
}

/// `openssl req -new` in `dir`: a fresh P-256 key into `key` (unencrypted) and a
/// certificate signing request for `subject` with `extra` arguments (`-addext …`, `-outform
/// DER`) into `csr`;
/// returns (success, output).
#[track_caller]
pub fn new_p256_csr(
    dir: &Path,
    key: &str,
    subject: &str,
    extra: &[&str],
    csr: &str,
) -> (bool, String) {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-out", csr]);
    run_in(dir, &args)
}
