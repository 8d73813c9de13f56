//! `cargo xtask qemu-test [--bench]`: runs the firmware in `qemu-system-arm -machine mps2-an505
//! -cpu cortex-m33` and checks what it prints, scenario by scenario (see [`SCENARIOS`]). Each
//! scenario gets a fresh device directory (flash, OTP and entropy files, which the firmware
//! reaches through semihosting and which persist across resets and QEMU restarts). Every QEMU
//! run has a timeout and is killed when it expires. The last line is `<N> passed, <M> failed`.
//! With `--bench`, the verification benchmark runs too (instructions under `-icount`); with
//! `--bench-only`, only the benchmark runs (for measuring one build setting against another).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use castellan_attest::{ExpectedComponent, Lifecycle, ReferenceValues, VerificationKey, appraise};
use castellan_image::{SigningKey, signer_id};

use crate::firmware::{self, Built};
use crate::steps::Result;

/// Longest a single QEMU run may take (several boots, swaps included).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Where the runner leaves an update for the demo application (non-secure RAM).
const DOWNLOAD_ADDR: u32 = 0x2830_0000;
/// Where the benchmark expects its image.
const BENCH_ADDR: u32 = 0x1010_0000;

/// What one QEMU run printed and how it ended.
pub(crate) struct Run {
    pub(crate) output: String,
    pub(crate) status: Option<i32>,
    pub(crate) timed_out: bool,
}

/// Runs QEMU once in `cwd` with `kernel`, the semihosting command line `append`, raw blobs
/// loaded at addresses, optionally with `-icount shift=0`. The board's Ethernet controller has
/// no network behind it (`-nic none`); the `network` scenario gives it one ([`qemu_with`]).
pub(crate) fn qemu(
    kernel: &Path,
    cwd: &Path,
    append: Option<&str>,
    blobs: &[(PathBuf, u32)],
    icount: bool,
) -> Result<Run> {
    qemu_with(
        kernel,
        cwd,
        append,
        blobs,
        icount,
        &["-nic".into(), "none".into()],
    )
}

/// [`qemu`] with `net` as the network arguments.
pub(crate) fn qemu_with(
    kernel: &Path,
    cwd: &Path,
    append: Option<&str>,
    blobs: &[(PathBuf, u32)],
    icount: bool,
    net: &[String],
) -> Result<Run> {
    let mut c = Command::new("qemu-system-arm");
    c.current_dir(cwd)
        .args(["-machine", "mps2-an505", "-cpu", "cortex-m33", "-nographic"])
        .args(["-monitor", "none", "-serial", "null"])
        // No `userspace=on`: unprivileged (non-secure application) code cannot semihost.
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(kernel)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(a) = append {
        c.args(["-append", a]);
    }
    for (file, addr) in blobs {
        c.arg("-device").arg(format!(
            "loader,file={},addr={addr:#x},force-raw=on",
            file.display()
        ));
    }
    if icount {
        c.args(["-icount", "shift=0"]);
    }
    c.args(net);
    let mut child = c
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let (status, timed_out) = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break (s.code(), false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = out.join().unwrap_or_default();
    output.push_str(&err.join().unwrap_or_default());
    Ok(Run {
        output,
        status,
        timed_out,
    })
}

/// Everything the scenarios share: the build, the key, the signed images.
pub(crate) struct Ctx {
    pub(crate) built: Built,
    pub(crate) key: SigningKey,
    pub(crate) bootloader: Vec<u8>,
    pub(crate) v1: Vec<u8>,
    pub(crate) root: PathBuf,
}

impl Ctx {
    /// A fresh device directory: flash with `bootloader` and `primary`, a secured OTP bank with
    /// a random UDS, host entropy.
    pub(crate) fn device(&self, name: &str, bootloader: &[u8], primary: &[u8]) -> Result<PathBuf> {
        let dir = self.root.join(name.replace(' ', "-"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let hash = signer_id(&self.key.public_spki_der());
        let files = [
            (
                "castellan-flash.bin",
                firmware::flash_file(bootloader, primary)?,
            ),
            (
                "castellan-otp.bin",
                firmware::otp_file(&hash, &firmware::random32()?),
            ),
            ("castellan-entropy.bin", firmware::random32()?.to_vec()),
        ];
        for (f, data) in files {
            write(&dir.join(f), &data)?;
        }
        Ok(dir)
    }

    /// Boots the device in `dir` with `command`, optionally with a downloaded update.
    pub(crate) fn boot(&self, dir: &Path, command: &str, download: Option<&[u8]>) -> Result<Run> {
        let mut blobs = Vec::new();
        if let Some(img) = download {
            let mut blob = (img.len() as u32).to_le_bytes().to_vec();
            blob.extend_from_slice(img);
            let f = dir.join("download.bin");
            write(&f, &blob)?;
            blobs.push((f, DOWNLOAD_ADDR));
        }
        qemu(&self.built.rom, dir, Some(command), &blobs, false)
    }

    pub(crate) fn app(&self, version: &str, counter: u32) -> Result<Vec<u8>> {
        firmware::sign_app(&self.built, &self.key, version, counter)
    }
}

pub(crate) fn write(path: &Path, data: &[u8]) -> Result {
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks a run: exit status, lines that must appear in this order, text that must not.
pub(crate) fn check(run: &Run, status: i32, in_order: &[&str], absent: &[&str]) -> Result {
    let tail = || {
        let lines: Vec<&str> = run.output.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n      ")
    };
    if run.timed_out {
        return Err(format!(
            "QEMU timed out (killed); output ended with:\n      {}",
            tail()
        ));
    }
    let mut rest = run.output.as_str();
    for needle in in_order {
        match rest.find(needle) {
            Some(i) => rest = &rest[i + needle.len()..],
            None => {
                return Err(format!(
                    "expected {needle:?} (in order); output ended with:\n      {}",
                    tail()
                ));
            }
        }
    }
    for bad in absent {
        if run.output.contains(bad) {
            return Err(format!("unexpected {bad:?} in the output"));
        }
    }
    if run.status != Some(status) {
        return Err(format!(
            "QEMU exited with {:?}, expected {status}; output ended with:\n      {}",
            run.status,
            tail()
        ));
    }
    Ok(())
}

type Scenario = fn(&Ctx) -> Result;

/// The scenarios, in order.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("good boot", good_boot),
    (
        "tampered application refused by the bootloader",
        tampered_application,
    ),
    (
        "tampered bootloader refused by the ROM stage",
        tampered_bootloader,
    ),
    (
        "update and accept (persists across a QEMU restart)",
        update_accept,
    ),
    ("update without accept reverts after reset", update_revert),
    ("downgrade refused", downgrade),
    (
        "old image written back into the primary slot refused (anti-rollback counter)",
        rollback,
    ),
    (
        "power cut during the swap: resumed at the next boot",
        power_cut,
    ),
    (
        "non-secure access to secure memory faults (SecureFault)",
        poke_secure,
    ),
    (
        "call gate refuses pointers into secure memory",
        gate_pointers,
    ),
    ("non-secure semihosting refused", ns_semihost),
    (
        "attestation token from QEMU verifies on the host",
        attestation,
    ),
    (
        "SUIT update: signed envelope and image installed through the secure partition, confirmed; replay refused",
        crate::qemu_suit::good_update,
    ),
    (
        "SUIT update: envelope signed by another key refused in the secure partition",
        crate::qemu_suit::other_key,
    ),
    (
        "SUIT update: tampered image refused in the secure partition",
        crate::qemu_suit::tampered_image,
    ),
    (
        "SUIT update: manifest for another device class refused",
        crate::qemu_suit::wrong_class,
    ),
    (
        "SUIT update: no release trust anchor, every update refused",
        crate::qemu_suit::no_anchor,
    ),
    (
        "SUIT update: expired release refused (freeze attack)",
        crate::qemu_suit::expired,
    ),
    (
        "network: DHCP lease and a TCP exchange through the only forward; the outside unreachable",
        crate::qemu_net::network,
    ),
    (
        "TLS 1.3 with a client certificate whose key stays in the secure partition",
        crate::qemu_tls::tls,
    ),
    (
        "mqtt: attested onboarding over the device's own TLS and MQTT 5 to castellan serve, then telemetry under its LDevID, its keys in the secure partition",
        crate::qemu_mqtt::mqtt,
    ),
    (
        "detect: signed detection reports verify on the host and count up; a healthy run has no alarm, a staged gate scan and an event flood set it in their round",
        crate::qemu_detect::detect,
    ),
];

fn good_boot(c: &Ctx) -> Result {
    let dir = c.device("good-boot", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        0,
        &[
            "[rom] lifecycle secured",
            "[rom] verified bootloader: BL ",
            "[bootloader] upgrade: ",
            "[bootloader] verified primary: SPE+NSPE ",
            "[secure] TrustZone-M: SAU regions",
            "[app] telemetry: image 1.0.0+0 (confirmed), security counter 1, OTP counter 1, lifecycle 0x3000",
            "[app] telemetry: boot count 1 (trusted storage: success)",
        ],
        &["REFUSED"],
    )
}

fn tampered_application(c: &Ctx) -> Result {
    let mut img = c.v1.clone();
    img[0x200 + 0x1000] ^= 0x01;
    let dir = c.device("tampered-app", &c.bootloader, &img)?;
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        3,
        &[
            "[rom] verified bootloader",
            "[bootloader] REFUSED: bootloader refused the primary slot image: image hash does not match",
        ],
        &["[secure]", "[app]"],
    )
}

fn tampered_bootloader(c: &Ctx) -> Result {
    let mut bl = c.bootloader.clone();
    bl[0x200 + 0x800] ^= 0x80;
    let dir = c.device("tampered-bootloader", &bl, &c.v1)?;
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        3,
        &["[rom] REFUSED: ROM refused the bootloader image: image hash does not match"],
        &["[bootloader]", "[app]"],
    )
}

fn update_accept(c: &Ctx) -> Result {
    let v2 = c.app("1.1.0", 2)?;
    let dir = c.device("update-accept", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "update accept", Some(&v2))?;
    check(
        &run,
        0,
        &[
            "image 1.0.0+0 (confirmed)",
            "[secure] fwu: candidate 1.1.0",
            "[app] candidate staged for a test run; rebooting",
            "[rom] verified bootloader",
            "[bootloader] upgrade: test swap",
            "[app] telemetry: image 1.1.0+0 (on trial), security counter 2, OTP counter 1",
            "[app] health check passed: accepting 1.1.0+0",
            "[bootloader] upgrade: none",
            "[app] telemetry: image 1.1.0+0 (confirmed), security counter 2, OTP counter 2",
            "[app] telemetry: boot count 3 (trusted storage: success)",
            "[app] update applied: running 1.1.0+0",
        ],
        &["REFUSED", "REVERTED"],
    )?;
    // A new QEMU process: everything above must have persisted in the host files, trusted
    // storage included (sealed under CDI_Seal, which the update from the same signer keeps).
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        0,
        &[
            "[app] telemetry: image 1.1.0+0 (confirmed), security counter 2, OTP counter 2",
            "[app] telemetry: boot count 4 (trusted storage: success)",
        ],
        &["REFUSED"],
    )
}

fn update_revert(c: &Ctx) -> Result {
    let v2 = c.app("1.1.0", 2)?;
    let dir = c.device("update-revert", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "update reject", Some(&v2))?;
    check(
        &run,
        0,
        &[
            "[app] candidate staged for a test run; rebooting",
            "[bootloader] upgrade: test swap",
            "[app] telemetry: image 1.1.0+0 (on trial)",
            "[app] health check failed (simulated): NOT accepting 1.1.0+0; rebooting",
            "[bootloader] upgrade: revert swap",
            "[app] telemetry: image 1.0.0+0 (confirmed), security counter 1, OTP counter 1",
            "[app] update REVERTED by the bootloader",
        ],
        &["REFUSED"],
    )?;
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        0,
        &["[app] telemetry: image 1.0.0+0 (confirmed), security counter 1, OTP counter 1"],
        &[],
    )
}

fn downgrade(c: &Ctx) -> Result {
    let old = c.app("0.9.0", 1)?;
    let dir = c.device("downgrade", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "update accept", Some(&old))?;
    check(
        &run,
        0,
        &[
            "[app] candidate staged for a test run; rebooting",
            "[bootloader] upgrade: upgrade refused: downgrade refused: version 0.9.0+0 is older than the running 1.0.0+0",
            "[app] update REFUSED by the bootloader: downgrade refused: version 0.9.0+0",
            "[app] still running 1.0.0+0",
        ],
        &["(on trial)"],
    )
}

fn rollback(c: &Ctx) -> Result {
    let v2 = c.app("1.1.0", 2)?;
    let dir = c.device("rollback", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "update accept", Some(&v2))?;
    check(&run, 0, &["[app] update applied: running 1.1.0+0"], &[])?;
    // An attacker with access to the flash puts the old, validly signed image back.
    let path = dir.join("castellan-flash.bin");
    let mut flash = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (off, size) = firmware::PART_PRIMARY;
    flash[off..off + size].fill(0xff);
    flash[off..off + c.v1.len()].copy_from_slice(&c.v1);
    write(&path, &flash)?;
    let run = c.boot(&dir, "boot", None)?;
    check(
        &run,
        3,
        &[
            "[bootloader] REFUSED: bootloader refused the primary slot image: security counter 1 is below the confirmed counter 2 (rollback)",
        ],
        &["[app]"],
    )
}

fn power_cut(c: &Ctx) -> Result {
    let v2 = c.app("1.1.0", 2)?;
    let dir = c.device("power-cut", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "update stage", Some(&v2))?;
    check(
        &run,
        0,
        &["[app] candidate staged for a test run; powering off"],
        &[],
    )?;
    // Cut the power in the middle of the bootloader's swap (about 2,000 flash operations).
    write(&dir.join("castellan-powercut.bin"), &300u32.to_le_bytes())?;
    let run = c.boot(&dir, "update accept", Some(&v2))?;
    check(
        &run,
        6,
        &[
            "[bootloader] Castellan bootloader",
            "[platform] POWER CUT (injected) before flash operation 300",
        ],
        &["[secure]"],
    )?;
    let run = c.boot(&dir, "update accept", Some(&v2))?;
    check(
        &run,
        0,
        &[
            "[bootloader] upgrade: test swap resumed after a power cut and done",
            "[app] telemetry: image 1.1.0+0 (on trial)",
            "[app] health check passed: accepting 1.1.0+0",
            "[app] update applied: running 1.1.0+0",
        ],
        &["REFUSED", "REVERTED"],
    )
}

fn poke_secure(c: &Ctx) -> Result {
    let dir = c.device("poke-secure", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "poke-secure", None)?;
    check(
        &run,
        4,
        &[
            "[app] reading secure RAM at 0x38000000 from the non-secure world",
            "[secure] SecureFault from the non-secure side: SFSR=0x08 (AUVIOL",
            "[secure] detector: fault scored, alarm set",
            "[secure] non-secure world stopped",
        ],
        &["ISOLATION BROKEN"],
    )
}

fn gate_pointers(c: &Ctx) -> Result {
    let dir = c.device("gate-pointers", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "gate-pointers", None)?;
    check(
        &run,
        0,
        &[
            "[app] gate given secure RAM 0x38000000: programmer error (pointer refused)",
            "[app] gate given secure code 0x10000000 (ROM): programmer error (pointer refused)",
            "[app] gate given a too-small output buffer: buffer too small",
            "[app] gate given a valid buffer: printed",
            "[app] gate pointer checks: 4 of 4 refused, valid buffer success",
        ],
        &["ISOLATION BROKEN"],
    )
}

fn ns_semihost(c: &Ctx) -> Result {
    let dir = c.device("ns-semihost", &c.bootloader, &c.v1)?;
    let run = c.boot(&dir, "ns-semihost", None)?;
    check(
        &run,
        4,
        &[
            "[app] trying semihosting",
            "[secure] HardFault from the non-secure side",
            "[secure] detector: fault scored, alarm set",
            "[secure] non-secure world stopped",
        ],
        &["ISOLATION BROKEN"],
    )
}

pub(crate) fn hex_after<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .find(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(crate) fn unhex(s: &str) -> Result<Vec<u8>> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn attestation(c: &Ctx) -> Result {
    let dir = c.device("attestation", &c.bootloader, &c.v1)?;
    let nonce = firmware::random32()?;
    let nonce_hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let run = c.boot(&dir, &format!("attest {nonce_hex}"), None)?;
    check(&run, 0, &["[secure] attestation: token of"], &[])?;
    let key = hex_after(&run.output, "[app] attestation public key: ")
        .ok_or("no attestation public key in the output")?;
    let token = hex_after(&run.output, "[app] attestation token: ")
        .ok_or("no attestation token in the output")?;
    let (key, token) = (unhex(key)?, unhex(token)?);
    write(&dir.join("token.cbor"), &token)?;
    let vk = VerificationKey::p256_from_sec1(&key).map_err(|e| e.to_string())?;
    let signer = signer_id(&c.key.public_spki_der()).to_vec();
    let component = |t: &str, digest: Vec<u8>| ExpectedComponent {
        measurement_type: t.into(),
        measurement_values: vec![digest],
        signer_id: Some(signer.clone()),
        min_version: Some("1.0.0".into()),
    };
    let reference = ReferenceValues {
        accepted_lifecycles: vec![Lifecycle::Secured],
        implementation_id: Some(
            castellan_image::HashAlg::Sha256
                .digest(&c.built.rom_window)
                .as_bytes()
                .to_vec(),
        ),
        components: vec![
            component("BL", firmware::measured_digest(&c.bootloader, &c.key)?),
            component("SPE+NSPE", firmware::measured_digest(&c.v1, &c.key)?),
        ],
        ..ReferenceValues::default()
    };
    let claims = appraise(&token, &vk, &nonce, &reference)
        .map_err(|e| format!("the token does not pass appraisal on the host: {e}"))?;
    let expected_instance = {
        let mut id = vec![0x01];
        id.extend_from_slice(castellan_image::HashAlg::Sha256.digest(&key).as_bytes());
        id
    };
    if claims.instance_id != expected_instance {
        return Err("instance id is not 0x01 ‖ SHA-256(attestation key)".into());
    }
    // The host verifier must refuse what it should: another nonce, a flipped bit.
    if appraise(&token, &vk, &[0u8; 32], &reference).is_ok() {
        return Err("the appraisal accepted a wrong nonce".into());
    }
    let mut bad = token.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    if appraise(&bad, &vk, &nonce, &reference).is_ok() {
        return Err("the appraisal accepted a tampered token".into());
    }
    eprintln!(
        "      token {} bytes, {} components, lifecycle {:#06x}: signature and reference values OK",
        token.len(),
        claims.software_components.len(),
        claims.lifecycle
    );
    Ok(())
}

/// `cargo xtask qemu-test [--bench] [--only TEXT]`: the scenarios (those whose name contains
/// TEXT), then the closing line; fails when one failed.
pub(crate) fn qemu_test(args: &[String]) -> Result {
    let bench_only = args.iter().any(|a| a == "--bench-only");
    let bench = bench_only || args.iter().any(|a| a == "--bench");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let (passed, failed) = scenarios(bench, !bench_only, only)?;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} QEMU scenario(s) failed"));
    }
    Ok(())
}

/// Builds and signs the firmware, runs the benchmark when `bench` and every scenario when
/// `all`, and returns (passed, failed). An error means nothing could run (build, signing, no
/// QEMU).
pub(crate) fn scenarios(bench: bool, all: bool, only: Option<&str>) -> Result<(u64, u64)> {
    let built = firmware::build()?;
    let key = firmware::root_key()?;
    let ctx = Ctx {
        bootloader: firmware::sign_bootloader(&built, &key, "1.0.0")?,
        v1: firmware::sign_app(&built, &key, "1.0.0", 1)?,
        root: firmware::target_dir().join("qemu-test"),
        built,
        key,
    };
    if bench {
        run_bench(&ctx)?;
    }
    let (mut passed, mut failed) = (0, 0);
    let wanted = |name: &str| only.is_none_or(|o| name.contains(o));
    for (name, f) in SCENARIOS.iter().filter(|(name, _)| all && wanted(name)) {
        let t = Instant::now();
        match f(&ctx) {
            Ok(()) => {
                passed += 1;
                eprintln!("  ok    {name} ({:.1?})", t.elapsed());
            }
            Err(e) => {
                failed += 1;
                eprintln!("  FAIL  {name}: {e}");
            }
        }
    }
    Ok((passed, failed))
}

/// The first decimal number after `marker` in `text`.
pub(crate) fn figure_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The verification benchmark: a 256 KiB payload signed with the root key, verified in QEMU
/// under `-icount shift=0`; prints the instruction counts and the footprint table.
fn run_bench(c: &Ctx) -> Result {
    let payload: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let opts = castellan_image::SignOptions {
        version: castellan_image::Version::new(1, 0, 0, 0),
        header_size: 0x200,
        pad_header: true,
        public_key_format: castellan_image::PublicKeyFormat::Full,
        ..castellan_image::SignOptions::default()
    };
    let img = castellan_image::sign_image(&payload, &c.key, &opts).map_err(|e| e.to_string())?;
    let mut blob = (img.len() as u32).to_le_bytes().to_vec();
    blob.extend_from_slice(&signer_id(&c.key.public_spki_der()));
    blob.extend_from_slice(&img);
    let dir = c.root.join("bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let f = dir.join("bench-image.bin");
    write(&f, &blob)?;
    let run = qemu(&c.built.bench, &dir, None, &[(f, BENCH_ADDR)], true)?;
    check(&run, 0, &["[bench] sha256 assembly: ", "[bench] done"], &[])?;
    let run_bench_output: String = run
        .output
        .lines()
        .filter(|l| l.starts_with("[bench] board counter"))
        .collect();
    eprintln!("\nVerification of a 256 KiB image on the Cortex-M33 (QEMU -icount shift=0):");
    for l in run.output.lines().filter(|l| l.starts_with("[bench]")) {
        eprintln!("  {l}");
    }
    eprintln!("\nFootprint (arm-none-eabi-size, bytes; flash = text + data, RAM = data + bss):");
    for l in firmware::size_table(&c.built)? {
        eprintln!("{l}");
    }
    // Stack high-water marks of the secure stages over one boot and an attestation request;
    // the same boot under `-icount` gives the boot time, then two more boots of the same device
    // (a first boot also formats trusted storage).
    let dir = c.device("bench-stack", &c.bootloader, &c.v1)?;
    let attest = format!("attest {}", "ab".repeat(32));
    let run = qemu(&c.built.rom, &dir, Some(&attest), &[], true)?;
    check(&run, 0, &["stack high-water"], &[])?;
    let ratio = figure_after(&run_bench_output, "[bench] board counter: ")
        .zip(figure_after(&run_bench_output, " instructions = "))
        .filter(|(_, ticks)| *ticks > 0);
    let mut boots = vec![figure_after(&run.output, "board counter ")];
    for _ in 0..2 {
        let again = qemu(&c.built.rom, &dir, Some(&attest), &[], true)?;
        check(&again, 0, &["stack high-water"], &[])?;
        boots.push(figure_after(&again.output, "board counter "));
    }
    if let Some((insns, per)) = ratio {
        let figures: Vec<String> = boots
            .iter()
            .map(|t| t.map_or("?".into(), |t| (t * insns / per).to_string()))
            .collect();
        eprintln!(
            "\nBoot time, reset to the first non-secure instruction (ROM, bootloader verifying and \
             RAM-loading the {} KiB primary image, secure partition start), first boot then two \
             more: {} instructions",
            c.v1.len().div_ceil(1024),
            figures.join(" / ")
        );
    }
    eprintln!("\nStack high-water marks (paint-stack), one boot plus an attestation token:");
    for l in run
        .output
        .lines()
        .filter(|l| l.contains("stack high-water"))
    {
        eprintln!("  {l}");
    }
    eprintln!();
    Ok(())
}
