//! Puts this image's `memory.x` where cortex-m-rt's `link.x` finds it, with an empty
//! `device.x`: the bench uses cortex-m-rt's `device` feature only for the platform's one-entry
//! interrupt table (`no-interrupts`), so there are no device interrupt handlers to name.
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    std::fs::write(out.join("device.x"), "/* the bench takes no interrupt */\n")
        .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
