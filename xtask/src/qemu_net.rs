//! The `network` QEMU scenario: the non-secure application's own TCP/IP stack (embassy-net over
//! the LAN9118 driver) gets a DHCP lease from QEMU's user network, exchanges a message with a
//! listener the test opens on 127.0.0.1, and fails to reach anything else.
//!
//! QEMU runs with `-nic user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:PORT-tcp:
//! 127.0.0.1:HOSTPORT`: `restrict=on` cuts the guest off from the host and the outside (QEMU
//! answers DHCP itself), and the one `guestfwd` is the only way out. The device also tries
//! 10.0.2.2 (the user network's gateway, which without `restrict` is the host's loopback) on the
//! port of a second listener the test opens: the device must report it unreachable, and that
//! listener must never see a connection.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::firmware;
use crate::qemu::{Ctx, check, qemu_with};
use crate::steps::Result;

/// The guest-side port of the forward.
const GUEST_PORT: u16 = 4242;
/// Longest the host waits for the device's greeting.
const WAIT: Duration = Duration::from_secs(120);

/// Answers the first connection: reads the device's line, replies with `welcome`, returns the
/// line.
fn serve(listener: TcpListener, welcome: String) -> Result<String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    let stream: TcpStream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("QEMU never connected the forward".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading the device's greeting: {e}"))?;
    (&stream)
        .write_all(format!("{welcome}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(line)
}

pub(crate) fn network(c: &Ctx) -> Result {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let host_port = listener.local_addr().map_err(|e| e.to_string())?.port();
    // Stands for "the outside": reachable from an unrestricted guest as 10.0.2.2:<port>.
    let outside = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let outside_port = outside.local_addr().map_err(|e| e.to_string())?.port();
    outside.set_nonblocking(true).map_err(|e| e.to_string())?;
    let nonce: String = firmware::random32()?[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let welcome = format!("welcome device, nonce {nonce}");
    let (tx, rx) = mpsc::channel();
    let w = welcome.clone();
    std::thread::spawn(move || {
        let _ = tx.send(serve(listener, w));
    });
    let dir = c.device("network", &c.bootloader, &c.v1)?;
    let net = [
        "-nic".to_string(),
        format!(
            "user,model=lan9118,restrict=on,\
             guestfwd=tcp:10.0.2.100:{GUEST_PORT}-tcp:127.0.0.1:{host_port}"
        ),
    ];
    let command = format!("net {GUEST_PORT} {outside_port}");
    let run = qemu_with(&c.built.rom, &dir, Some(&command), &[], false, &net)?;
    let answered = format!("[app] net: host answered: {welcome}");
    let refused = format!("[app] net: 10.0.2.2:{outside_port} unreachable (");
    check(
        &run,
        0,
        &[
            "[app] runtime: embassy executor",
            "[app] net: LAN9118 up, MAC ",
            "[app] net: DHCP lease 10.0.2.15/24",
            &format!("[app] net: connected to 10.0.2.100:{GUEST_PORT}"),
            &answered,
            &refused,
        ],
        &["CONFINEMENT BROKEN", "ISOLATION BROKEN"],
    )?;
    let greeting = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the host listener did not finish".to_string())??;
    if greeting.trim_end() != "hello from castellan an505" {
        return Err(format!("unexpected greeting {greeting:?}"));
    }
    match outside.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => return Err(format!("the outside listener was reached from {peer}")),
        Err(e) => return Err(e.to_string()),
    }
    for l in run.output.lines().filter(|l| l.starts_with("[app] net:")) {
        eprintln!("        {l}");
    }
    Ok(())
}
