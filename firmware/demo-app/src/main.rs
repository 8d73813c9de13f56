//! The demo application: the non-secure world. It runs unprivileged and reaches the secure
//! services only through the call gate (`castellan_gate::client`). At each boot it prints its
//! telemetry, then carries out the operator's command for the run (the host command line,
//! handed over by the secure side like a console line):
//!
//! | command | what it does |
//! |---|---|
//! | `boot` | telemetry only |
//! | `attest <hex nonce>` | prints the attestation public key and a token over the nonce |
//! | `update accept` / `update reject` | streams the downloaded image through the firmware-update gate, reboots into its trial, then accepts it (and reboots once more) or rejects it by rebooting without accepting; stops when the update is settled (applied, reverted or refused) |
//! | `update stage` | only streams and stages the downloaded image, then powers off |
//! | `net <port> <outside-port>` | DHCP, a TCP exchange with the host through QEMU's forward, a connection to the outside that must fail (see [`net`]) |
//! | `tls-key` | the TLS client key, generated in the secure partition on first use: prints its public key (see [`tls`]) |
//! | `tls-csr <serial>` | a PKCS#10 request with CN `serial` for the TLS key, signed in the secure partition, printed in hex (`castellan_fleet_client::build_csr`) |
//! | `tls-provision` | stores the CA and client certificates from the download buffer in trusted storage, the CA write-once (see [`trust`]) |
//! | `tls <port>` | DHCP, then TLS 1.3 with the client certificate to the host through QEMU's forward, the server checked against the provisioned CA, one line each way (see [`tls`]) |
//! | `mqtt <port> <device-id> [custody]` | DHCP, TLS 1.3 with the provisioned IDevID, MQTT 5 to the fleet's broker: attested onboarding (challenge, evidence from the secure partition, the LDevID into trusted storage), a publication outside the IDevID's topics that must be refused, then a new session with the LDevID: operational subscriptions, status and telemetry accepted (see [`mqtt`]); with `custody` after them, the evidence of [`custody`] |
//! | `detect healthy\|scan\|flood` | application events and signed detection reports, with an attack staged at run time (see [`detect`]) |
//! | `poke-secure` | reads secure RAM directly: must fault (SecureFault, reported by the secure side) |
//! | `gate-pointers` | hands the gate pointers into secure memory: must be refused |
//! | `ns-semihost` | tries a semihosting call (host file access) itself: must fault |
//! | `anchor <hex>` | provisions the release trust anchor (see [`ota`]) |
//! | `ota check\|install\|status\|cancel` | over-the-air update through the secure partition's SUIT client (see [`ota`]) |
//!
//! The application runs on embassy's thread-mode executor with a SysTick time driver
//! ([`time`]); the privileged steps that needs (tick, critical sections) go through the
//! non-secure world's small supervisor ([`supervisor`]). Tasks: telemetry, then the command.
#![no_std]
#![no_main]

mod custody;
mod detect;
mod mqtt;
mod net;
mod ota;
mod supervisor;
mod time;
mod tls;
mod trust;
mod update;

use castellan_gate::client::{Veneers, power_off};
use castellan_gate::{BootInfo, GateError, SecureGate as _, println, psa, upgrade};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use embassy_executor::{Executor, Spawner};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer};
use static_cell::StaticCell;

static EXECUTOR: StaticCell<Executor> = StaticCell::new();
/// The boot's record, handed from the telemetry task to the command task.
static BOOTED: Signal<CriticalSectionRawMutex, BootInfo> = Signal::new();

#[entry]
fn main() -> ! {
    println!("[app] Castellan demo application (non-secure world, unprivileged)");
    time::start();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(|spawner| {
        spawner.spawn(telemetry_task().unwrap_or_else(|_| spawn_failed("telemetry")));
        spawner.spawn(command_task(spawner).unwrap_or_else(|_| spawn_failed("command")));
    })
}

/// `N` random bytes from the secure partition's random source (gate `GenerateRandom`). The
/// application has no entropy of its own: without the secure partition's it stops (exit 1)
/// rather than run the network or TLS on predictable numbers.
pub(crate) fn random<const N: usize>(what: &str) -> [u8; N] {
    let mut b = [0u8; N];
    if let Err(e) = Veneers.generate_random(&mut b) {
        println!(
            "[app] no random bytes from the secure partition for the {what}: {}",
            e.name()
        );
        power_off(1)
    }
    b
}

/// SHA-256 as the TLS stack links it (the fleet client hashes with it: one implementation in
/// the image).
pub(crate) fn sha256(m: &[u8]) -> [u8; 32] {
    use sha2_tls::Digest as _;
    sha2_tls::Sha256::digest(m).into()
}

/// The network stack's seed (TCP initial sequence numbers, ephemeral ports, DHCP transaction
/// ids), from the secure partition's random source.
fn seed() -> u64 {
    u64::from_le_bytes(random("network stack's seed"))
}

pub(crate) fn spawn_failed(task: &str) -> ! {
    println!("[app] runtime: cannot spawn the {task} task");
    power_off(1)
}

/// Telemetry of the boot: the secure side's boot record and the boot count in trusted storage.
#[embassy_executor::task]
async fn telemetry_task() {
    let info = match Veneers.boot_info() {
        Ok(i) => i,
        Err(e) => {
            println!("[app] boot info unavailable: {}", e.name());
            power_off(1)
        }
    };
    telemetry(&info);
    boot_count();
    BOOTED.signal(info);
}

/// The operator's command for this run (the host command line, handed over by the secure side
/// like a console line), once telemetry is out.
#[embassy_executor::task]
async fn command_task(spawner: Spawner) {
    let info = BOOTED.wait().await;
    let t0 = Instant::now();
    Timer::after(Duration::from_millis(10)).await;
    println!(
        "[app] runtime: embassy executor, SysTick {} Hz; a 10 ms timer took {} ticks",
        time::TICK_HZ,
        t0.elapsed().as_ticks()
    );
    let mut buf = [0u8; 200];
    let n = Veneers.command(&mut buf).unwrap_or(0);
    let line = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("");
    let mut words = line.split_ascii_whitespace();
    match words.next().unwrap_or("boot") {
        "boot" => power_off(0),
        "attest" => attest(words.next().unwrap_or("")),
        "update" => match words.next() {
            Some("accept") => update::run(&info, update::Mode::Accept),
            Some("reject") => update::run(&info, update::Mode::Reject),
            Some("stage") => update::run(&info, update::Mode::StageOnly),
            _ => {
                println!("[app] usage: update accept|reject|stage");
                power_off(2)
            }
        },
        "anchor" => ota::anchor(words.next().unwrap_or("")),
        "ota" => {
            let sub = words.next();
            ota::run(&info, sub, words.next())
        }
        "net" => {
            let port = words.next();
            net::run(spawner, seed(), port, words.next()).await
        }
        "mqtt" => {
            let port = words.next();
            let [major, minor, rev, _] = info.version;
            let id = words.next();
            let custody = words.next() == Some("custody");
            net::mqtt(spawner, seed(), (port, id), [major, minor, rev], custody).await
        }
        "tls-key" => tls::key(),
        "tls-provision" => tls::provision(),
        "tls-csr" => tls::csr(words.next().unwrap_or("")),
        "tls" => {
            let port = words.next();
            net::tls(spawner, seed(), port).await
        }
        "detect" => detect::run(words.next().unwrap_or("healthy")),
        "poke-secure" => poke_secure(),
        "gate-pointers" => gate_pointers(),
        "ns-semihost" => ns_semihost(),
        other => {
            println!("[app] unknown command \"{other}\"");
            power_off(2)
        }
    }
}

struct V([u32; 4]);

impl core::fmt::Display for V {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}+{d}")
    }
}

fn telemetry(info: &BootInfo) {
    println!(
        "[app] telemetry: image {} ({}), security counter {}, OTP counter {}, lifecycle {:#06x}, bootloader {}",
        V(info.version),
        if info.confirmed != 0 {
            "confirmed"
        } else {
            "on trial"
        },
        info.security_counter,
        info.counter,
        info.lifecycle,
        V(info.bootloader_version)
    );
    print_hex("[app] telemetry: measurement sha-256 ", &info.digest);
    println!(
        "[app] telemetry: last upgrade: {}",
        upgrade::name(info.upgrade)
    );
    if !info.text().is_empty() {
        println!("[app] telemetry: bootloader says: {}", info.text());
    }
}

/// The PSA status of a gate call's result.
pub(crate) fn code<T>(r: Result<T, GateError>) -> i32 {
    r.map_or_else(GateError::status, |_| psa::SUCCESS)
}

/// Trusted-storage asset holding the number of boots the application has seen.
pub(crate) const UID_BOOT_COUNT: u32 = 1;

/// The boot count in trusted storage (0 when unreadable).
pub(crate) fn boot_count_stored() -> u32 {
    let mut b = [0u8; 4];
    match Veneers.its_get(UID_BOOT_COUNT, &mut b) {
        Ok(4) => u32::from_le_bytes(b),
        _ => 0,
    }
}

/// Counts this boot in trusted storage (sealed by the secure side, persistent across resets,
/// updates and QEMU restarts).
fn boot_count() {
    let mut b = [0u8; 4];
    let count = match Veneers.its_get(UID_BOOT_COUNT, &mut b) {
        Ok(4) => u32::from_le_bytes(b),
        Ok(_) => 0,
        Err(e) if e.status() == psa::ERROR_DOES_NOT_EXIST => 0,
        Err(e) => {
            println!("[app] telemetry: trusted storage unavailable: {}", e.name());
            return;
        }
    }
    .saturating_add(1);
    let r = code(Veneers.its_set(UID_BOOT_COUNT, &count.to_le_bytes()));
    println!(
        "[app] telemetry: boot count {count} (trusted storage: {})",
        psa::name(r)
    );
}

/// Prints `prefix` then `bytes` in hex on one line.
pub fn print_hex(prefix: &str, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let _ = Veneers.console_write(prefix.as_bytes());
    let mut line = [0u8; 128];
    for chunk in bytes.chunks(64) {
        let mut n = 0;
        for b in chunk {
            if let Some(d) = line.get_mut(n..n + 2) {
                d[0] = HEX[usize::from(b >> 4)];
                d[1] = HEX[usize::from(b & 15)];
            }
            n += 2;
        }
        let _ = Veneers.console_write(line.get(..n).unwrap_or(&[]));
    }
    let _ = Veneers.console_write(b"\n");
}

pub(crate) fn unhex(s: &str, out: &mut [u8]) -> Option<usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) || b.len() / 2 > out.len() {
        return None;
    }
    let v = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (o, p) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (v(p[0])? << 4) | v(p[1])?;
    }
    Some(b.len() / 2)
}

fn attest(nonce_hex: &str) -> ! {
    let mut nonce = [0u8; 64];
    let Some(n) = unhex(nonce_hex, &mut nonce) else {
        println!("[app] attest: the nonce must be 32, 48 or 64 bytes of hex");
        power_off(2)
    };
    let mut key = [0u8; 65];
    match Veneers.attest_public_key(&mut key) {
        Ok(k) => print_hex(
            "[app] attestation public key: ",
            key.get(..k).unwrap_or(&[]),
        ),
        Err(e) => println!("[app] attestation key unavailable: {}", e.name()),
    }
    let mut token = [0u8; castellan_gate::TOKEN_CAP];
    match Veneers.attest_token(nonce.get(..n).unwrap_or(&[]), &mut token) {
        Ok(len) => {
            println!("[app] attestation token: {len} bytes");
            print_hex("[app] attestation token: ", token.get(..len).unwrap_or(&[]));
            power_off(0)
        }
        Err(e) => {
            println!("[app] attestation refused: {}", e.name());
            power_off(1)
        }
    }
}

fn poke_secure() -> ! {
    println!("[app] reading secure RAM at 0x38000000 from the non-secure world");
    // Safety: a plain load of a valid address; the hardware must turn it into a SecureFault
    // (that is what this probe shows).
    let v = unsafe { core::ptr::read_volatile(0x3800_0000 as *const u32) };
    println!("[app] ISOLATION BROKEN: read {v:#010x} from secure RAM");
    power_off(1)
}

fn gate_pointers() -> ! {
    let cases: [(&str, u32, u32); 4] = [
        ("secure RAM 0x38000000", 0x3800_0000, 16),
        ("secure code 0x10000000 (ROM)", 0x1000_0000, 16),
        (
            "a range running off non-secure RAM into unmapped space",
            0x283f_fff0,
            64,
        ),
        (
            "a range wrapping around the address space",
            0xffff_fff0,
            0x20,
        ),
    ];
    let mut refused = 0;
    for (what, addr, len) in cases {
        let r = Veneers::console_write_at(addr, len);
        println!("[app] gate given {what}: {}", psa::name(r));
        if r == psa::ERROR_PROGRAMMER_ERROR {
            refused += 1;
        }
    }
    let mut out = [0u8; 8];
    let r = Veneers.attest_public_key(&mut out);
    println!(
        "[app] gate given a too-small output buffer: {}",
        r.err().map_or("accepted", GateError::name)
    );
    let ok = code(Veneers.console_write(b"[app] gate given a valid buffer: printed\n"));
    println!(
        "[app] gate pointer checks: {refused} of {} refused, valid buffer {}",
        cases.len(),
        psa::name(ok)
    );
    power_off(if refused == cases.len() && ok == psa::SUCCESS {
        0
    } else {
        1
    })
}

fn ns_semihost() -> ! {
    println!("[app] trying semihosting (SYS_OPEN castellan-otp.bin) from the non-secure world");
    let name = b"castellan-otp.bin\0";
    let block = [name.as_ptr() as usize, 1usize, name.len() - 1];
    let r: isize;
    // Safety: a semihosting call with a valid parameter block; from unprivileged non-secure
    // code it must not reach the host (that is what this probe shows).
    unsafe {
        core::arch::asm!("bkpt #0xab", inout("r0") 1usize => r, in("r1") block.as_ptr(), options(nostack));
    }
    println!("[app] ISOLATION BROKEN: semihosting from the non-secure world returned {r}");
    power_off(1)
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    println!("[app] HardFault in the non-secure world");
    power_off(4)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("[app] panic: {info}");
    power_off(5)
}
