//! A `castellan sim` session through the real binary, from an empty device to a confirmed
//! upgrade — the session the README shows — plus a power cut in the middle of the swap, the
//! revert of an unconfirmed image and the refusal of a downgrade.

mod common;

use std::path::Path;

use common::*;

fn sign(dir: &Path, raw: &str, out: &str, version: &str, counter: &str, sw_type: &str) {
    ok(
        dir,
        &[
            "image",
            "sign",
            "-k",
            "root.pem",
            "--version",
            version,
            "--pad-header",
            "--public-key-format",
            "full",
            "-s",
            counter,
            "--boot-record",
            sw_type,
            raw,
            out,
        ],
    );
}

#[test]
fn sim_session_from_empty_device_to_confirmed_upgrade() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for (name, len) in [
        ("bl.raw", 6000usize),
        ("v1.raw", 20_000),
        ("v2.raw", 24_000),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
        std::fs::write(d.join(name), bytes).unwrap();
    }
    ok(d, &["keygen", "-k", "root.pem", "-t", "ecdsa-p256"]);
    sign(d, "bl.raw", "bl.bin", "1.0.0", "1", "BL");
    sign(d, "v1.raw", "v1.bin", "1.0.0", "1", "APP");
    sign(d, "v2.raw", "v2.bin", "2.0.0", "2", "APP");

    ok(d, &["sim", "create", "dev", "--write-size", "8"]);
    ok(d, &["sim", "provision", "dev", "--root-key", "root.pem"]);
    ok(d, &["sim", "flash", "dev", "bootloader", "bl.bin"]);
    ok(d, &["sim", "flash", "dev", "primary", "v1.bin"]);
    let out = ok(d, &["sim", "boot", "dev"]);
    assert!(out.contains("verified APP 1.0.0+0"), "{out}");
    assert!(out.contains("counter 0 -> 1"), "{out}");

    // Stage 2.0.0, cut the power in the middle of the swap, boot again: the swap resumes.
    ok(d, &["sim", "upgrade", "dev", "v2.bin"]);
    let out = ok(
        d,
        &["sim", "boot", "dev", "--cut-at", "25", "--phase", "torn"],
    );
    assert!(out.contains("power cut at operation 25"), "{out}");
    let out = ok(d, &["sim", "boot", "dev"]);
    assert!(out.contains("resumed after a power cut"), "{out}");
    assert!(out.contains("verified APP 2.0.0+0"), "{out}");
    assert!(out.contains("test, not confirmed"), "{out}");
    assert!(
        out.contains("counter 1 -> 1"),
        "the counter waits for confirmation: {out}"
    );

    // Confirm; the next boot keeps 2.0.0 and raises the anti-rollback counter.
    ok(d, &["sim", "confirm", "dev"]);
    let out = ok(d, &["sim", "boot", "dev"]);
    assert!(
        out.contains("verified APP 2.0.0+0") && out.contains("counter 1 -> 2"),
        "{out}"
    );
    let status = ok(d, &["sim", "status", "dev"]);
    assert!(status.contains("application 2"), "{status}");

    // A downgrade to the validly signed 1.0.0 is refused; 2.0.0 keeps running.
    ok(d, &["sim", "upgrade", "dev", "v1.bin"]);
    let out = ok(d, &["sim", "boot", "dev"]);
    assert!(out.contains("upgrade refused"), "{out}");
    assert!(out.contains("verified APP 2.0.0+0"), "{out}");
}

#[test]
fn sim_unconfirmed_test_image_reverts_at_the_next_boot() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for (name, len) in [("bl.raw", 3000usize), ("v1.raw", 9000), ("v2.raw", 9500)] {
        std::fs::write(d.join(name), vec![len as u8; len]).unwrap();
    }
    ok(d, &["keygen", "-k", "root.pem", "-t", "ed25519"]);
    sign(d, "bl.raw", "bl.bin", "1.0.0", "1", "BL");
    sign(d, "v1.raw", "v1.bin", "1.0.0", "1", "APP");
    sign(d, "v2.raw", "v2.bin", "1.1.0", "1", "APP");
    ok(
        d,
        &["sim", "create", "dev", "--write-size", "1", "--erased", "0"],
    );
    ok(d, &["sim", "provision", "dev", "--root-key", "root.pem"]);
    ok(d, &["sim", "flash", "dev", "bootloader", "bl.bin"]);
    ok(d, &["sim", "flash", "dev", "primary", "v1.bin"]);
    ok(d, &["sim", "boot", "dev"]);
    ok(d, &["sim", "upgrade", "dev", "v2.bin"]);
    assert_trial_boots_once_then_reverts(d);
}

#[test]
fn attack_sim_boot_refuses_a_bootloader_signed_with_another_key() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("bl.raw"), vec![7u8; 3000]).unwrap();
    ok(d, &["keygen", "-k", "root.pem"]);
    ok(d, &["keygen", "-k", "rogue.pem"]);
    ok(
        d,
        &[
            "image",
            "sign",
            "-k",
            "rogue.pem",
            "--version",
            "9.0.0",
            "--pad-header",
            "--public-key-format",
            "full",
            "bl.raw",
            "bl.bin",
        ],
    );
    ok(d, &["sim", "create", "dev"]);
    ok(d, &["sim", "provision", "dev", "--root-key", "root.pem"]);
    ok(d, &["sim", "flash", "dev", "bootloader", "bl.bin"]);
    let o = castellan(d, &["sim", "boot", "dev"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("boot refused"), "{out}");
}

#[test]
fn sim_create_builds_the_catalog_reference_device_and_its_options() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["sim", "create", "std"]);
    let std_dev = castellan_sim::SimDevice::open(&d.join("std")).unwrap();
    assert_eq!(
        std_dev.config(),
        &castellan_devkit::REFERENCE.device_config()
    );
    let args = [
        "sim",
        "create",
        "ow",
        "--mode",
        "overwrite",
        "--slot-size",
        "0x8000",
        "--bootloader-size",
        "0x2000",
        "--sector-size",
        "0x400",
        "--write-size",
        "16",
        "--erased",
        "0",
    ];
    ok(d, &args);
    let options = castellan_devkit::ReferenceOptions {
        slot_size: 0x8000,
        bootloader_size: 0x2000,
        sector_size: 0x400,
        write_size: 16,
        erased_value: 0,
        swap: false,
    };
    let ow = castellan_sim::SimDevice::open(&d.join("ow")).unwrap();
    assert_eq!(ow.config(), &options.device_config());
    assert_eq!(ow.config().partition("scratch"), None);
}
