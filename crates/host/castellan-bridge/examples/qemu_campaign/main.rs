//! End to end: a real Castellan fleet service (in this process, SQLite in a temporary
//! directory) runs an update campaign that updates the QEMU device through the bridge.
//! `cargo xtask qemu-campaign` builds and signs the firmware, provisions the device files and
//! runs this example; the last line is `qemu-campaign: device <id> updated to <version>
//! (attested)`.
//!
//! ```text
//!  admin: release trust anchor (PUT /api/v1/release-key), release-manager operator
//!  bridge: factory registration (IAK + boot record from QEMU, anchor stored in the device's
//!          ITS), attested onboarding, then the update link (MQTT with the LDevID)
//!  release manager: POST /api/v1/releases (MCUboot image v2 + SUIT envelope signed with the
//!          release key made here), POST /api/v1/campaigns
//!  server ──offer──▶ bridge ──▶ QEMU: secure partition authenticates, installs, trial, accept
//!  server ──challenge──▶ token from the secure partition ──▶ server appraises: updated
//! ```
//!
//! The fleet keeps a TUF repository of its releases (`tuf.rs`): the factory stores its root with
//! the device's identity, and the bridge checks every offer against it (over MQTT) before the
//! device sees it. The release team lists each release for the class.
//!
//! With `--downgrade-image`, an older image (version 1.0.0 signed again with the current
//! security counter, which the server accepts) is offered twice: first unlisted in TUF, which
//! the bridge refuses before the device runs ("TUF: …"); then listed, which the device's secure
//! partition refuses (version downgrade). Each campaign records the device `failed` with the
//! reason, and the device still boots the new version. The first is the named attack
//! `attack_release_not_listed_by_tuf_refused_by_the_qemu_device` (its line in the output): the
//! device's download buffer must be untouched by it.
//!
//! Usage: `qemu_campaign --rom <castellan-rom ELF> --device <device dir> --image <signed v2>
//! --version <version> [--downgrade-image <signed older image>] [--serial an505-0001]
//! [--timeout-s 600]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use castellan_agent::identity::IdentityFiles;
use castellan_agent::{Endpoint, FleetApi};
use castellan_bridge::{
    DEVICE_CLASS, Logger, Qemu, QemuDevice, SessionConfig, onboard, register, stdout_logger,
};
use castellan_server::protocol::{CampaignJson, CampaignRequest, ReleaseJson};
use castellan_server::{Server, ServerConfig};
use castellan_suit::builder::{ImageSpec, ManifestBuilder, Signer};
use serde_json::{Value, json};

mod tuf;

struct Args {
    rom: PathBuf,
    device: PathBuf,
    image: PathBuf,
    version: String,
    downgrade: Option<PathBuf>,
    serial: String,
    timeout: Duration,
}

fn args() -> Result<Args, String> {
    let mut rom = None;
    let mut device = None;
    let mut image = None;
    let mut version = None;
    let mut downgrade = None;
    let mut serial = "an505-0001".to_string();
    let mut timeout = Duration::from_secs(600);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rom" => rom = Some(PathBuf::from(val()?)),
            "--device" => device = Some(PathBuf::from(val()?)),
            "--image" => image = Some(PathBuf::from(val()?)),
            "--version" => version = Some(val()?),
            "--downgrade-image" => downgrade = Some(PathBuf::from(val()?)),
            "--serial" => serial = val()?,
            "--timeout-s" => {
                timeout = Duration::from_secs(val()?.parse().map_err(|_| "--timeout-s: seconds")?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        rom: rom.ok_or("--rom is required")?,
        device: device.ok_or("--device is required")?,
        image: image.ok_or("--image is required")?,
        version: version.ok_or("--version is required")?,
        downgrade,
        serial,
        timeout,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("qemu-campaign: FAILED: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn step(msg: &str) {
    println!("qemu-campaign: {msg}");
}

async fn run() -> Result<String, String> {
    let a = args()?;
    let image = std::fs::read(&a.image).map_err(|e| format!("{}: {e}", a.image.display()))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;

    // The fleet service, in process.
    let mut config = ServerConfig::new(tmp.path().join("server"))
        .with_ephemeral_ports()
        .with_embedded_demo_pki();
    config.campaign_tick = Duration::from_millis(200);
    config.update_chunk_size = 16 * 1024;
    let tuf = tuf::Tuf::publish(&tmp.path().join("tuf"))?;
    config.tuf_repository = Some(tmp.path().join("tuf"));
    let server = Server::start(config)
        .await
        .map_err(|e| format!("the fleet service does not start: {e}"))?;
    let ca = std::fs::read_to_string(&server.paths().ca_bundle).map_err(|e| e.to_string())?;
    let admin_token = server
        .admin_token()
        .ok_or("the fleet service made no admin token")?
        .to_string();
    let admin = FleetApi::new(&server.api_url(), &admin_token, &ca).map_err(|e| e.to_string())?;
    step(&format!(
        "fleet service up: API {}, MQTT {} (SQLite in {})",
        server.api_url(),
        server.mqtt_addr(),
        tmp.path().display()
    ));

    // The release key (the server never holds it) and its trust anchor.
    let release_key = {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
        p256::ecdsa::SigningKey::from_slice(&seed).map_err(|e| e.to_string())?
    };
    let anchor = hex::encode(release_key.verifying_key().to_sec1_point(false).as_bytes());
    let _: Value = admin
        .put("/api/v1/release-key", &json!({ "public_key": anchor }))
        .await
        .map_err(|e| format!("setting the release trust anchor: {e}"))?;
    let rm: Value = admin
        .post(
            "/api/v1/operators",
            &json!({"name": "release-manager", "role": "release-manager"}),
        )
        .await
        .map_err(|e| format!("creating the release manager: {e}"))?;
    let rm_token = rm["token"].as_str().ok_or("no release-manager token")?;
    let rm = FleetApi::new(&server.api_url(), rm_token, &ca).map_err(|e| e.to_string())?;
    step("release trust anchor set; release-manager operator created");

    // The bridge: factory, onboarding, then the update link.
    let log: Logger = stdout_logger("  bridge: ");
    let device = QemuDevice::new(Qemu::new(&a.rom, &a.device));
    let state = a.device.join("bridge");
    let reg = register(&admin, &device, &state, &a.serial, DEVICE_CLASS, &log)
        .await
        .map_err(|e| format!("factory registration: {e}"))?;
    if !reg.trust_anchor_stored {
        return Err("the factory stored no release trust anchor".into());
    }
    if !reg.tuf_root_stored {
        return Err("the factory stored no TUF root".into());
    }
    step(&format!(
        "device {} registered at the factory (firmware {}, {} measurements)",
        reg.device_id,
        reg.firmware_version,
        reg.measurements.len()
    ));
    let mqtt = Endpoint {
        host: "127.0.0.1".into(),
        port: server.mqtt_addr().port(),
    };
    onboard(
        &mqtt,
        &IdentityFiles::of(&state),
        &device,
        Duration::from_secs(120),
        &log,
    )
    .await
    .map_err(|e| format!("onboarding: {e}"))?;
    step(&format!("device {} onboarded (attested)", reg.device_id));
    let stop = Arc::new(AtomicBool::new(false));
    let session_cfg = SessionConfig {
        mqtt: mqtt.clone(),
        state_dir: state.clone(),
        log: log.clone(),
        stop: stop.clone(),
    };
    let link_device = device.clone();
    let link = tokio::spawn(async move { castellan_bridge::run(&session_cfg, &link_device).await });

    // The release: the MCUboot image v2 and its SUIT envelope, signed with the release key.
    let (release, envelope) = release(&rm, &release_key, 1, &a.version, &image).await?;
    tuf.list(&release.release_id, &envelope)?;
    step(&format!(
        "release {} listed in TUF for the class",
        release.release_id
    ));
    let campaign = campaign(&rm, &release, a.timeout).await?;

    // Watch the campaign until the device is updated (or failed).
    let mut outcome = watch(&rm, &campaign.campaign_id, &reg.device_id, a.timeout).await;
    let mut refused = None;
    if let (Ok(state), Some(path)) = (&outcome, &a.downgrade)
        && state == "updated"
    {
        let older = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r = downgrade(
            &rm,
            &tuf,
            &release_key,
            &older,
            (&reg.device_id, &a.device),
            a.timeout,
        )
        .await;
        match r {
            Ok(reason) => refused = Some(reason),
            Err(e) => outcome = Err(e),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let report = tokio::time::timeout(Duration::from_secs(10), link).await;
    let device_json: Result<Value, _> = admin
        .get(&format!("/api/v1/devices/{}", reg.device_id))
        .await;
    server.shutdown().await;
    let state = outcome?;
    if let Ok(Ok(Ok(r))) = &report {
        step(&format!(
            "bridge reported: {} (evidence sent {} time(s))",
            r.statuses.join(", "),
            r.evidence_sent
        ));
    }
    if state != "updated" {
        return Err(format!("the device ended {state}"));
    }
    let dev = device_json.map_err(|e| format!("reading the device: {e}"))?;
    let fw = dev["firmware_version"].as_str().unwrap_or("?").to_string();
    step(&format!(
        "registry: {} runs {fw}, attestation {}",
        reg.device_id,
        dev["attestation"].as_str().unwrap_or("?")
    ));
    // The device itself, one more boot: the new image runs confirmed.
    let d = device.clone();
    let boot = tokio::task::spawn_blocking(move || d.boot())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("booting the updated device: {e}"))?;
    if !boot.confirmed || !boot.version.starts_with(&a.version) {
        return Err(format!(
            "the device boots {} ({}), expected {} confirmed",
            boot.version,
            if boot.confirmed {
                "confirmed"
            } else {
                "on trial"
            },
            a.version
        ));
    }
    step(&format!("the device boots {} (confirmed)", boot.version));
    if let Some(reason) = refused {
        step(&format!(
            "the older release was refused by the device ({reason}); it still runs {}",
            boot.version
        ));
    }
    Ok(format!(
        "qemu-campaign: device {} updated to {} (attested)",
        reg.device_id, a.version
    ))
}

/// Uploads release `sequence` of `image` (envelope signed with `key`) as the release manager;
/// the release and its envelope.
async fn release(
    rm: &FleetApi,
    key: &p256::ecdsa::SigningKey,
    sequence: u64,
    version: &str,
    image: &[u8],
) -> Result<(ReleaseJson, Vec<u8>), String> {
    let vendor = castellan_suit::ids::vendor_id(castellan_suit::ids::DEFAULT_VENDOR);
    let class = castellan_suit::ids::class_id(&vendor, DEVICE_CLASS);
    let digest: [u8; 32] = castellan_image::HashAlg::Sha256
        .digest(image)
        .as_bytes()
        .try_into()
        .map_err(|_| "SHA-256 is not 32 bytes")?;
    let spec = ImageSpec::with_digest(&[b"castellan", b"app"], digest, image.len() as u64)
        .uri(&format!("castellan:release/{DEVICE_CLASS}/{sequence}"));
    let envelope = ManifestBuilder::new(sequence, &vendor, &class)
        .image(spec)
        .description(&format!("Castellan QEMU firmware {version}"))
        .build(&Signer::Es256(key))
        .map_err(|e| format!("building the envelope: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let release: ReleaseJson = rm
        .post(
            "/api/v1/releases",
            &json!({
                "device_class": DEVICE_CLASS,
                "version": version,
                "image": b64.encode(image),
                "manifest": b64.encode(&envelope),
                "notes": "QEMU end-to-end campaign",
            }),
        )
        .await
        .map_err(|e| format!("creating release {sequence}: {e}"))?;
    step(&format!(
        "release {} created: {} bytes, measurement {} {}",
        release.release_id,
        release.image_size,
        release.measurement.mtype,
        release.measurement.version
    ));
    Ok((release, envelope))
}

/// Starts a campaign for `release` over the whole class.
async fn campaign(
    rm: &FleetApi,
    release: &ReleaseJson,
    timeout: Duration,
) -> Result<CampaignJson, String> {
    let mut req = CampaignRequest::new(&release.release_id, DEVICE_CLASS);
    req.device_timeout_s = timeout.as_secs();
    let campaign: CampaignJson = rm
        .post("/api/v1/campaigns", &req)
        .await
        .map_err(|e| format!("creating the campaign: {e}"))?;
    step(&format!(
        "campaign {} created ({})",
        campaign.campaign_id, campaign.state
    ));
    Ok(campaign)
}

/// Offers the older image (sequence 2): unlisted in TUF, the bridge must refuse it; listed,
/// the device must refuse it as a downgrade. Returns the device's reason as the campaign
/// recorded it.
async fn downgrade(
    rm: &FleetApi,
    tuf: &tuf::Tuf,
    key: &p256::ecdsa::SigningKey,
    older: &[u8],
    (device, device_dir): (&str, &Path),
    timeout: Duration,
) -> Result<String, String> {
    let (release, envelope) = release(rm, key, 2, "1.0.0", older).await?;
    attack_release_not_listed_by_tuf_refused_by_the_qemu_device(
        rm,
        &release,
        (device, device_dir),
        timeout,
    )
    .await?;
    tuf.list(&release.release_id, &envelope)?;
    step(&format!(
        "release {} listed in TUF for the class",
        release.release_id
    ));
    let (state, reason) = failed_with(rm, &release, device, timeout).await?;
    if state != "failed" || !reason.contains("downgrade") {
        return Err(format!(
            "the older release ended {state} ({reason}); the device should have refused it as a downgrade"
        ));
    }
    Ok(reason)
}

/// A release signed with the release key (the device's secure partition would authenticate
/// it) but not listed in TUF for the class: the campaign must record the device `failed` with
/// the bridge's TUF refusal, and the device must not have seen a byte of it (its download
/// buffer, which every QEMU run of an update command rewrites, is untouched).
async fn attack_release_not_listed_by_tuf_refused_by_the_qemu_device(
    rm: &FleetApi,
    release: &ReleaseJson,
    (device, device_dir): (&str, &Path),
    timeout: Duration,
) -> Result<(), String> {
    let buffer = device_dir.join("download.bin");
    let before = std::fs::read(&buffer).ok();
    let (state, reason) = failed_with(rm, release, device, timeout).await?;
    if state != "failed" || !reason.contains("TUF: ") {
        return Err(format!(
            "the release unlisted in TUF ended {state} ({reason}); the bridge should have refused it"
        ));
    }
    if std::fs::read(&buffer).ok() != before {
        return Err(format!(
            "the unlisted release reached the device ({} was rewritten)",
            buffer.display()
        ));
    }
    step(&format!(
        "attack_release_not_listed_by_tuf_refused_by_the_qemu_device: refused before the \
         device saw it ({reason})"
    ));
    Ok(())
}

/// Runs a campaign of `release` and returns the device's final state and reason.
async fn failed_with(
    rm: &FleetApi,
    release: &ReleaseJson,
    device: &str,
    timeout: Duration,
) -> Result<(String, String), String> {
    let c = campaign(rm, release, timeout).await?;
    let state = watch(rm, &c.campaign_id, device, timeout).await?;
    let c: CampaignJson = rm
        .get(&format!("/api/v1/campaigns/{}", c.campaign_id))
        .await
        .map_err(|e| format!("reading the campaign: {e}"))?;
    let reason = c
        .devices
        .iter()
        .find(|d| d.device_id == device)
        .and_then(|d| d.reason.clone())
        .unwrap_or_default();
    Ok((state, reason))
}

/// Polls the campaign, printing the device's state changes, until it is updated or failed.
async fn watch(
    rm: &FleetApi,
    campaign: &str,
    device: &str,
    timeout: Duration,
) -> Result<String, String> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let c: CampaignJson = rm
            .get(&format!("/api/v1/campaigns/{campaign}"))
            .await
            .map_err(|e| format!("reading the campaign: {e}"))?;
        let d = c.devices.iter().find(|d| d.device_id == device);
        let state = d
            .map(|d| d.state.clone())
            .unwrap_or("not in the cohort".into());
        if state != last {
            let reason = d
                .and_then(|d| d.reason.clone())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            step(&format!(
                "campaign {}: device {device} {state}{reason} [{:.1} s]",
                c.state,
                started.elapsed().as_secs_f64()
            ));
            last = state.clone();
        }
        if state == "updated" || state == "failed" {
            return Ok(state);
        }
        if matches!(c.state.as_str(), "aborted" | "completed") {
            return Ok(state);
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "the device is still {state} after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
