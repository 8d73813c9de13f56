//! `castellan sim` commands that call the secure services, through the real binary: an
//! attestation token that verifies on the host, trusted storage that leaves no plaintext in
//! flash, an update through the firmware-update service that is accepted or reverts, and a
//! decommission after which nothing boots and no asset can be read.

mod common;

use std::path::Path;

use common::*;

fn device(d: &Path) {
    for (name, len) in [
        ("bl.raw", 5000usize),
        ("v1.raw", 12_000),
        ("v2.raw", 13_000),
    ] {
        std::fs::write(
            d.join(name),
            (0..len).map(|i| (i * 7 + len) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
    }
    ok(d, &["keygen", "-k", "root.pem", "-t", "ecdsa-p256"]);
    for (raw, out, v, c, t) in [
        ("bl.raw", "bl.bin", "1.0.0", "1", "BL"),
        ("v1.raw", "v1.bin", "1.0.0", "1", "APP"),
        ("v2.raw", "v2.bin", "1.1.0", "2", "APP"),
    ] {
        ok(
            d,
            &[
                "image",
                "sign",
                "-k",
                "root.pem",
                "--version",
                v,
                "--pad-header",
                "--public-key-format",
                "full",
                "-s",
                c,
                "--boot-record",
                t,
                raw,
                out,
            ],
        );
    }
    ok(d, &["sim", "create", "dev"]);
    ok(d, &["sim", "provision", "dev", "--root-key", "root.pem"]);
    ok(d, &["sim", "flash", "dev", "bootloader", "bl.bin"]);
    ok(d, &["sim", "flash", "dev", "primary", "v1.bin"]);
}

#[test]
fn sim_attestation_token_verifies_on_the_host_and_a_replay_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    device(d);
    let nonce = "ab".repeat(32);
    ok(d, &["sim", "attest", "dev", "--nonce", &nonce]);
    let out = ok(
        d,
        &[
            "token",
            "verify",
            "-k",
            "iak.pem",
            "--nonce",
            &nonce,
            "token.cbor",
        ],
    );
    assert!(
        out.contains("valid token") && out.contains("2 software component(s)"),
        "{out}"
    );
    let (success, out) = run(
        d,
        &[
            "token",
            "verify",
            "-k",
            "iak.pem",
            "--nonce",
            &"cd".repeat(32),
            "token.cbor",
        ],
    );
    assert!(!success && out.contains("refused"), "{out}");
}

#[test]
fn sim_trusted_storage_round_trip_leaves_no_plaintext_in_flash() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    device(d);
    ok(
        d,
        &[
            "sim",
            "its",
            "set",
            "dev",
            "7",
            "correct-horse-battery-staple",
        ],
    );
    assert!(ok(d, &["sim", "its", "get", "dev", "7"]).contains("correct-horse-battery-staple"));
    let flash = std::fs::read(d.join("dev/flash.bin")).unwrap();
    assert!(
        !flash.windows(12).any(|w| w == b"correct-hors"),
        "plaintext asset found in raw flash"
    );
    ok(d, &["sim", "its", "remove", "dev", "7"]);
    assert!(!run(d, &["sim", "its", "get", "dev", "7"]).0);
}

#[test]
fn sim_update_through_the_fwu_service_is_accepted_or_reverts() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    device(d);
    // Not accepted: the trial run is followed by a revert.
    ok(d, &["sim", "fwu", "dev", "v2.bin"]);
    assert_trial_boots_once_then_reverts(d);
    // Accepted in its trial run: it stays, and the anti-rollback counter follows.
    ok(d, &["sim", "fwu", "dev", "v2.bin"]);
    assert!(ok(d, &["sim", "fwu", "dev", "--accept"]).contains("accepted"));
    let out = ok(d, &["sim", "boot", "dev"]);
    assert!(
        out.contains("verified APP 1.1.0+0") && out.contains("counter 1 -> 2"),
        "{out}"
    );
}

#[test]
fn sim_decommission_crypto_erases_and_nothing_boots() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    device(d);
    ok(
        d,
        &["sim", "its", "set", "dev", "1", "device-secret-0123456789"],
    );
    ok(d, &["sim", "identity", "dev"]);
    ok(d, &["sim", "decommission", "dev"]);
    let (booted, out) = run(d, &["sim", "boot", "dev"]);
    assert!(!booted && out.contains("decommissioned"), "{out}");
    assert!(!run(d, &["sim", "its", "get", "dev", "1"]).0);
    let flash = std::fs::read(d.join("dev/flash.bin")).unwrap();
    assert!(!flash.windows(13).any(|w| w == b"device-secret"));
}
