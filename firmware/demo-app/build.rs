//! Puts this image's `memory.x` where cortex-m-rt's `link.x` finds it, and links the secure
//! partition's import library (`CASTELLAN_VENEERS`, default `target/castellan-veneers.o` in the
//! firmware workspace): it resolves the `csl_*` entry points to their veneers. Build the secure
//! partition first (`cargo xtask firmware` does).
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    let implib = std::env::var("CASTELLAN_VENEERS").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        format!("{dir}/../target/castellan-veneers.o")
    });
    if !std::path::Path::new(&implib).exists() {
        panic!("{implib} is missing: build castellan-secure first (cargo xtask firmware)");
    }
    println!("cargo:rustc-link-arg-bins={implib}");
    println!("cargo:rerun-if-changed={implib}");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CASTELLAN_VENEERS");
}
