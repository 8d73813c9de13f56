//! The `tls` QEMU scenario: TLS 1.3 with a client certificate from the device's own TCP/IP
//! stack to a server on the host's loopback, the client's key in the secure partition.
//!
//! 1. `tls-key`: the device generates its TLS key in the secure partition and prints the
//!    public key.
//! 2. The host makes a throwaway CA with `openssl`, a server certificate for `fleet.castellan`,
//!    and a client certificate for the device's public key (`x509 -new -force_pubkey`: the
//!    private key is never seen by the host).
//! 3. `tls-provision` (the factory step): the CA and the client certificate go into the
//!    device's trusted storage through the gate, the CA write-once.
//! 4. `openssl s_server -tls1_3 -Verify 1 -verify_return_error -rev` listens on 127.0.0.1
//!    (it refuses a client without a certificate chaining to the CA); QEMU runs with
//!    `restrict=on` and one `guestfwd` to it; the device reads the CA and its certificate from
//!    trusted storage, handshakes (random numbers from the secure partition), sends a line,
//!    and prints the server's answer (the line reversed).
//!
//! Refusals: a certificate for another key (the server refuses), a second provisioning with
//! another CA (the device refuses: `attack_rogue_ca_provisioned`), and a server whose chain
//! leads to another CA, that CA left in the download buffer as bait (the device refuses:
//! `attack_server_of_another_ca`).

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::qemu::{Ctx, check, figure_after, qemu_with, write};
use crate::steps::Result;

/// Where the runner leaves the certificates (the application's download buffer).
const DOWNLOAD_ADDR: u32 = 0x2830_0000;
/// The guest-side port of the forward.
const GUEST_PORT: u16 = 4243;
/// What the device sends.
const LINE: &str = "hello over tls from castellan an505";
/// DER prefix of a P-256 SubjectPublicKeyInfo (the uncompressed point follows).
const SPKI_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

fn openssl(dir: &Path, args: &[&str]) -> Result {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A CA (`<ca>.key`, `<ca>.pem`, `<ca>.der`) and a server certificate for `fleet.castellan`
/// it issues (`<ca>-server.key`, `<ca>-server.pem`).
fn ca_and_server(dir: &Path, ca: &str) -> Result {
    let o = |args: &[&str]| openssl(dir, args);
    let f = |suffix: &str| format!("{ca}{suffix}");
    o(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &f(".key"),
    ])?;
    o(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &f(".key"),
        "-subj",
        &format!("/CN=castellan {ca}"),
        "-days",
        "1",
        "-out",
        &f(".pem"),
    ])?;
    o(&[
        "x509",
        "-in",
        &f(".pem"),
        "-outform",
        "DER",
        "-out",
        &f(".der"),
    ])?;
    o(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &f("-server.key"),
    ])?;
    o(&[
        "req",
        "-new",
        "-key",
        &f("-server.key"),
        "-subj",
        "/CN=fleet.castellan",
        "-out",
        &f("-server.csr"),
    ])?;
    write(
        &dir.join("server.ext"),
        b"subjectAltName=DNS:fleet.castellan\nbasicConstraints=CA:FALSE\n",
    )?;
    o(&[
        "x509",
        "-req",
        "-in",
        &f("-server.csr"),
        "-CA",
        &f(".pem"),
        "-CAkey",
        &f(".key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        &f("-server.pem"),
    ])?;
    Ok(())
}

/// The test CA with its server certificate, another CA (an attacker's) with one too, and a
/// client certificate for `public` (uncompressed P-256 point) from the test CA.
fn pki(dir: &Path, public: &[u8]) -> Result {
    let o = |args: &[&str]| openssl(dir, args);
    ca_and_server(dir, "ca")?;
    ca_and_server(dir, "rogue")?;
    let mut spki = crate::qemu::unhex(SPKI_P256)?;
    spki.extend_from_slice(public);
    write(&dir.join("device.der"), &spki)?;
    o(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        "device.der",
        "-out",
        "device.pub",
    ])?;
    o(&[
        "x509",
        "-new",
        "-force_pubkey",
        "device.pub",
        "-subj",
        "/CN=castellan device",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-days",
        "1",
        "-outform",
        "DER",
        "-out",
        "client.der",
    ])?;
    Ok(())
}

pub(crate) fn tls(c: &Ctx) -> Result {
    let dir = c.device("tls", &c.bootloader, &c.v1)?;
    let none = ["-nic".to_string(), "none".to_string()];
    let run = qemu_with(&c.built.rom, &dir, Some("tls-key"), &[], false, &none)?;
    check(&run, 0, &["[app] tls: client public key "], &[])?;
    let public = crate::qemu::unhex(
        crate::qemu::hex_after(&run.output, "[app] tls: client public key ")
            .ok_or("no public key printed")?,
    )?;
    if public.len() != 65 {
        return Err(format!("public key of {} bytes", public.len()));
    }
    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir).map_err(|e| e.to_string())?;
    pki(&pki_dir, &public)?;
    // A certificate for a key the device does not hold: the server must refuse the session
    // (the CertificateVerify made in the secure partition does not match it).
    let o = |args: &[&str]| openssl(&pki_dir, args);
    o(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        "other.key",
    ])?;
    o(&["pkey", "-in", "other.key", "-pubout", "-out", "other.pub"])?;
    o(&[
        "x509",
        "-new",
        "-force_pubkey",
        "other.pub",
        "-subj",
        "/CN=castellan device",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-days",
        "1",
        "-outform",
        "DER",
        "-out",
        "other.der",
    ])?;
    // Provisioning (the factory step): the CA and a client certificate into trusted storage.
    provision(c, &dir, &pki_dir, "ca.der", "other.der", 0)?;
    let (run, _) = handshake(c, &dir, &pki_dir, "ca", None, false)?;
    // TLS 1.3: the client finishes its side of the handshake before the server has checked
    // its CertificateVerify, so the refusal reaches the device as an alert on the first read.
    check(&run, 1, &["[app] net: DHCP lease"], &["server answered"])
        .map_err(|e| format!("with another key's certificate: {e}"))?;
    let refusal = run.output.lines().find(|l| l.contains("failed"));
    eprintln!(
        "        another key's certificate: {}",
        refusal.unwrap_or("?")
    );
    // attack_rogue_ca_provisioned: a second provisioning with another CA is refused.
    let run = provision(c, &dir, &pki_dir, "rogue.der", "client.der", 1)?;
    for l in run
        .output
        .lines()
        .filter(|l| l.contains("provisioning refused"))
    {
        eprintln!("        another CA: {l}");
    }
    provision(c, &dir, &pki_dir, "ca.der", "client.der", 0)?;
    // attack_server_of_another_ca: a server whose chain leads to another CA is refused, even
    // with that CA left in the download buffer (the device reads its CA from trusted storage).
    let (run, _) = handshake(c, &dir, &pki_dir, "rogue", Some("rogue.der"), false)?;
    check(
        &run,
        1,
        &["[app] net: DHCP lease", "[app] tls: handshake failed"],
        &["handshake done", "server answered"],
    )
    .map_err(|e| format!("with a server of another CA: {e}"))?;
    let refusal = run.output.lines().find(|l| l.contains("failed"));
    eprintln!("        server of another CA: {}", refusal.unwrap_or("?"));
    let (run, server_out) = handshake(c, &dir, &pki_dir, "ca", None, false)?;

    let reversed: String = LINE.chars().rev().collect();
    let answered = format!("[app] tls: server answered: {reversed}");
    check(
        &run,
        0,
        &[
            "[app] net: DHCP lease 10.0.2.15/24",
            "[app] tls: TLS 1.3 handshake done",
            &answered,
        ],
        &["handshake failed"],
    )
    .map_err(|e| format!("{e}\n      s_server said: {server_out}"))?;
    for l in run.output.lines().filter(|l| l.starts_with("[app] tls:")) {
        eprintln!("        {l}");
    }
    // The same handshake under `-icount shift=0`: one instruction per nanosecond of QEMU's
    // virtual clock, so the board counter (25 MHz) counts 40 instructions a tick.
    let (run, _) = handshake(c, &dir, &pki_dir, "ca", None, true)?;
    check(&run, 0, &["[app] tls: TLS 1.3 handshake done"], &[])?;
    let total = figure_after(&run.output, "; board counter ");
    let sign = figure_after(&run.output, "ticks, of which ");
    for l in run.output.lines().filter(|l| l.contains("handshake done")) {
        eprintln!("        (-icount) {l}");
    }
    if let (Some(total), Some(sign)) = (total, sign) {
        eprintln!(
            "        under -icount shift=0: handshake {} instructions (waits for the server \
             included), of which the secure partition's signature {}",
            total * 40,
            sign * 40
        );
    }
    Ok(())
}

/// `tls-provision` with `ca` and `client` (DER files of `pki_dir`) in the download buffer;
/// checks the exit status (0: provisioned, 1: refused).
fn provision(
    c: &Ctx,
    dir: &Path,
    pki_dir: &Path,
    ca: &str,
    client: &str,
    status: i32,
) -> Result<crate::qemu::Run> {
    let mut blob = b"CTLS".to_vec();
    for f in [ca, client] {
        let der = read(&pki_dir.join(f))?;
        blob.extend_from_slice(&(der.len() as u32).to_le_bytes());
        blob.extend_from_slice(&der);
    }
    let blob_file = dir.join("tls-download.bin");
    write(&blob_file, &blob)?;
    let none = ["-nic".to_string(), "none".to_string()];
    let run = qemu_with(
        &c.built.rom,
        dir,
        Some("tls-provision"),
        &[(blob_file, DOWNLOAD_ADDR)],
        false,
        &none,
    )?;
    let expected = if status == 0 {
        "[app] tls: provisioned in trusted storage"
    } else {
        "[app] tls: provisioning refused"
    };
    check(&run, status, &[expected], &[])
        .map_err(|e| format!("provisioning {ca} and {client}: {e}"))?;
    Ok(run)
}

/// One handshake with a fresh `s_server` whose certificate is `<server_ca>-server.pem` (and
/// which requires client certificates from the test CA), QEMU with the forward; `bait`, a DER
/// file of `pki_dir`, is left in the download buffer as a CA the device must not use. Returns
/// the run and what the server printed.
fn handshake(
    c: &Ctx,
    dir: &Path,
    pki_dir: &Path,
    server_ca: &str,
    bait: Option<&str>,
    icount: bool,
) -> Result<(crate::qemu::Run, String)> {
    let mut blobs = Vec::new();
    if let Some(bait) = bait {
        let mut blob = b"CTLS".to_vec();
        for f in [bait, "client.der"] {
            let der = read(&pki_dir.join(f))?;
            blob.extend_from_slice(&(der.len() as u32).to_le_bytes());
            blob.extend_from_slice(&der);
        }
        let blob_file = dir.join("tls-bait.bin");
        write(&blob_file, &blob)?;
        blobs.push((blob_file, DOWNLOAD_ADDR));
    }
    let server_cert = format!("{server_ca}-server.pem");
    let server_key = format!("{server_ca}-server.key");

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let accept = format!("127.0.0.1:{port}");
    let mut server = Command::new("openssl")
        .current_dir(pki_dir)
        .args([
            "s_server",
            "-accept",
            &accept,
            "-cert",
            &server_cert,
            "-key",
            &server_key,
        ])
        .args([
            "-CAfile",
            "ca.pem",
            "-Verify",
            "1",
            "-verify_return_error",
            "-tls1_3",
        ])
        .args(["-naccept", "1", "-rev"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start openssl s_server: {e}"))?;
    // s_server prints ACCEPT once it listens; everything it prints is kept for the report.
    let stdout = server.stdout.take().ok_or("no s_server stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) if l.contains("ACCEPT") => break,
            _ if Instant::now() > deadline => {
                let _ = server.kill();
                let _ = server.wait();
                return Err("openssl s_server did not listen".into());
            }
            _ => {}
        }
    }
    let net = [
        "-nic".to_string(),
        format!(
            "user,model=lan9118,restrict=on,\
             guestfwd=tcp:10.0.2.100:{GUEST_PORT}-tcp:127.0.0.1:{port}"
        ),
    ];
    let command = format!("tls {GUEST_PORT}");
    let result = qemu_with(&c.built.rom, dir, Some(&command), &blobs, icount, &net);
    let _ = server.kill();
    let _ = server.wait();
    let server_out = reader.join().unwrap_or_default();
    Ok((result?, server_out))
}
