//! Puts this image's `memory.x` where cortex-m-rt's `link.x` finds it (with an empty `device.x`:
//! the platform's one-entry interrupt table, `no-interrupts`, names no device handler), and asks GNU ld for the
//! TrustZone veneers: `--cmse-implib` makes `SG; B.W` veneers for every
//! `cmse-nonsecure-entry` function in `.gnu.sgstubs`, pinned in the last 2 KiB of the image's
//! window (the non-secure-callable page, 0x100B_F800), and `--out-implib` writes the import library the
//! non-secure application links against (path: `CASTELLAN_VENEERS`, default
//! `target/castellan-veneers.o` in the firmware workspace).
fn main() {
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

fn veneers_path() -> String {
    std::env::var("CASTELLAN_VENEERS").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        format!("{dir}/../target/castellan-veneers.o")
    })
}
