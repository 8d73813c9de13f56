//! The QEMU device speaks for itself: its own TCP/IP, TLS 1.3 and MQTT 5 to a real Castellan
//! fleet service (in this process, SQLite in a temporary directory), with an IDevID whose key
//! stays in its secure partition. `cargo xtask qemu-test --only mqtt` builds and signs the
//! firmware, provisions a fresh device directory and runs this example; the last line is
//! `qemu-mqtt: device <id> onboarded over its own TLS and MQTT, telemetry accepted under its LDevID`.
//!
//! ```text
//!  factory (this process)                    QEMU device                      fleet service
//!    `attest <nonce>` run ───────────────▶ IAK + boot record (verified token)
//!    `tls-csr <serial>` run ─────────────▶ CSR for the TLS key, signed in the secure partition
//!    POST /api/v1/factory/devices {serial, csr, iak, measurements} ────────────────▶ IDevID
//!    `tls-provision` run: the CA the server's chain leads to + the IDevID ─▶ trusted storage
//!  `mqtt 4244 <serial>` run, QEMU -nic user,restrict=on,guestfwd=10.0.2.100:4244 → broker:
//!    TLS 1.3 (client certificate = IDevID) ─ MQTT CONNECT ─ SUBSCRIBE dev/<id>/down/onboard/#
//!    PUBLISH dev/<id>/up/onboard/hello {} ─────────────────────────────────────────▶ challenge
//!    ◀─ dev/<id>/down/onboard/challenge {"nonce"}
//!    PUBLISH dev/<id>/up/onboard/evidence {token, csr} (castellan-fleet-client, gate) ─▶ appraisal
//!    ◀─ dev/<id>/down/onboard/result {accepted, ldevid_pem} → LDevID in trusted storage
//!    PUBLISH dev/<id>/telemetry under the IDevID: refused
//!    new TLS session with the LDevID (key 0x720 in the secure partition) ─ CONNECT
//!    SUBSCRIBE dev/<id>/cmd/#, down/update/#, down/lifecycle/#; PUBLISH status, telemetry
//!    GET /api/v1/devices/<id>/telemetry: what the device sent, stored ─ registry: LDevID, seen
//!    custody: the device prints its non-secure RAM; no 32-byte window is either private key
//!    (`custody`: window·G against the public keys, a planted control found)
//! ```
//!
//! The example checks what the device printed with the fleet protocol's own types: the topics
//! parse as `castellan_protocol::Topic` of the right kind, the nonce as a `Challenge`'s.
//!
//! Usage: `qemu_mqtt --rom <castellan-rom ELF> --device <device dir> [--serial an505-mqtt-0001]`.

mod custody;

use std::path::PathBuf;
use std::time::Duration;

use castellan_agent::FleetApi;
use castellan_bridge::protocol::{Challenge, FactoryRequest, FactoryResponse, OnboardKind, Topic};
use castellan_bridge::{DEVICE_CLASS, Qemu, QemuDevice, RunOutput};
use castellan_server::{Server, ServerConfig};
use castellan_x509::{ParsedCertificate, parse_certificate, pem_to_der, verify_signed_by};

/// The guest-side port of the forward to the broker.
const GUEST_PORT: u16 = 4244;
/// The name the device checks in the server's certificate.
const SERVER_NAME: &str = "fleet.castellan";

fn step(msg: &str) {
    println!("qemu-mqtt: {msg}");
}

fn args() -> Result<(PathBuf, PathBuf, String), String> {
    let (mut rom, mut device, mut serial) = (None, None, "an505-mqtt-0001".to_string());
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rom" => rom = Some(PathBuf::from(val()?)),
            "--device" => device = Some(PathBuf::from(val()?)),
            "--serial" => serial = val()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok((
        rom.ok_or("--rom is required")?,
        device.ok_or("--device is required")?,
        serial,
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("qemu-mqtt: FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Every certificate of a PEM bundle, DER.
fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(end) = rest.find(END) {
        let block = &rest[..end + END.len()];
        out.push(pem_to_der("CERTIFICATE", block).map_err(|e| e.to_string())?);
        rest = &rest[end + END.len()..];
    }
    Ok(out)
}

fn parse(der: &[u8]) -> Result<ParsedCertificate, String> {
    parse_certificate(der).map_err(|e| format!("certificate: {e}"))
}

/// The CA of `bundle` that the last certificate of the server's chain is signed by: the
/// device's anchor (embedded-tls verifies the chain the server sends down from it).
fn anchor_for(server_chain: &[Vec<u8>], bundle: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let last = parse(
        server_chain
            .last()
            .ok_or("the server sends no certificate")?,
    )?;
    for ca in bundle {
        if verify_signed_by(&last, &parse(ca)?).is_ok() {
            return Ok(ca.clone());
        }
    }
    Err("no CA of the bundle signs the server's chain".into())
}

/// The telemetry the fleet stored for `serial` that equals what the device printed it sent
/// (the service records it asynchronously: a few tries).
async fn stored_telemetry(
    admin: &FleetApi,
    serial: &str,
    sent: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    for _ in 0..50 {
        let rows: Vec<serde_json::Value> = admin
            .get(&format!("/api/v1/devices/{serial}/telemetry"))
            .await
            .map_err(|e| format!("telemetry: {e}"))?;
        if let Some(row) = rows.iter().find(|r| &r["payload"] == sent) {
            return Ok(row["payload"].clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the fleet stored no telemetry {sent} for {serial}"))
}

fn hex_after(out: &RunOutput, prefix: &str) -> Option<Vec<u8>> {
    hex::decode(out.after(prefix)?.trim()).ok()
}

fn run_checked(q: &Qemu, command: &str, download: Option<&[u8]>) -> Result<RunOutput, String> {
    let out = q
        .run(command, download, &mut |l| {
            if l.starts_with("[app] mqtt:") || l.starts_with("[app] tls:") {
                println!("  device: {l}");
            }
        })
        .map_err(|e| format!("`{command}`: {e}"))?;
    if out.status != Some(0) {
        return Err(format!(
            "`{command}` ended with {:?}:\n{}",
            out.status,
            out.tail(12)
        ));
    }
    Ok(out)
}

async fn run() -> Result<String, String> {
    let (rom, dir, serial) = args()?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = ServerConfig::new(tmp.path().join("server"))
        .with_ephemeral_ports()
        .with_embedded_demo_pki();
    config.server_names.push(SERVER_NAME.into());
    let server = Server::start(config)
        .await
        .map_err(|e| format!("the fleet service does not start: {e}"))?;
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).map_err(|e| e.to_string())?;
    let token = server.admin_token().ok_or("no admin token")?.to_string();
    let admin = FleetApi::new(&server.api_url(), &token, &ca).map_err(|e| e.to_string())?;
    step(&format!(
        "fleet service up: API {}, MQTT {}",
        server.api_url(),
        server.mqtt_addr()
    ));

    // The factory: identity and measurements, a CSR signed in the secure partition, the IDevID.
    let qemu = Qemu::new(&rom, &dir);
    let device = QemuDevice::new(qemu.clone());
    let d = device.clone();
    let id = tokio::task::spawn_blocking(move || d.identity())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the device: {e}"))?;
    let measurements = castellan_bridge::factory::reference_measurements(&id);
    let q = qemu.clone();
    let cmd = format!("tls-csr {serial}");
    let out = tokio::task::spawn_blocking(move || run_checked(&q, &cmd, None))
        .await
        .map_err(|e| e.to_string())??;
    let csr = hex_after(&out, "[app] tls: CSR ").ok_or("the device printed no CSR")?;
    let request = FactoryRequest {
        serial: serial.clone(),
        device_class: DEVICE_CLASS.to_string(),
        csr: hex::encode(&csr),
        iak_public_key: hex::encode(id.iak_public_key),
        firmware_version: measurements.last().map(|m| m.version.clone()),
        reference_measurements: measurements,
        tags: Vec::new(),
    };
    let answer: FactoryResponse = admin
        .post("/api/v1/factory/devices", &request)
        .await
        .map_err(|e| format!("factory registration: {e}"))?;
    let idevid = pem_to_der("CERTIFICATE", &answer.idevid_pem).map_err(|e| e.to_string())?;
    step(&format!(
        "device {} registered: IDevID ({} bytes) for the key in its secure partition",
        answer.device_id,
        idevid.len()
    ));

    // The trust anchor: the CA of the server's bundle the server's chain leads to.
    let chain = std::fs::read_to_string(&server.paths().server_cert).map_err(|e| e.to_string())?;
    let anchor = anchor_for(&pem_certs(&chain)?, &pem_certs(&answer.mqtt_ca_pem)?)?;
    let mut blob = b"CTLS".to_vec();
    for der in [&anchor, &idevid] {
        blob.extend_from_slice(
            &u32::try_from(der.len())
                .map_err(|e| e.to_string())?
                .to_le_bytes(),
        );
        blob.extend_from_slice(der);
    }
    let q = qemu.clone();
    tokio::task::spawn_blocking(move || run_checked(&q, "tls-provision", Some(&blob)))
        .await
        .map_err(|e| e.to_string())??;
    step("CA and IDevID provisioned in the device's trusted storage");

    // The device on the network: the only way out is the forward to the broker. The forward is
    // one QEMU character device connected to the broker; `reconnect=1` (`,,` escapes the comma
    // in `-nic`) opens a new connection a second after the broker closed the previous one, so
    // the device's second session (with its LDevID) gets a connection of its own.
    let mut q = qemu.clone();
    q.extra_args = vec![
        "-nic".into(),
        format!(
            "user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:{GUEST_PORT}-tcp:127.0.0.1:{},,reconnect=1",
            server.mqtt_addr().port()
        ),
    ];
    q.timeout = Duration::from_secs(240);
    let cmd = format!("mqtt {GUEST_PORT} {serial} custody");
    let out = tokio::task::spawn_blocking(move || run_checked(&q, &cmd, None))
        .await
        .map_err(|e| e.to_string())??;

    // What the device did, checked with the protocol's types.
    let hello = out
        .after("[app] mqtt: onboarding request published on ")
        .ok_or("the device published no onboarding request")?;
    match Topic::parse(hello.trim()).map_err(|e| format!("{hello}: {e}"))? {
        Topic::Onboard {
            id,
            kind: OnboardKind::Hello,
        } if id == serial => {}
        other => return Err(format!("the onboarding request went to {other:?}")),
    }
    let line = out
        .after("[app] mqtt: challenge from the fleet on ")
        .ok_or("the device received no challenge")?;
    let (topic, nonce) = line
        .split_once(": nonce ")
        .ok_or("malformed challenge line")?;
    match Topic::parse(topic).map_err(|e| format!("{topic}: {e}"))? {
        Topic::Onboard {
            id,
            kind: OnboardKind::Challenge,
        } if id == serial => {}
        other => return Err(format!("the challenge came on {other:?}")),
    }
    let nonce = Challenge {
        nonce: nonce.trim().to_string(),
    }
    .nonce_bytes()
    .map_err(|e| e.to_string())?;
    let ldevid = out
        .after("[app] mqtt: onboarded: LDevID (")
        .ok_or("the device was not onboarded")?;
    if !out.contains("[app] mqtt: telemetry with the IDevID refused") {
        return Err("the broker did not refuse telemetry under the IDevID".into());
    }
    step(&format!(
        "challenge nonce of {} bytes answered; LDevID ({} stored; telemetry under the IDevID refused",
        nonce.len(),
        ldevid.split(')').next().unwrap_or("?")
    ));

    // The second session: the LDevID, operational topics, telemetry the fleet stored.
    if !out.contains(&format!(
        "[app] mqtt: connected to the broker as {serial} (MQTT 5, LDevID)"
    )) {
        return Err("the device did not reconnect with its LDevID".into());
    }
    let sent = out
        .after("[app] mqtt: telemetry with the LDevID accepted by the broker: ")
        .ok_or("the device's telemetry under the LDevID was not accepted")?;
    let sent: serde_json::Value =
        serde_json::from_str(sent.trim()).map_err(|e| format!("device telemetry: {e}"))?;
    let stored = stored_telemetry(&admin, &serial, &sent).await?;
    let dev: serde_json::Value = admin
        .get(&format!("/api/v1/devices/{serial}"))
        .await
        .map_err(|e| format!("device record: {e}"))?;
    if dev["ldevid_serial"].is_null() || dev["last_seen"].is_null() {
        return Err(format!(
            "the registry does not show the device onboarded and seen: {dev}"
        ));
    }
    step(&format!(
        "reconnected with the LDevID (serial {}); telemetry stored by the fleet: {stored}",
        dev["ldevid_serial"]
    ));

    // attack_private_key_in_non_secure_ram: neither private key is anywhere in the non-secure
    // RAM the sessions used.
    let dump = custody::parse(&out)?;
    let idevid_key = &dump.keys[0].1;
    if !idevid
        .windows(idevid_key.len())
        .any(|w| w == idevid_key.as_slice())
    {
        return Err("the key 0x710 the device printed is not its IDevID's".into());
    }
    let verdict = tokio::task::spawn_blocking(move || custody::check(&dump))
        .await
        .map_err(|e| e.to_string())??;
    step(&format!(
        "key custody: {} bytes of non-secure RAM, {} windows in both byte orders: neither private key (0x710, 0x720) there; a planted control key found",
        verdict.bytes, verdict.windows
    ));
    server.shutdown().await;
    Ok(format!(
        "qemu-mqtt: device {serial} onboarded over its own TLS and MQTT, telemetry accepted under its LDevID"
    ))
}
