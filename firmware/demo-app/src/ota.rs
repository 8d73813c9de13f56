//! Over-the-air updates through the secure partition's SUIT update client: the non-secure side
//! only moves bytes. The manifest is authenticated, its vendor, class and sequence number are
//! checked, the payload is hashed and sized, and the image verified — all inside the secure
//! partition; this module hands over what "the network" (the host bridge) left in the download
//! buffer and reports the verdicts on the console, where the bridge reads them.
//!
//! Download buffer (non-secure RAM at 0x2830_0000, written by the runner before QEMU starts):
//!
//! ```text
//!  +0x00  magic "CSLU"        +0x04  envelope length     +0x08  payload length (0: none)
//!  +0x0C  reserved (0)        +0x10  SUIT envelope, zero-padded to a multiple of 16, then
//!                                    the payload (the MCUboot image)
//! ```
//!
//! Commands (one per QEMU run; the reboots of `ota install` stay within the run). `now` is the
//! time in unix seconds as the runner knows it (the board has no clock): with it the secure
//! partition also refuses an expired release.
//!
//! | command | what it does |
//! |---|---|
//! | `anchor <130 hex digits>` | provisions the release trust anchor (write-once) |
//! | `ota check [now]` | authenticates the envelope and checks it against the device: `accepted` or `refused` |
//! | `ota install [now]` | begin, stream the payload, finish (digest, size, image) → trial reboot → self-test → accept |
//! | `ota status` | prints the update client's state |
//! | `ota cancel` | abandons an update in progress |

use castellan_gate::client::{Veneers, power_off, system_reset};
use castellan_gate::{
    BootInfo, SecureGate as _, UPDATE_BLOCK_CAP, println, psa, update_state, upgrade,
};

use crate::{V, code, unhex};

const DOWNLOAD: usize = 0x2830_0000;
/// End of non-secure RAM (exclusive).
const DOWNLOAD_END: usize = 0x2840_0000;
/// "CSLU", little-endian.
const MAGIC: u32 = u32::from_le_bytes(*b"CSLU");
const HEADER: usize = 16;

/// Exit status of a run whose update was refused (by the secure partition or the bootloader)
/// or reverted.
const EXIT_REFUSED: u32 = 1;
/// Exit status of a command line that does not parse.
const EXIT_USAGE: u32 = 2;

/// What the runner left in the download buffer.
struct Download {
    envelope: &'static [u8],
    payload: &'static [u8],
}

fn read_word(addr: usize) -> u32 {
    // Safety: `addr` is inside the download buffer, non-secure RAM this image may always read.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn download() -> Option<Download> {
    if read_word(DOWNLOAD) != MAGIC {
        return None;
    }
    let env_len = read_word(DOWNLOAD + 4) as usize;
    let pay_len = read_word(DOWNLOAD + 8) as usize;
    let env_start = DOWNLOAD + HEADER;
    let pay_start = env_start.checked_add(env_len.checked_next_multiple_of(16)?)?;
    let end = pay_start.checked_add(pay_len)?;
    if env_len == 0 || end > DOWNLOAD_END {
        return None;
    }
    // Safety: both ranges lie inside the download buffer (checked above), which nothing else
    // writes while the application runs.
    unsafe {
        Some(Download {
            envelope: core::slice::from_raw_parts(env_start as *const u8, env_len),
            payload: core::slice::from_raw_parts(pay_start as *const u8, pay_len),
        })
    }
}

/// `anchor <hex>`: stores the release trust anchor.
pub fn anchor(hex: &str) -> ! {
    let mut key = [0u8; castellan_gate::TRUST_ANCHOR_LEN];
    if hex.len() != 2 * key.len() || unhex(hex, &mut key).is_none() {
        println!("[app] anchor: expected a SEC1 P-256 public key (130 hex digits)");
        power_off(EXIT_USAGE)
    }
    let r = code(Veneers.update_anchor(&key));
    if r == psa::SUCCESS {
        println!("[app] anchor: release trust anchor stored (write-once)");
        power_off(0)
    }
    println!("[app] anchor: refused: {}", psa::name(r));
    power_off(EXIT_REFUSED)
}

/// `ota <check|install|status|cancel> [now]`.
pub fn run(info: &BootInfo, sub: Option<&str>, now: Option<&str>) -> ! {
    let now = now.and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
    match sub {
        Some("check") => check(now),
        Some("install") => install(info, now),
        Some("status") => {
            print_status();
            power_off(0)
        }
        Some("cancel") => {
            let r = code(Veneers.update_cancel());
            println!("[app] ota: cancel: {}", psa::name(r));
            power_off(if r == psa::SUCCESS { 0 } else { EXIT_REFUSED })
        }
        _ => {
            println!("[app] usage: ota check|install|status|cancel");
            power_off(EXIT_USAGE)
        }
    }
}

fn print_status() {
    match Veneers.update_status() {
        Ok(s) => println!(
            "[app] ota: status: {}, trust anchor {}, pending sequence {}, installed sequence {}, {} of {} bytes",
            update_state::name(s.state),
            if s.anchor != 0 { "present" } else { "absent" },
            s.sequence,
            s.installed_sequence,
            s.received,
            s.image_size
        ),
        Err(e) => println!("[app] ota: status unavailable: {}", e.name()),
    }
}

fn envelope_or_stop() -> Download {
    match download() {
        Some(d) => d,
        None => {
            println!("[app] ota: no update in the download buffer");
            power_off(EXIT_USAGE)
        }
    }
}

/// Hands the envelope to the secure partition; stops the run when it is refused. Returns the
/// status and the offset where the download continues.
fn begin(d: &Download, now: u32) -> (castellan_gate::UpdateStatus, usize) {
    let resume = match Veneers.update_begin(d.envelope, now) {
        Ok(offset) => offset as usize,
        Err(e) => {
            println!("[app] ota: manifest refused: {}", e.name());
            power_off(EXIT_REFUSED)
        }
    };
    match Veneers.update_status() {
        Ok(s) => {
            println!(
                "[app] ota: manifest accepted: sequence {}, payload {} bytes",
                s.sequence, s.image_size
            );
            (s, resume)
        }
        Err(e) => {
            println!("[app] ota: status unavailable: {}", e.name());
            power_off(EXIT_REFUSED)
        }
    }
}

fn check(now: u32) -> ! {
    let d = envelope_or_stop();
    begin(&d, now);
    power_off(0)
}

fn install(info: &BootInfo, now: u32) -> ! {
    match info.upgrade {
        upgrade::REFUSED => {
            println!(
                "[app] ota: update REFUSED by the bootloader: {}",
                info.text()
            );
            println!("[app] ota: still running {}", V(info.version));
            power_off(EXIT_REFUSED)
        }
        upgrade::REVERTED => {
            println!(
                "[app] ota: update REVERTED: the trial was not accepted; running {} again",
                V(info.version)
            );
            power_off(EXIT_REFUSED)
        }
        _ => {}
    }
    if info.confirmed == 0 {
        trial(info)
    }
    let d = envelope_or_stop();
    let (s, resume) = begin(&d, now);
    if d.payload.len() != s.image_size as usize {
        println!(
            "[app] ota: the download holds {} bytes, the manifest names {}: the secure partition decides",
            d.payload.len(),
            s.image_size
        );
    }
    let total = d.payload.len();
    let mut offset = resume;
    if offset > 0 {
        println!("[app] ota: resuming at byte {offset}");
    }
    println!("[app] ota: writing {total} bytes through the update gate");
    let mut next_report = total / 10;
    while offset < total {
        let end = (offset + UPDATE_BLOCK_CAP).min(total);
        let block = d.payload.get(offset..end).unwrap_or(&[]);
        let r = code(Veneers.update_write(offset as u32, block));
        if r < 0 {
            println!(
                "[app] ota: payload refused at byte {offset}: {}",
                psa::name(r)
            );
            power_off(EXIT_REFUSED)
        }
        offset = end;
        if offset >= next_report && offset < total {
            println!("[app] ota: written {offset} of {total} bytes");
            next_report += total / 10;
        }
    }
    println!("[app] ota: written {total} of {total} bytes; finishing");
    let r = Veneers.update_finish().unwrap_or_else(|e| e.status());
    if r != psa::SUCCESS_REBOOT {
        println!("[app] ota: update refused: {}", psa::name(r));
        power_off(EXIT_REFUSED)
    }
    println!("[app] ota: installed for a trial run; rebooting");
    system_reset()
}

/// The trial boot: the self-test decides whether the new image is kept.
fn trial(info: &BootInfo) -> ! {
    println!("[app] ota: running {} on trial; self-test", V(info.version));
    if let Some(why) = self_test() {
        println!("[app] ota: self-test FAILED ({why}): not accepting; rebooting");
        system_reset()
    }
    let r = code(Veneers.fwu_accept());
    if r != psa::SUCCESS {
        println!("[app] ota: accept failed: {}", psa::name(r));
        power_off(EXIT_REFUSED)
    }
    print_status();
    println!(
        "[app] ota: update confirmed: running {} (self-test passed, image accepted)",
        V(info.version)
    );
    power_off(0)
}

/// What a real application would check before it keeps a new image: the secure services it
/// depends on answer (trusted storage, attestation, the update client).
fn self_test() -> Option<&'static str> {
    let mut b = [0u8; 4];
    if Veneers.its_get(crate::UID_BOOT_COUNT, &mut b).is_err() {
        return Some("trusted storage does not answer");
    }
    let mut token = [0u8; castellan_gate::TOKEN_CAP];
    if Veneers.attest_token(&[0x5a; 32], &mut token).is_err() {
        return Some("no attestation token");
    }
    if Veneers.update_status().is_err() {
        return Some("the update client does not answer");
    }
    None
}
