//! The over-the-air update scenarios of `cargo xtask qemu-test`, without a server: SUIT
//! envelopes built and signed here (`castellan_suit::builder`, a release key made for the run)
//! are handed to the demo application through the download buffer, and the secure partition's
//! update client decides. Each refusal scenario checks the secure partition's reason on the
//! console and that the old image still boots, confirmed.
//!
//! Download buffer (as `firmware/demo-app/src/ota.rs` reads it and `castellan-bridge` writes
//! it): magic `CSLU`, envelope length, payload length, 0 (four little-endian u32), the envelope
//! zero-padded to 16 bytes, the payload.

use std::path::Path;

use castellan_suit::builder::{ImageSpec, ManifestBuilder, P256SigningKey, Signer};
use castellan_suit::ids;

use crate::firmware;
use crate::qemu::{Ctx, Run, check, qemu, write};
use crate::steps::Result;

/// Where the demo application finds the download.
const DOWNLOAD_ADDR: u32 = 0x2830_0000;
/// The device class of the QEMU firmware (`castellan_gate::DEVICE_CLASS`).
pub(crate) const DEVICE_CLASS: &str = "an505-v1";
/// The SUIT component a Castellan release installs.
const COMPONENT: [&[u8]; 2] = [b"castellan", b"app"];

/// A fresh P-256 release key.
pub(crate) fn release_key() -> Result<P256SigningKey> {
    P256SigningKey::from_slice(&firmware::random32()?).map_err(|e| format!("release key: {e}"))
}

/// The release key's public key as devices store it (SEC1 uncompressed, 65 bytes).
pub(crate) fn anchor(key: &P256SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// A Castellan release envelope for `image`: vendor "castellan", `class`, sequence `seq`, one
/// component with the image's SHA-256 and size, signed ES256 with `key`.
pub(crate) fn envelope(
    seq: u64,
    class: &str,
    key: &P256SigningKey,
    image: &[u8],
) -> Result<Vec<u8>> {
    envelope_expiring(seq, class, key, image, None)
}

/// [`envelope`] that expires at `expires` (unix seconds) when given.
fn envelope_expiring(
    seq: u64,
    class: &str,
    key: &P256SigningKey,
    image: &[u8],
    expires: Option<u64>,
) -> Result<Vec<u8>> {
    let vendor = ids::vendor_id(ids::DEFAULT_VENDOR);
    let class_id = ids::class_id(&vendor, class);
    let digest: [u8; 32] = castellan_image::HashAlg::Sha256
        .digest(image)
        .as_bytes()
        .try_into()
        .map_err(|_| "SHA-256 is not 32 bytes")?;
    let spec = ImageSpec::with_digest(&COMPONENT, digest, image.len() as u64)
        .uri(&format!("castellan:release/{class}/{seq}"));
    let mut b = ManifestBuilder::new(seq, &vendor, &class_id).image(spec);
    if let Some(t) = expires {
        b = b.expires(t);
    }
    b.build(&Signer::Es256(key))
        .map_err(|e| format!("building the envelope: {e}"))
}

/// The download buffer for an update.
pub(crate) fn download(envelope: &[u8], payload: &[u8]) -> Vec<u8> {
    let padded = envelope.len().div_ceil(16) * 16;
    let mut b = Vec::with_capacity(16 + padded + payload.len());
    b.extend_from_slice(b"CSLU");
    b.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(envelope);
    b.resize(16 + padded, 0);
    b.extend_from_slice(payload);
    b
}

/// Boots the device in `dir` with `command` and `blob` in the download buffer.
fn run_with(c: &Ctx, dir: &Path, command: &str, blob: Option<&[u8]>) -> Result<Run> {
    let mut blobs = Vec::new();
    if let Some(b) = blob {
        let f = dir.join("download.bin");
        write(&f, b)?;
        blobs.push((f, DOWNLOAD_ADDR));
    }
    qemu(&c.built.rom, dir, Some(command), &blobs, false)
}

/// A fresh v1 device with the release trust anchor of `key` provisioned.
fn provisioned(c: &Ctx, name: &str, key: &P256SigningKey) -> Result<std::path::PathBuf> {
    let dir = c.device(name, &c.bootloader, &c.v1)?;
    let cmd = format!("anchor {}", hex(&anchor(key)));
    let run = run_with(c, &dir, &cmd, None)?;
    check(
        &run,
        0,
        &[
            "[secure] update: release trust anchor provisioned (write-once)",
            "[app] anchor: release trust anchor stored",
        ],
        &["refused"],
    )?;
    Ok(dir)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The old image still boots, confirmed, with nothing installed.
fn still_v1(c: &Ctx, dir: &Path) -> Result {
    let run = run_with(c, dir, "boot", None)?;
    check(
        &run,
        0,
        &[
            "[bootloader] upgrade: none",
            "[app] telemetry: image 1.0.0+0 (confirmed), security counter 1, OTP counter 1",
        ],
        &["REFUSED", "test swap"],
    )
}

pub(crate) fn good_update(c: &Ctx) -> Result {
    let key = release_key()?;
    let dir = provisioned(c, "suit-good", &key)?;
    let v2 = c.app("2.0.0", 2)?;
    let env = envelope(1, DEVICE_CLASS, &key, &v2)?;
    // The manifest alone: checked before a byte of the payload moves.
    let run = run_with(c, &dir, "ota check", Some(&download(&env, &[])))?;
    check(
        &run,
        0,
        &[
            "[secure] update: manifest sequence 1 authenticated with the release trust anchor",
            &format!(
                "[app] ota: manifest accepted: sequence 1, payload {} bytes",
                v2.len()
            ),
        ],
        &["refused"],
    )?;
    let run = run_with(c, &dir, "ota install", Some(&download(&env, &v2)))?;
    check(
        &run,
        0,
        &[
            "[app] ota: manifest accepted: sequence 1",
            "[app] ota: writing",
            "[secure] update: payload matches the manifest (size, SHA-256), image verified; installed for a trial run",
            "[app] ota: installed for a trial run; rebooting",
            "[bootloader] upgrade: test swap",
            "[app] telemetry: image 2.0.0+0 (on trial), security counter 2, OTP counter 1",
            "[app] ota: running 2.0.0+0 on trial; self-test",
            "[secure] fwu: running image accepted",
            "installed release sequence 1",
            "[app] ota: status: idle",
            "installed sequence 1",
            "[app] ota: update confirmed: running 2.0.0+0",
        ],
        &["refused", "REFUSED", "REVERTED"],
    )?;
    // A new QEMU process: the new image stays, confirmed, and the counter rose.
    let run = run_with(c, &dir, "boot", None)?;
    check(
        &run,
        0,
        &["[app] telemetry: image 2.0.0+0 (confirmed), security counter 2, OTP counter 2"],
        &["REFUSED", "revert"],
    )?;
    // The same offer replayed (an earlier campaign's) is refused: not newer than installed.
    let run = run_with(c, &dir, "ota check", Some(&download(&env, &[])))?;
    check(
        &run,
        1,
        &[
            "[secure] update: begin refused: manifest sequence 1 is not newer than the installed 1",
            "[app] ota: manifest refused: not permitted",
        ],
        &[],
    )
}

pub(crate) fn other_key(c: &Ctx) -> Result {
    let key = release_key()?;
    let attacker = release_key()?;
    let dir = provisioned(c, "suit-other-key", &key)?;
    let v2 = c.app("2.0.0", 2)?;
    let env = envelope(1, DEVICE_CLASS, &attacker, &v2)?;
    let run = run_with(c, &dir, "ota install", Some(&download(&env, &v2)))?;
    check(
        &run,
        1,
        &[
            "[secure] update: begin refused: the manifest is not signed by the release trust anchor (not authenticated)",
            "[app] ota: manifest refused: invalid signature",
        ],
        &["[app] ota: writing", "test swap"],
    )?;
    still_v1(c, &dir)
}

pub(crate) fn tampered_image(c: &Ctx) -> Result {
    let key = release_key()?;
    let dir = provisioned(c, "suit-tampered-image", &key)?;
    let v2 = c.app("2.0.0", 2)?;
    let env = envelope(1, DEVICE_CLASS, &key, &v2)?;
    // The transport flips one bit of the payload (the image signature would catch it too: the
    // manifest's digest catches it first, in the secure partition, before anything is staged).
    let mut bad = v2.clone();
    bad[0x200 + 0x2000] ^= 0x04;
    let run = run_with(c, &dir, "ota install", Some(&download(&env, &bad)))?;
    check(
        &run,
        1,
        &[
            "[app] ota: manifest accepted: sequence 1",
            "[app] ota: writing",
            "[secure] update: finish refused: ",
            "digest",
            "[app] ota: update refused: invalid signature",
        ],
        &["installed for a trial run", "test swap"],
    )?;
    still_v1(c, &dir)
}

pub(crate) fn wrong_class(c: &Ctx) -> Result {
    let key = release_key()?;
    let dir = provisioned(c, "suit-wrong-class", &key)?;
    let v2 = c.app("2.0.0", 2)?;
    let env = envelope(1, "sensor-v1", &key, &v2)?;
    let run = run_with(c, &dir, "ota install", Some(&download(&env, &v2)))?;
    check(
        &run,
        1,
        &[
            "[secure] update: begin refused: the manifest is for another device class",
            "[app] ota: manifest refused: not permitted",
        ],
        &["[app] ota: writing", "test swap"],
    )?;
    still_v1(c, &dir)
}

pub(crate) fn no_anchor(c: &Ctx) -> Result {
    let key = release_key()?;
    let dir = c.device("suit-no-anchor", &c.bootloader, &c.v1)?;
    let v2 = c.app("2.0.0", 2)?;
    let env = envelope(1, DEVICE_CLASS, &key, &v2)?;
    let run = run_with(c, &dir, "ota check", Some(&download(&env, &[])))?;
    check(
        &run,
        1,
        &[
            "[secure] update: begin refused: no release trust anchor is provisioned: the device refuses every update",
            "[app] ota: manifest refused: not permitted",
        ],
        &[],
    )?;
    still_v1(c, &dir)
}

pub(crate) fn expired(c: &Ctx) -> Result {
    let key = release_key()?;
    let dir = provisioned(c, "suit-expired", &key)?;
    let v2 = c.app("2.0.0", 2)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let env = envelope_expiring(1, DEVICE_CLASS, &key, &v2, Some(now - 3600))?;
    // The runner tells the device the time (the board has no clock).
    let run = run_with(
        c,
        &dir,
        &format!("ota install {now}"),
        Some(&download(&env, &v2)),
    )?;
    check(
        &run,
        1,
        &[
            &format!(
                "[secure] update: begin refused: the release expired at {} (unix seconds) and the device's time is {now}",
                now - 3600
            ),
            "[app] ota: manifest refused: not permitted",
        ],
        &["[app] ota: writing", "test swap"],
    )?;
    still_v1(c, &dir)
}
