//! The network path: the LAN9118 driver under embassy-net (smoltcp), DHCP in QEMU's user
//! network, then TCP (command `net <port> <outside-port>`).
//!
//! ```text
//!  net task ── embassy-net Runner ── castellan_lan9118::Lan9118<Mmio @ 0x4200_0000>
//!  command task: DHCP lease → TCP 10.0.2.100:<port> (the host's forward, the only way out)
//!                           → TCP 10.0.2.2:<outside-port> (must fail: the network is confined)
//! ```
//!
//! The host side runs QEMU with `restrict=on` and a single `guestfwd` from
//! [`FLEET_ADDR`]`:<port>` to a listener on its loopback (the `network` scenario of
//! `cargo xtask qemu-test`); every other destination is dropped by QEMU.

use castellan_gate::client::power_off;
use castellan_gate::println;
use castellan_lan9118::{AN505_NS_BASE, Lan9118, Mmio};
use embassy_executor::Spawner;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::{Config, Ipv4Address, Runner, Stack, StackResources};
use embassy_time::{Duration, Instant, with_timeout};
use static_cell::StaticCell;

use crate::supervisor::{self, Op};
use crate::time;

/// The address QEMU's user network forwards to the host's listener (`guestfwd`).
pub const FLEET_ADDR: Ipv4Address = Ipv4Address::new(10, 0, 2, 100);
/// QEMU user network's gateway: the host itself, which `restrict=on` must keep out of reach.
pub const OUTSIDE_ADDR: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

type Device = Lan9118<Mmio>;

static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Brings the controller and the stack up and spawns the stack's task.
fn start(spawner: Spawner, seed: u64) -> Stack<'static> {
    if supervisor::call(Op::OpenEthernet, 0) != 1 {
        println!("[app] net: the Ethernet port stays closed to unprivileged code");
        power_off(1)
    }
    // Safety: the LAN9118's non-secure window, opened to this world by the secure partition
    // (SAU region, PPC port) and to unprivileged code by the supervisor; driven only here.
    let regs = unsafe { Mmio::new(AN505_NS_BASE) };
    let device = match Lan9118::new(regs, None, time::wake_next_tick) {
        Ok(d) => d,
        Err(e) => {
            println!("[app] net: {e}");
            power_off(1)
        }
    };
    let m = device.mac_address();
    println!(
        "[app] net: LAN9118 up, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let config = Config::dhcpv4(Default::default());
    let (stack, runner) =
        embassy_net::new(device, config, RESOURCES.init(StackResources::new()), seed);
    match net_task(runner) {
        Ok(t) => spawner.spawn(t),
        Err(_) => crate::spawn_failed("network"),
    }
    stack
}

/// `net <port> <outside-port>`: DHCP, a message exchange with the host through the forward,
/// and a connection attempt to the outside that must fail.
pub async fn run(spawner: Spawner, seed: u64, port: Option<&str>, outside: Option<&str>) -> ! {
    let (Some(port), Some(outside)) = (
        port.and_then(|p| p.parse::<u16>().ok()),
        outside.and_then(|p| p.parse::<u16>().ok()),
    ) else {
        println!("[app] usage: net <port> <outside-port>");
        power_off(2)
    };
    let stack = lease(spawner, seed).await;
    let ok = exchange(stack, port).await;
    let confined = try_outside(stack, outside).await;
    power_off(if ok && confined { 0 } else { 1 })
}

/// `tls <port>`: DHCP, then the TLS exchange of [`crate::tls`].
pub async fn tls(spawner: Spawner, seed: u64, port: Option<&str>) -> ! {
    let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) else {
        println!("[app] usage: tls <port>");
        power_off(2)
    };
    let stack = lease(spawner, seed).await;
    let ok = crate::tls::run(stack, port).await;
    power_off(if ok { 0 } else { 1 })
}

/// `mqtt <port> <device-id>`: DHCP, then onboarding and operation over MQTT ([`crate::mqtt`]).
pub async fn mqtt(
    spawner: Spawner,
    seed: u64,
    (port, id): (Option<&str>, Option<&str>),
    firmware: [u32; 3],
    custody: bool,
) -> ! {
    let (Some(port), Some(id)) = (port.and_then(|p| p.parse::<u16>().ok()), id) else {
        println!("[app] usage: mqtt <port> <device-id> [custody]");
        power_off(2)
    };
    let stack = lease(spawner, seed).await;
    let ok = crate::mqtt::run(stack, port, id, firmware).await;
    if custody {
        crate::custody::dump();
    }
    power_off(if ok { 0 } else { 1 })
}

/// Brings the stack up and waits for a DHCP lease.
async fn lease(spawner: Spawner, seed: u64) -> Stack<'static> {
    let t0 = Instant::now();
    let stack = start(spawner, seed);
    if with_timeout(Duration::from_secs(30), stack.wait_config_up())
        .await
        .is_err()
    {
        println!("[app] net: no DHCP lease within 30 s");
        power_off(1)
    }
    let Some(cfg) = stack.config_v4() else {
        println!("[app] net: no IPv4 configuration");
        power_off(1)
    };
    println!(
        "[app] net: DHCP lease {} (gateway {}) after {} ms",
        cfg.address,
        Gateway(cfg.gateway),
        t0.elapsed().as_millis()
    );
    stack
}

/// A lease's gateway for the console (`restrict=on` leases offer none).
struct Gateway(Option<Ipv4Address>);

impl core::fmt::Display for Gateway {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(g) => write!(f, "{g}"),
            None => f.write_str("none"),
        }
    }
}

/// Connects to the forward, sends a greeting, prints the host's answer.
async fn exchange(stack: Stack<'static>, port: u16) -> bool {
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 1024];
    let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
    s.set_timeout(Some(Duration::from_secs(10)));
    let t0 = Instant::now();
    if let Err(e) = s.connect((FLEET_ADDR, port)).await {
        println!("[app] net: connect to {FLEET_ADDR}:{port} failed: {e:?}");
        return false;
    }
    println!(
        "[app] net: connected to {FLEET_ADDR}:{port} in {} ms",
        t0.elapsed().as_millis()
    );
    let hello = b"hello from castellan an505\n";
    let mut sent = 0;
    while sent < hello.len() {
        match s.write(&hello[sent..]).await {
            Ok(n) if n > 0 => sent += n,
            r => {
                println!("[app] net: send failed: {r:?}");
                return false;
            }
        }
    }
    let mut line = [0u8; 128];
    let mut n = 0;
    while n < line.len() && !line[..n].contains(&b'\n') {
        match s.read(&mut line[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                println!("[app] net: receive failed: {e:?}");
                return false;
            }
        }
    }
    let text = core::str::from_utf8(&line[..n]).unwrap_or("(not UTF-8)");
    println!("[app] net: host answered: {}", text.trim_end());
    s.close();
    let _ = s.flush().await;
    true
}

/// Tries a destination outside the forward: it must not connect.
async fn try_outside(stack: Stack<'static>, port: u16) -> bool {
    let mut rx = [0u8; 256];
    let mut tx = [0u8; 256];
    let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
    s.set_timeout(Some(Duration::from_secs(5)));
    let r = with_timeout(Duration::from_secs(8), s.connect((OUTSIDE_ADDR, port))).await;
    let why = match r {
        Ok(Ok(())) => {
            println!("[app] net: CONFINEMENT BROKEN: connected to {OUTSIDE_ADDR}:{port}");
            s.abort();
            return false;
        }
        Ok(Err(ConnectError::ConnectionReset)) => "connection refused",
        Ok(Err(ConnectError::TimedOut)) | Err(_) => "timed out",
        Ok(Err(ConnectError::NoRoute)) => "no route",
        Ok(Err(ConnectError::InvalidState)) => "invalid socket state",
    };
    println!("[app] net: {OUTSIDE_ADDR}:{port} unreachable ({why})");
    true
}
