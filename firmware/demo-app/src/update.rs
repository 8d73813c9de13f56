//! The update flow of the demo: stream the downloaded image through the firmware-update gate,
//! reboot into its trial, then accept it (or not) and watch the bootloader keep or revert it.
//!
//! The runner ("the network") leaves the image in non-secure RAM at 0x2830_0000: a 32-bit
//! length, then the MCUboot image.

use castellan_gate::client::{Veneers, power_off, system_reset};
use castellan_gate::{BootInfo, SecureGate as _, println, psa, upgrade};

use crate::{V, code};

const DOWNLOAD: usize = 0x2830_0000;
const DOWNLOAD_MAX: usize = 0x8_0000;

/// The downloaded image, if any.
fn download() -> Option<&'static [u8]> {
    // Safety: the download buffer is non-secure RAM reserved for the runner's image (outside
    // this image's RAM region); reading it is always allowed.
    let len = unsafe { core::ptr::read_volatile(DOWNLOAD as *const u32) } as usize;
    if !(32..=DOWNLOAD_MAX).contains(&len) {
        return None;
    }
    // Safety: as above; `len` is bounded by the buffer size.
    Some(unsafe { core::slice::from_raw_parts((DOWNLOAD + 4) as *const u8, len) })
}

/// Version in an MCUboot header (bytes 20..28).
fn header_version(img: &[u8]) -> Option<[u32; 4]> {
    let h = img.get(20..28)?;
    Some([
        u32::from(h[0]),
        u32::from(h[1]),
        u32::from(u16::from_le_bytes([h[2], h[3]])),
        u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
    ])
}

/// What to do with a candidate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stage it, reboot into its trial, accept it.
    Accept,
    /// Stage it, reboot into its trial, do not accept it.
    Reject,
    /// Stage it and power off.
    StageOnly,
}

/// Runs one step of the update, according to what the bootloader did at this boot.
pub fn run(info: &BootInfo, mode: Mode) -> ! {
    let accept = mode == Mode::Accept;
    match info.upgrade {
        upgrade::REFUSED => {
            println!("[app] update REFUSED by the bootloader: {}", info.text());
            println!("[app] still running {}", V(info.version));
            power_off(0)
        }
        upgrade::REVERTED => {
            println!(
                "[app] update REVERTED by the bootloader: the trial was not accepted; running {} again",
                V(info.version)
            );
            power_off(0)
        }
        _ => {}
    }
    if info.confirmed == 0 {
        if accept {
            let r = code(Veneers.fwu_accept());
            println!(
                "[app] health check passed: accepting {} ({})",
                V(info.version),
                psa::name(r)
            );
            println!("[app] rebooting to show the accepted image stays");
        } else {
            println!(
                "[app] health check failed (simulated): NOT accepting {}; rebooting",
                V(info.version)
            );
        }
        system_reset()
    }
    let Some(img) = download() else {
        println!("[app] no update downloaded");
        power_off(0)
    };
    let Some(candidate) = header_version(img) else {
        println!("[app] downloaded data is not an image");
        power_off(1)
    };
    if candidate == info.version {
        println!(
            "[app] update applied: running {} (confirmed)",
            V(info.version)
        );
        power_off(0)
    }
    println!(
        "[app] downloaded image {} ({} bytes); writing it through the firmware-update gate",
        V(candidate),
        img.len()
    );
    let r = code(Veneers.fwu_start(img.len() as u32));
    if r != psa::SUCCESS {
        println!("[app] fwu start failed: {}", psa::name(r));
        power_off(1)
    }
    for (i, chunk) in img.chunks(256).enumerate() {
        let r = code(Veneers.fwu_write((i * 256) as u32, chunk));
        if r != psa::SUCCESS {
            println!("[app] fwu write at {:#x} failed: {}", i * 256, psa::name(r));
            power_off(1)
        }
    }
    let r = code(Veneers.fwu_install(false));
    if r != psa::SUCCESS {
        println!("[app] fwu install refused: {}", psa::name(r));
        power_off(1)
    }
    if mode == Mode::StageOnly {
        println!("[app] candidate staged for a test run; powering off");
        power_off(0)
    }
    println!("[app] candidate staged for a test run; rebooting");
    system_reset()
}
