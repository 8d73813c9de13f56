//! Tells the crate whether the P256-Cortex-M4 assembly is built for this target: the same
//! rule as `p256-cortex-m4-sys`'s build script (Armv7E-M and Armv8-M Mainline, which have the
//! UMAAL instruction the assembly relies on).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(castellan_p256_asm)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main") {
        println!("cargo::rustc-cfg=castellan_p256_asm");
    }
}
