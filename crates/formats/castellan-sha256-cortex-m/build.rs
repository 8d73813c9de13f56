//! Assembles OpenSSL's SHA-256 block function (`asm/sha256-armv4.S`, integer Thumb-2 path) for
//! Armv7E-M and Armv8-M Mainline targets and tells the crate so (`castellan_sha256_asm`); on
//! every other target nothing is built and the crate re-exports `sha2::Sha256`. A build with
//! `--cfg castellan_sha256_portable` (size before speed, as the ROM stage is built) keeps
//! `sha2` too: the assembly is 2.8 KiB where sha2's compact SHA-256 is 0.4 KiB.
//!
//! The file is assembled from a copy with two mechanical changes (asm/README.md): the include
//! of the perlasm header becomes `#define OPENSSL_ARM`, and the `.arch armv7-a` directives are
//! dropped so that the object is tagged with the target's M profile.

use std::path::PathBuf;

const SOURCE: &str = "asm/sha256-armv4.S";
const HEADER_INCLUDE: &str = "#include <ring-core/asm_base.h>";
const A_PROFILE: &str = ".arch\tarmv7-a";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(castellan_sha256_asm)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={SOURCE}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo::rustc-check-cfg=cfg(castellan_sha256_portable)");
    let size_first = std::env::var_os("CARGO_CFG_CASTELLAN_SHA256_PORTABLE").is_some();
    if !(target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main")) || size_first {
        return;
    }
    let text = match std::fs::read_to_string(SOURCE) {
        Ok(t) => t,
        Err(e) => fail(&format!("cannot read {SOURCE}: {e}")),
    };
    if !text.contains(HEADER_INCLUDE) || !text.contains(A_PROFILE) {
        fail(&format!(
            "{SOURCE} is not the expected perlasm output (no `{HEADER_INCLUDE}` or `.arch armv7-a`)"
        ));
    }
    let text = text
        .replace(HEADER_INCLUDE, "#define OPENSSL_ARM 1")
        .replace(A_PROFILE, "");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let copy = out.join("sha256-armv4.S");
    if let Err(e) = std::fs::write(&copy, text) {
        fail(&format!("cannot write {}: {e}", copy.display()));
    }
    cc::Build::new()
        .file(&copy)
        .compile("castellan_sha256_armv4");
    println!("cargo::rustc-cfg=castellan_sha256_asm");
}

fn fail(why: &str) -> ! {
    eprintln!("castellan-sha256-cortex-m: {why}");
    std::process::exit(1)
}
