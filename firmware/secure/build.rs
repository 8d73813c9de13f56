//! Puts this image's `memory.x` where cortex-m-rt's `link.x` finds it (with an empty `device.x`:
//! the platform's one-entry interrupt table, `no-interrupts`, names no device handler), and asks GNU ld for the
//! TrustZone veneers: `--cmse-implib` makes `SG; B.W` veneers for every
//! `cmse-nonsecure-entry` function in `.gnu.sgstubs`, pinned in the last 2 KiB of the image's
//! window (the non-secure-callable page, 0x100B_F800), and `--out-implib` writes the import library the
//! non-secure application links against (path: `CASTELLAN_VENEERS`, default
//! `target/castellan-veneers.o` in the firmware workspace).
//!
//! It also embeds the detector's model: the file `cargo xtask firmware` writes (path:
//! `CASTELLAN_DETECT_MODEL`, default `target/castellan-detect-model.bin`), and its SHA-256 as
//! the constant `MODEL_DIGEST` the partition checks the model against (`src/detect.rs`).
use sha2::Digest as _;

fn main() {
    if std::env::var_os("CARGO_FEATURE_DETECT").is_some() {
        detect_model();
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    std::fs::write(
        out.join("device.x"),
        "/* the secure partition takes no device interrupt */\n",
    )
    .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    let implib = veneers_path();
    if let Some(dir) = std::path::Path::new(&implib).parent() {
        std::fs::create_dir_all(dir).expect("create the import library's directory");
    }
    println!("cargo:rustc-link-arg-bins=--cmse-implib");
    println!("cargo:rustc-link-arg-bins=--out-implib={implib}");
    println!("cargo:rustc-link-arg-bins=--section-start=.gnu.sgstubs=0x100BF800");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CASTELLAN_VENEERS");
}

/// Writes `detect_model.rs` (the model's bytes and digest) into `OUT_DIR`.
fn detect_model() {
    let path = std::env::var("CASTELLAN_DETECT_MODEL").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        format!("{dir}/../target/castellan-detect-model.bin")
    });
    let model = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("the detector model {path}: {e} (`cargo xtask firmware` writes it)")
    });
    let digest: [u8; 32] = sha2::Sha256::digest(&model).into();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let bin = out.join("detect_model.bin");
    std::fs::copy(&path, &bin).expect("copy the detector model");
    let len = model.len();
    let code = format!(
        "/// The detector's model (`castellan-detect` format), embedded at build time.\n\
         static MODEL_BYTES: [u8; {len}] = *include_bytes!({bin:?});\n\
         /// [`MODEL_BYTES`] as the services borrow it.\n\
         pub static MODEL: &[u8] = &MODEL_BYTES;\n\
         /// SHA-256 of [`MODEL`]: signed with the image, checked before the model is used.\n\
         pub const MODEL_DIGEST: [u8; 32] = {digest:?};\n"
    );
    std::fs::write(out.join("detect_model.rs"), code).expect("write detect_model.rs");
    println!("cargo:rerun-if-changed={path}");
    println!("cargo:rerun-if-env-changed=CASTELLAN_DETECT_MODEL");
}

fn veneers_path() -> String {
    std::env::var("CASTELLAN_VENEERS").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        format!("{dir}/../target/castellan-veneers.o")
    })
}
