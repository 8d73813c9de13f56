//! `cargo xtask firmware`: builds the Cortex-M33 images of `firmware/` (ROM stage, bootloader,
//! secure partition, demo application, verification benchmark), reports their footprint, and
//! signs and assembles what a device holds (flash and OTP files) for `cargo xtask qemu-test`.
//!
//! Toolchain, in order of preference (`CASTELLAN_FIRMWARE_ROUTE=rustup|debian` forces one):
//! 1. rustup: the `thumbv8m.main-none-eabi` target of the toolchain running xtask (installed
//!    with `rustup target add` when missing);
//! 2. Debian: `rustc-web` (rustc 1.96) with `rust-web-src`, building `core` from source
//!    (`-Zbuild-std`) with `RUSTC=/usr/bin/rustc`.
//!
//! Both link with GNU ld from `binutils-arm-none-eabi` (it writes the TrustZone veneers and
//! their import library; rust-lld does too, but only with the veneer section pinned, and the
//! Debian route has no rust-lld) and run under `RUSTC_BOOTSTRAP=1`: the TrustZone entry and
//! call ABIs (`cmse_nonsecure_entry`, `abi_cmse_nonsecure_call`) and `-Zbuild-std` are unstable
//! features, and rustc gates them behind the nightly channel even though the stable compiler
//! implements them. Missing Debian packages (`qemu-system-arm`, `binutils-arm-none-eabi`, and
//! for route 2 `rustc-web rust-web-src`) are installed when running as root; otherwise the
//! exact `apt-get` command is printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use castellan_image::{
    KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image,
};

use crate::steps::{Result, root, run, succeeds};

/// The firmware target.
pub(crate) const TARGET: &str = "thumbv8m.main-none-eabi";
/// Debian packages every firmware build and run needs.
const APT_ALWAYS: &[&str] = &[
    "qemu-system-arm",
    "binutils-arm-none-eabi",
    // The C and assembly of the P256-Cortex-M4 verifier (castellan-p256-cortex-m), and the
    // C library headers it includes (headers only: newlib itself is not linked).
    "gcc-arm-none-eabi",
    "libnewlib-dev",
];
/// Debian packages of the fallback toolchain.
const APT_DEBIAN_RUST: &[&str] = &["rustc-web", "rust-web-src"];

/// Flash geometry and layout (must match `firmware/platform-an505/src/map.rs`).
pub(crate) const FLASH_SIZE: usize = 0x14_7000;
/// Offset and size of the bootloader partition.
pub(crate) const PART_BOOTLOADER: (usize, usize) = (0, 0x4_0000);
/// Offset and size of the primary slot.
pub(crate) const PART_PRIMARY: (usize, usize) = (0x4_0000, 0x8_0000);
/// The secure partition's window in the combined payload (the application follows it).
const SECURE_MAX: usize = 0x4_0000;
/// Largest application binary.
const NS_MAX: usize = 0x4_0000;
/// Header size of every image of the board.
const HEADER_SIZE: u16 = 0x200;
/// The ROM window hashed into the attestation implementation id: the ROM stage's 32 KiB region
/// (`firmware/rom/memory.x`).
const ROM_WINDOW: usize = 0x8000;

/// Cargo `--config` of the bootloader's and the bench's build (the secure partition's is
/// [`SECURE_RUSTFLAGS_CONFIG`]; docs/benchmarks.md, "Bootloader and secure partition"): sha2's
/// compact software backend.
/// Their image hashing runs on the SHA-256 assembly (`castellan-sha256-cortex-m`), so what is
/// left on sha2 (DICE's HKDF-SHA-512, trusted storage's and the key derivation's SHA-256) hashes
/// little; the unrolled backend would cost 33 KiB of flash in each image. The `aes` crate's
/// compact fixslice (trusted storage's AES-256-GCM in the secure partition; still bitsliced,
/// constant-time) saves its flash the same way.
const IMAGE_SIZE_CONFIG: &[&str] = &[
    "--config",
    "target.thumbv8m.main-none-eabi.rustflags=[\"--cfg\", \"sha2_backend_soft=\\\"compact\\\"\", \"--cfg\", \"aes_backend_soft=\\\"compact\\\"\"]",
];

/// Cargo `--config` added to the secure partition's build (docs/benchmarks.md, "Bootloader and
/// secure partition"): `opt-level = "z"` for the whole image, 9.3 KiB less flash for 3.1 KiB
/// more stack (29.6 KiB of a 2 MiB secure RAM) and a slower generic P-256 (the `p256` crate,
/// which the partition still signs with); boot time unchanged within its spread.
const SECURE_SIZE_CONFIG: &[&str] = &["--config", "profile.release.opt-level=\"z\""];

/// The secure partition's rustflags (in place of [`IMAGE_SIZE_CONFIG`]'s): the same compact
/// sha2 and AES backends, and its SHA-256 on sha2's compact backend too
/// (`castellan_sha256_portable`, as the ROM stage): the 2.8 KiB assembly is what the partition
/// needed to reach 128 KiB of flash (docs/benchmarks.md, "Bootloader and secure partition").
/// It hashes the 32 KiB ROM window once per boot and a candidate image once per update; the
/// boot stages keep the assembly for the images they verify.
const SECURE_RUSTFLAGS_CONFIG: &[&str] = &[
    "--config",
    "target.thumbv8m.main-none-eabi.rustflags=[\"--cfg\", \"sha2_backend_soft=\\\"compact\\\"\", \"--cfg\", \"aes_backend_soft=\\\"compact\\\"\", \"--cfg\", \"castellan_sha256_portable\"]",
];

/// Cargo `--config` of the ROM stage's build (docs/benchmarks.md, "ROM stage footprint"):
/// sha2's compact software backend for everything, its SHA-256 included
/// (`castellan_sha256_portable`: the 2.8 KiB assembly does not fit the 32 KiB ROM; the ROM
/// hashes only the bootloader). (`opt-level = "z"` was measured and not taken: 5 KiB less flash
/// for 1.1 KiB more stack and 8 % more boot time.)
const ROM_SIZE_CONFIG: &[&str] = &[
    "--config",
    "target.thumbv8m.main-none-eabi.rustflags=[\"--cfg\", \"sha2_backend_soft=\\\"compact\\\"\", \"--cfg\", \"castellan_sha256_portable\"]",
];

/// C flags of the P256-Cortex-M4 library (compiled by `p256-cortex-m4-sys` with `cc`): the boot
/// stages and the bench use it only to verify signatures, so their configuration leaves out
/// signing, key generation, ECDH and the point encodings; verification then uses the library's
/// variable-time inversion, on the signature's public `s` only. (The secure partition's build,
/// at another opt-level and so with its own build of the library, has
/// [`P256_ASM_SECURE_CFLAGS`].)
const P256_ASM_CFLAGS: (&str, &str) = (
    "CFLAGS_thumbv8m_main_none_eabi",
    "-Dinclude_p256_sign=0 -Dinclude_p256_keygen=0 -Dinclude_p256_ecdh=0 \
     -Dinclude_p256_raw_scalarmult_generic=0 -Dinclude_p256_raw_scalarmult_base=0 \
     -Dinclude_p256_to_octet_string_uncompressed=0 -Dinclude_p256_to_octet_string_compressed=0 \
     -Dinclude_p256_to_octet_string_hybrid=0 -Dinclude_p256_decompress_point=0 \
     -Dinclude_p256_decode_point=0",
);

/// C flags of the P256-Cortex-M4 library in the secure partition's build: it also signs (the
/// IAK, device keys, `psa_sign_hash`), makes key pairs and checks trust anchors on the curve,
/// so signing, key generation and point decoding are in (constant-time for the secrets); ECDH,
/// the raw scalar multiplications and the point encodings stay out. Verification then uses the
/// library's constant-time inversion.
const P256_ASM_SECURE_CFLAGS: &str = "-Dinclude_p256_ecdh=0 \
     -Dinclude_p256_raw_scalarmult_generic=0 -Dinclude_p256_raw_scalarmult_base=0 \
     -Dinclude_p256_to_octet_string_uncompressed=0 -Dinclude_p256_to_octet_string_compressed=0 \
     -Dinclude_p256_to_octet_string_hybrid=0 -Dinclude_p256_decompress_point=0";

/// The images one build produced.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// ELF of each image, by name.
    pub elves: Vec<(&'static str, PathBuf)>,
    /// The ROM stage ELF (QEMU's `-kernel`).
    pub rom: PathBuf,
    /// The benchmark ELF (also a `-kernel`).
    pub bench: PathBuf,
    /// Raw binaries.
    pub bootloader_bin: Vec<u8>,
    /// Secure partition, raw.
    pub secure_bin: Vec<u8>,
    /// Demo application, raw.
    pub app_bin: Vec<u8>,
    /// ROM window contents (for the implementation id).
    pub rom_window: Vec<u8>,
}

/// The firmware workspace.
pub(crate) fn dir() -> PathBuf {
    root().join("firmware")
}

/// Where firmware builds and run files go.
pub(crate) fn target_dir() -> PathBuf {
    dir().join("target")
}

/// `cargo xtask firmware [--symbols [IMAGE] [--top N]]`.
pub(crate) fn firmware_cmd(args: &[String]) -> Result {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: cargo xtask firmware [--symbols [IMAGE] [--top N]] [--clippy]\n\n  \
             builds every image and prints the footprint table;\n  \
             --clippy: then lints the firmware workspace with warnings denied;\n  \
             --symbols: also the largest flash symbols and the flash per crate of IMAGE\n  \
             (a prefix of a name in the table, default the ROM stage; --top N symbols, default 30)"
        );
        return Ok(());
    }
    let built = build()?;
    eprintln!("\nFootprint (arm-none-eabi-size, bytes; flash = text + data, RAM = data + bss):");
    for line in size_table(&built)? {
        eprintln!("{line}");
    }
    if args.iter().any(|a| a == "--clippy") {
        return clippy();
    }
    if args.iter().any(|a| a == "--symbols") {
        crate::symbols::symbols_cmd(&built.elves, args)?;
    } else if let Some(a) = args.first() {
        return Err(format!(
            "unknown option `{a}` (see cargo xtask firmware --help)"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Rustup,
    Debian,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

fn apt_ensure(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !succeeds(Command::new("dpkg").args(["-s", p])))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "the firmware needs Debian packages that are missing; install them with: \
             sudo apt-get install -y {}",
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir())
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l == TARGET)
        })
        .unwrap_or(false)
}

fn choose_route() -> Result<Route> {
    match std::env::var("CASTELLAN_FIRMWARE_ROUTE").as_deref() {
        Ok("debian") => return Ok(Route::Debian),
        Ok("rustup") => return Ok(Route::Rustup),
        _ => {}
    }
    if rustup_has_target() {
        return Ok(Route::Rustup);
    }
    if succeeds(
        Command::new("rustup")
            .args(["target", "add", TARGET])
            .current_dir(dir()),
    ) && rustup_has_target()
    {
        eprintln!("xtask: installed the rustup target {TARGET}");
        return Ok(Route::Rustup);
    }
    eprintln!("xtask: rustup cannot provide {TARGET}; using Debian's rustc-web with build-std");
    Ok(Route::Debian)
}

/// `cargo clippy` over the whole firmware workspace with warnings denied (run after [`build`]:
/// the application links the secure partition's import library).
pub(crate) fn clippy() -> Result {
    let route = choose_route()?;
    let mut c = firmware_command(route, "clippy");
    c.args(["--workspace", "--", "-D", "warnings"]);
    run(&mut c)
}

fn firmware_cargo(route: Route) -> Command {
    firmware_command(route, "build")
}

/// `cargo SUBCOMMAND --release` for the firmware target, with the route's toolchain settings.
fn firmware_command(route: Route, subcommand: &str) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(dir())
        .env("CARGO_TARGET_DIR", target_dir())
        .env(
            "CASTELLAN_VENEERS",
            target_dir().join("castellan-veneers.o"),
        )
        // TrustZone ABIs and build-std are nightly features of the stable compiler.
        .env("RUSTC_BOOTSTRAP", "1")
        .env(P256_ASM_CFLAGS.0, P256_ASM_CFLAGS.1)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    c.args([subcommand, "--release", "--target", TARGET]);
    if route == Route::Debian {
        c.env("RUSTC", "/usr/bin/rustc").args([
            "-Zbuild-std=core",
            "-Zbuild-std-features=compiler-builtins-mem",
        ]);
    }
    c
}

fn objcopy(elf: &Path) -> Result<Vec<u8>> {
    let bin = elf.with_extension("bin");
    run(Command::new("arm-none-eabi-objcopy")
        .args(["-O", "binary"])
        .arg(elf)
        .arg(&bin))?;
    std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))
}

/// Builds every image (toolchain and packages installed first).
pub(crate) fn build() -> Result<Built> {
    apt_ensure(APT_ALWAYS)?;
    let route = choose_route()?;
    if route == Route::Debian {
        apt_ensure(APT_DEBIAN_RUST)?;
    }
    eprintln!("xtask: building the firmware ({route:?} toolchain, GNU ld)");
    // The secure partition first: its import library resolves the application's gate calls.
    // Built on its own, at `opt-level = "z"` (SECURE_SIZE_CONFIG), with the detector's model
    // (written first, embedded by its build script).
    let model = crate::qemu_detect::write_firmware_model()?;
    let mut c = firmware_cargo(route);
    c.env("CASTELLAN_DETECT_MODEL", &model);
    c.args(["-p", "castellan-secure"]);
    c.args(SECURE_RUSTFLAGS_CONFIG).args(SECURE_SIZE_CONFIG);
    c.env(P256_ASM_CFLAGS.0, P256_ASM_SECURE_CFLAGS);
    run(&mut c)?;
    // The bootloader, and the bench with it (same settings, "s": the bench's figures stay
    // comparable with the boot stages'): the bootloader's `quiet-panic` must not reach the
    // secure partition. (`opt-level = "z"` for the bootloader was measured and not taken:
    // 1 084 bytes larger than "s".)
    let mut c = firmware_cargo(route);
    c.args(["-p", "castellan-bootloader", "-p", "castellan-bench"])
        .args(IMAGE_SIZE_CONFIG);
    run(&mut c)?;
    // The ROM stage on its own: its size settings (and the platform's `quiet-panic` feature)
    // must not reach the other images.
    let mut c = firmware_cargo(route);
    c.args(["-p", "castellan-rom"]).args(ROM_SIZE_CONFIG);
    run(&mut c)?;
    let mut c = firmware_cargo(route);
    c.args(["-p", "castellan-demo-app"]);
    run(&mut c)?;

    let out = target_dir().join(TARGET).join("release");
    let elf = |n: &str| out.join(n);
    let elves = vec![
        ("ROM stage", elf("castellan-rom")),
        ("bootloader", elf("castellan-bootloader")),
        ("secure partition", elf("castellan-secure")),
        ("demo application (NS)", elf("castellan-demo-app")),
        ("verification bench", elf("castellan-bench")),
    ];
    // The boot stages and the secure partition are written without `core::fmt`; a change that
    // brings it back (a `println!`, a `Display` reached from their code) fails the build here.
    crate::symbols::check_no_formatting("the ROM stage", &elf("castellan-rom"))?;
    crate::symbols::check_no_formatting("the bootloader", &elf("castellan-bootloader"))?;
    crate::symbols::check_no_formatting("the secure partition", &elf("castellan-secure"))?;
    let bootloader_bin = objcopy(&elf("castellan-bootloader"))?;
    let secure_bin = objcopy(&elf("castellan-secure"))?;
    let app_bin = objcopy(&elf("castellan-demo-app"))?;
    let mut rom_window = objcopy(&elf("castellan-rom"))?;
    if rom_window.len() > ROM_WINDOW || secure_bin.len() > SECURE_MAX || app_bin.len() > NS_MAX {
        return Err("an image outgrew its window in the memory map".into());
    }
    check_secure_budget(&elf("castellan-secure"))?;
    rom_window.resize(ROM_WINDOW, 0);
    Ok(Built {
        rom: elf("castellan-rom"),
        bench: elf("castellan-bench"),
        elves,
        bootloader_bin,
        secure_bin,
        app_bin,
        rom_window,
    })
}

/// The secure partition's flash budget without the detector (issue 17; docs/firmware.md,
/// "Footprint").
const SECURE_BUDGET: u64 = 128 * 1024;
/// The detector's own flash budget (issue 18: code ≤ 32 KiB), its model included.
const DETECTOR_BUDGET: u64 = 32 * 1024;

/// Two limits (docs/firmware.md, "Footprint"): the detector's own symbols ([`DETECTOR_BUDGET`]),
/// and the whole partition within both budgets together. The partition without the detector
/// cannot be read off the symbols: the dispatcher's detection branches, the report's signing
/// and trusted-storage write and the installation are inlined into shared functions, so its
/// figure is measured with the `detect` feature off and recorded in the docs.
fn check_secure_budget(elf: &Path) -> Result {
    let flash = flash_bytes(elf)?;
    let detector = crate::symbols::detector_flash(elf)?;
    let limit = SECURE_BUDGET + DETECTOR_BUDGET;
    eprintln!(
        "xtask: secure partition {flash} bytes of flash (at most {limit}: {SECURE_BUDGET} + the \
         detector's {DETECTOR_BUDGET}); the detector's own symbols {detector} (at most \
         {DETECTOR_BUDGET})"
    );
    if flash > limit || detector > DETECTOR_BUDGET {
        return Err(format!(
            "the secure partition is over budget: {flash} bytes (at most {limit}), {detector} in \
             the detector's own symbols (at most {DETECTOR_BUDGET})"
        ));
    }
    Ok(())
}

/// Flash (text + data) of an ELF, from `arm-none-eabi-size`.
fn flash_bytes(elf: &Path) -> Result<u64> {
    let o = Command::new("arm-none-eabi-size")
        .arg(elf)
        .output()
        .map_err(|e| format!("arm-none-eabi-size: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    let nums: Vec<u64> = text
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    match nums[..] {
        [t, d] => Ok(t + d),
        _ => Err(format!("cannot read the size of {}", elf.display())),
    }
}

/// Footprint lines from `arm-none-eabi-size`.
pub(crate) fn size_table(b: &Built) -> Result<Vec<String>> {
    let mut lines = vec![format!(
        "  {:<24} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "image", "text", "data", "bss", "flash", "RAM"
    )];
    for (name, elf) in &b.elves {
        let o = Command::new("arm-none-eabi-size")
            .arg(elf)
            .output()
            .map_err(|e| format!("arm-none-eabi-size: {e}"))?;
        let text = String::from_utf8_lossy(&o.stdout);
        let nums: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .take(3)
            .filter_map(|n| n.parse().ok())
            .collect();
        let [t, d, z] = nums[..] else {
            return Err(format!("cannot read the size of {}", elf.display()));
        };
        lines.push(format!(
            "  {name:<24} {t:>8} {d:>8} {z:>8} {:>10} {:>10}",
            t + d,
            d + z
        ));
    }
    Ok(lines)
}

/// The signing key of the device's root of trust (ECDSA P-256), kept across runs in
/// `firmware/target/keys/root.pem` (a test key: it never leaves the build directory).
pub(crate) fn root_key() -> Result<SigningKey> {
    let path = target_dir().join("keys").join("root.pem");
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("{}: {e}", path.display()));
    }
    let key = SigningKey::generate(KeyType::EcdsaP256);
    let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key)
}

fn options(version: &str, counter: u32, sw_type: &str, slot: usize) -> Result<SignOptions> {
    Ok(SignOptions {
        version: Version::parse(version).ok_or_else(|| format!("bad version {version}"))?,
        header_size: HEADER_SIZE,
        pad_header: true,
        slot_size: slot as u32,
        align: 4,
        security_counter: Some(counter),
        boot_record: Some(sw_type.into()),
        // The device keeps only the key's hash in OTP: images carry the key.
        public_key_format: PublicKeyFormat::Full,
        ..SignOptions::default()
    })
}

/// The signed bootloader image.
pub(crate) fn sign_bootloader(b: &Built, key: &SigningKey, version: &str) -> Result<Vec<u8>> {
    let opts = options(version, 1, "BL", PART_BOOTLOADER.1)?;
    sign_image(&b.bootloader_bin, key, &opts).map_err(|e| format!("signing the bootloader: {e}"))
}

/// The signed combined image: secure partition (padded to its window), then the application.
pub(crate) fn sign_app(
    b: &Built,
    key: &SigningKey,
    version: &str,
    counter: u32,
) -> Result<Vec<u8>> {
    let mut payload = b.secure_bin.clone();
    payload.resize(SECURE_MAX, 0xff);
    payload.extend_from_slice(&b.app_bin);
    let opts = options(version, counter, "SPE+NSPE", PART_PRIMARY.1)?;
    sign_image(&payload, key, &opts).map_err(|e| format!("signing the application: {e}"))
}

/// The digest a device measures for `image` (verified with `key` first).
pub(crate) fn measured_digest(image: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    let spki = key.public_spki_der();
    let mut src: &[u8] = image;
    let v = castellan_image::verify(&mut src, TrustedKey::Spki(&spki))
        .map_err(|e| format!("host verification of a signed image: {e}"))?;
    Ok(v.digest.as_bytes().to_vec())
}

/// A flash file holding `bootloader` and `primary` in their partitions, the rest erased.
pub(crate) fn flash_file(bootloader: &[u8], primary: &[u8]) -> Result<Vec<u8>> {
    let mut f = vec![0xffu8; FLASH_SIZE];
    for (img, (off, size)) in [(bootloader, PART_BOOTLOADER), (primary, PART_PRIMARY)] {
        if img.len() > size {
            return Err("an image does not fit its partition".into());
        }
        f[off..off + img.len()].copy_from_slice(img);
    }
    Ok(f)
}

/// An OTP file for a secured device: root-key hash, lifecycle Secured, key regions locked,
/// counters blank, and the UDS.
pub(crate) fn otp_file(root_key_hash: &[u8; 32], uds: &[u8; 32]) -> Vec<u8> {
    let mut f = vec![0u8; 300];
    // Words 0..8: root-key hash (little-endian words of the hash bytes = the bytes in order).
    f[..32].copy_from_slice(root_key_hash);
    // Word 16: lifecycle thermometer 2 = secured (0x3000).
    f[64..68].copy_from_slice(&3u32.to_le_bytes());
    // UDS at 256..288.
    f[256..288].copy_from_slice(uds);
    // Lock flags at 288..: regions 0 and 1 (root-key and application-key hashes) locked.
    f[288] = 1;
    f[289] = 1;
    f
}

/// 32 bytes from the host's random generator.
pub(crate) fn random32() -> Result<[u8; 32]> {
    use std::io::Read as _;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(b)
}
