//! Memory per simulated device, whole-copy flash against copy-on-write pages, in one run.
//!
//! Each device has a 2.25 MiB flash built from one factory image (bootloader and application
//! in the primary slot, its own storage page), then downloads the same 1 MiB release into its
//! erased secondary slot in 4 KiB writes, as in `castellan bench rollout`. "whole" keeps what
//! the simulator kept before pages: the flash's bytes and one bit per write unit, per device.
//! Resident memory (VmRSS) is read before and after building the devices.
//!
//! `cargo run --release -p castellan-sim --example flash_memory -- 1000`

use castellan_hal::NorFlash;
use castellan_sim::{FlashConfig, SimFlash};

const SECTOR: u32 = 4096;
const SIZE: u32 = 2304 * 1024;
const SECONDARY: u32 = 1152 * 1024;
const RELEASE: u32 = 1024 * 1024;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn pattern(len: u32, salt: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i.wrapping_mul(31) ^ salt) % 251) as u8)
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let config = FlashConfig::new(SIZE, SECTOR, 4, 0xFF);
    let mut factory = SimFlash::new(config).expect("flash");
    factory
        .write(0, &pattern(64 * 1024, 1))
        .expect("bootloader");
    factory
        .write(64 * 1024, &pattern(96 * 1024, 2))
        .expect("app");
    let base = factory.to_base();
    let release = pattern(RELEASE, 3);

    let (before, mut after_factory) = (rss_kib(), 0);
    let mut cow = Vec::with_capacity(n);
    for i in 0..n {
        let mut f = SimFlash::from_base(&base);
        // Its own keys and storage.
        f.write(SIZE - SECTOR, &pattern(256, i as u32))
            .expect("storage");
        cow.push(f);
    }
    after_factory += rss_kib().saturating_sub(before);
    for f in &mut cow {
        for at in (0..RELEASE).step_by(SECTOR as usize) {
            let chunk = &release[at as usize..(at + SECTOR) as usize];
            f.write(SECONDARY + at, chunk).expect("download");
        }
    }
    let cow_kib = rss_kib().saturating_sub(before);
    let cow_factory = after_factory;
    drop(cow);

    let before = rss_kib();
    let units = (SIZE / 4) as usize;
    let mut whole: Vec<(Vec<u8>, Vec<u64>)> = Vec::with_capacity(n);
    for i in 0..n {
        let mut bytes = factory.contents().to_vec();
        bytes[(SIZE - SECTOR) as usize..(SIZE - SECTOR + 256) as usize]
            .copy_from_slice(&pattern(256, i as u32));
        whole.push((bytes, vec![0; units.div_ceil(64)]));
    }
    let whole_factory = rss_kib().saturating_sub(before);
    for (bytes, _) in &mut whole {
        bytes[SECONDARY as usize..(SECONDARY + RELEASE) as usize].copy_from_slice(&release);
    }
    let whole_kib = rss_kib().saturating_sub(before);
    drop(whole);

    let per = |kib: u64| kib as f64 / n as f64;
    println!("{n} devices, {} KiB flash each", SIZE / 1024);
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "KiB per device", "whole copy", "pages", "ratio"
    );
    for (what, w, c) in [
        ("after the factory image", whole_factory, cow_factory),
        ("after the 1 MiB download", whole_kib, cow_kib),
    ] {
        println!(
            "{:<34} {:>12.1} {:>12.1} {:>8.1}",
            what,
            per(w),
            per(c),
            per(w) / per(c).max(1e-9)
        );
    }
}
