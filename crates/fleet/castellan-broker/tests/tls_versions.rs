//! TLS protocol policy checked with `openssl s_client` (an independent TLS stack): TLS 1.0/1.1
//! refused, TLS 1.2 (AEAD suites only) and TLS 1.3 accepted, with a client certificate.

mod common;

use std::time::Duration;

use common::*;

/// Runs `openssl s_client` against the broker with the device certificate of `dev-a` and extra
/// arguments; returns (exit success, output).
async fn s_client(env: &Env, extra: &[&str]) -> (bool, String) {
    castellan_testkit::peers::openssl::require();
    let files = env.cert("dev-a");
    let mut args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        format!("127.0.0.1:{}", env.port()),
        "-servername".into(),
        "localhost".into(),
        "-CAfile".into(),
        path(&env.ca()),
        "-cert".into(),
        path(&files.cert),
        "-key".into(),
        path(&files.key),
        "-verify_return_error".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    run("openssl", &args, Duration::from_secs(15)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_tls11_downgrade_refused() {
    let env = Env::start(&["dev-a"]).await;
    for version in ["-tls1_1", "-tls1"] {
        // SECLEVEL=0 lets OpenSSL 3 actually offer TLS 1.0/1.1, so the refusal is the server's.
        let (ok, out) = s_client(&env, &[version, "-cipher", "DEFAULT@SECLEVEL=0"]).await;
        assert!(!ok, "{version} handshake succeeded: {out}");
        // rustls answers a TLS 1.0/1.1 ClientHello with a fatal alert (handshake_failure: none of
        // the suites such a client can offer exist in rustls; protocol_version otherwise).
        assert!(
            out.contains("alert handshake failure") || out.contains("alert protocol version"),
            "{version}: expected a fatal alert from the server: {out}"
        );
        assert!(
            out.contains("Cipher is (NONE)"),
            "{version}: a cipher was negotiated: {out}"
        );
        assert!(
            !out.contains("no protocols available"),
            "{version}: the client never offered it: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_and_tls13_accepted() {
    let env = Env::start(&["dev-a"]).await;
    let (ok, out) = s_client(&env, &["-tls1_2"]).await;
    assert!(ok, "TLS 1.2 refused: {out}");
    assert!(out.contains("TLSv1.2"), "{out}");
    assert!(
        out.contains("Verify return code: 0 (ok)"),
        "server certificate not verified: {out}"
    );
    assert!(
        out.contains("GCM") || out.contains("CHACHA20"),
        "TLS 1.2 suite is not AEAD: {out}"
    );
    let (ok, out) = s_client(&env, &["-tls1_3"]).await;
    assert!(ok, "TLS 1.3 refused: {out}");
    assert!(out.contains("TLSv1.3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_tls12_cbc_suite_refused() {
    let env = Env::start(&["dev-a"]).await;
    // A client that offers only CBC (non-AEAD) suites gets no handshake.
    let (ok, out) = s_client(
        &env,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
        ],
    )
    .await;
    assert!(!ok, "CBC suite accepted: {out}");
    assert!(
        out.contains("handshake failure")
            || out.contains("no shared cipher")
            || out.contains("alert"),
        "{out}"
    );
}
