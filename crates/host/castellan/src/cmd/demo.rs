//! `castellan demo`: Castellan's main job on embedded defaults, end to end, with nothing to set
//! up. It signs firmware and shows a tampered image refused, then brings up the fleet service in
//! process (SQLite, built-in broker, free ports), provisions simulated devices at the factory,
//! lets them boot, onboard with an attestation token and send telemetry, shows the fleet as the
//! operator API sees it, shows a device with replaced firmware and a device reaching for another
//! device's topic refused, rolls a signed release out in a campaign (canary, then every device,
//! each attesting the new measurement), lets a broken release pause its own campaign, contains
//! a staged run-time compromise and heals it by a signed reboot-and-reattest, decommissions a
//! device with proof of erasure, shows the audit log's reasons, and says where to look next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use castellan_agent::{
    AgentConfig, AgentError, Backoff, Endpoint, FirmwareKit, FleetApi, KeyChoice, ProvisionRequest,
    build_device,
};
use castellan_image::{
    KeyType, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, sign_image, verify,
};
use castellan_server::{Server, ServerConfig, ServerHandle};
use clap::Args;
use serde_json::Value;

use super::write_file;

/// Arguments of `castellan demo`.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Directory for the demo's keys, images, devices and fleet-service state (its `server/`
    /// and `devices/` are recreated at each run).
    #[arg(long, default_value = ".castellan/demo")]
    dir: PathBuf,
    /// How many simulated devices to provision and onboard.
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u32).range(1..=50))]
    devices: u32,
    /// Telemetry messages each device sends.
    #[arg(long, default_value = "3")]
    messages: u64,
    /// Only the image-signing steps (no fleet service).
    #[arg(long)]
    images_only: bool,
    /// Exit when the steps are done, even in a terminal (by default a terminal run keeps the
    /// fleet service running with a one-time console login until Ctrl-C).
    #[arg(long)]
    no_wait: bool,
}

pub(crate) fn say(step: usize, text: &str) {
    println!("\n[{step}] {text}");
}

/// Run the demo.
pub(crate) fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create the demo directory {}", a.dir.display()))?;
    println!(
        "Castellan demo: the chain of trust, step by step (files in {})",
        a.dir.display()
    );
    let images = images(&a.dir)?;
    if a.images_only {
        where_next_images(&images);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(fleet(&a, &images))?;
    Ok(ExitCode::SUCCESS)
}

/// What the image steps left behind.
struct Images {
    key_path: PathBuf,
    image_path: PathBuf,
    tampered_path: PathBuf,
}

/// Steps 1–5: sign firmware, verify it, refuse a tampered image and a foreign key.
fn images(dir: &Path) -> anyhow::Result<Images> {
    say(
        1,
        "A device maker generates its firmware signing key (Ed25519, PKCS#8 PEM).",
    );
    let key = SigningKey::generate(KeyType::Ed25519);
    let key_path = dir.join("signing-key.pem");
    write_file(&key_path, key.to_pkcs8_pem()?.as_bytes())?;
    let spki = key.public_spki_der();
    println!(
        "    key: {}  signer id: {}",
        key_path.display(),
        hex::encode(castellan_image::signer_id(&spki))
    );

    say(
        2,
        "It signs firmware 1.0.0 as an MCUboot image with security counter 1, confirmed, for a 128 KiB slot.",
    );
    let firmware: Vec<u8> = (0..24_000u32).map(|i| (i % 251) as u8).collect();
    let opts = SignOptions {
        version: Version::new(1, 0, 0, 0),
        header_size: 0x200,
        pad_header: true,
        slot_size: 0x20000,
        security_counter: Some(1),
        confirm: true,
        public_key_format: PublicKeyFormat::Hash,
        ..SignOptions::default()
    };
    let image = sign_image(&firmware, &key, &opts)?;
    let image_path = dir.join("firmware-1.0.0.bin");
    write_file(&image_path, &image)?;
    println!(
        "    image: {} ({} bytes, padded to the slot)",
        image_path.display(),
        image.len()
    );

    say(
        3,
        "The device verifies it before running it: hash, key, signature.",
    );
    let v = verify(&mut image.as_slice(), TrustedKey::Spki(&spki))?;
    println!(
        "    accepted: version {}, {} signature, security counter {:?}, digest {}",
        v.version(),
        v.key_type,
        v.security_counter,
        hex::encode(v.digest.as_bytes())
    );

    say(
        4,
        "An attacker flips one byte of the payload; the device refuses the image and says why.",
    );
    let mut tampered = image.clone();
    if let Some(b) = tampered.get_mut(0x200 + 1000) {
        *b ^= 0x01;
    }
    let tampered_path = dir.join("firmware-tampered.bin");
    write_file(&tampered_path, &tampered)?;
    match verify(&mut tampered.as_slice(), TrustedKey::Spki(&spki)) {
        Ok(_) => bail!("the tampered image was accepted: this is a bug"),
        Err(e) => println!("    refused: {e}"),
    }

    say(5, "An image signed with another key is refused too.");
    let rogue = SigningKey::generate(KeyType::Ed25519);
    let rogue_image = sign_image(&firmware, &rogue, &opts)?;
    match verify(&mut rogue_image.as_slice(), TrustedKey::Spki(&spki)) {
        Ok(_) => bail!("an image from another key was accepted: this is a bug"),
        Err(e) => println!("    refused: {e}"),
    }
    Ok(Images {
        key_path,
        image_path,
        tampered_path,
    })
}

fn where_next_images(i: &Images) {
    println!("\nWhere to look next:");
    println!("  castellan image info {}", i.image_path.display());
    println!(
        "  castellan image verify -k {} {}",
        i.key_path.display(),
        i.tampered_path.display()
    );
    println!(
        "  imgtool verify -k {} {}   (MCUboot's own tool agrees)",
        i.key_path.display(),
        i.image_path.display()
    );
}

/// Log lines of one simulated device, indented under the step.
fn device_log(serial: &str) -> castellan_agent::Logger {
    let serial = serial.to_string();
    std::sync::Arc::new(move |line: &str| println!("    {serial} | {line}"))
}

/// Removes a directory the demo recreates (only the demo's own subdirectories).
fn fresh(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    Ok(())
}

/// Steps 6 on: the fleet.
async fn fleet(a: &DemoArgs, images: &Images) -> anyhow::Result<()> {
    let state = a.dir.join("server");
    let devices_dir = a.dir.join("devices");
    fresh(&state)?;
    fresh(&devices_dir)?;

    say(
        6,
        "The fleet service starts on embedded defaults: the embedded demo PKI (root, manufacturer, operational and service CAs; the root key sits beside them in a demo only), \
         SQLite registry, HTTPS API and a mutual-TLS MQTT broker.",
    );
    let mut config = ServerConfig::new(&state)
        .with_ephemeral_ports()
        .with_embedded_demo_pki();
    // The response loop in seconds: probation and the analysis window that ends it.
    config.analysis_window = Duration::from_secs(2);
    config.heal_probation = Duration::from_secs(2);
    let server = Server::start(config)
        .await
        .context("the fleet service does not start")?;
    let paths = server.paths().clone();
    println!("    state:     {}", paths.state_dir.display());
    println!("    registry:  {}", paths.database);
    println!("    API:       {}", server.api_url());
    println!("    MQTT:      mqtts://{}", server.mqtt_addr());
    println!(
        "    admin token written to {}",
        paths.admin_token_file.display()
    );
    let token = std::fs::read_to_string(&paths.admin_token_file)
        .with_context(|| format!("cannot read {}", paths.admin_token_file.display()))?;
    let ca = std::fs::read_to_string(&paths.ca_bundle)
        .with_context(|| format!("cannot read {}", paths.ca_bundle.display()))?;
    let api = FleetApi::new(&server.api_url(), &token, &ca)?;
    let rm = super::demo_update::release_manager(&a.dir, &api, &server.api_url(), &ca).await?;
    let result = fleet_steps(a, &server, &api, &rm, &devices_dir).await;
    if result.is_ok() && super::demo_console::should_wait(a.no_wait) {
        super::demo_console::serve_until_ctrl_c(&server).await?;
    }
    server.shutdown().await;
    let serials = result?;

    println!("\nThe fleet service has stopped. Where to look next:");
    println!(
        "  castellan serve --embedded-demo-pki --state-dir {}   the same fleet, as a service (token in {})",
        paths.state_dir.display(),
        paths.admin_token_file.display()
    );
    if let Some(first) = serials.first() {
        println!(
            "  castellan agent --device-dir {} --mqtt 127.0.0.1:8883   run a device against it",
            devices_dir.join(first).display()
        );
    }
    println!(
        "  castellan factory provision --new --device-dir DIR --serial CSTL-0100 --token-file {}",
        paths.admin_token_file.display()
    );
    println!(
        "  castellan audit verify --state-dir {}   check the hash-chained audit log",
        paths.state_dir.display()
    );
    println!(
        "  openssl verify -CAfile {} {}",
        paths.ca_bundle.display(),
        devices_dir
            .join(serials.first().map(String::as_str).unwrap_or("CSTL-0001"))
            .join("identity/idevid.pem")
            .display()
    );
    println!(
        "  castellan image verify -k {} {}",
        images.key_path.display(),
        images.tampered_path.display()
    );
    println!(
        "  castellan release create --key {} --image IMG --token-file TOKEN   sign and upload a release",
        a.dir.join("release-key.pem").display()
    );
    println!(
        "  castellan campaign create --release sensor-v1-1 --waves 25%,100% --watch   roll it out"
    );
    println!(
        "  docs/updates.md for updates, docs/fleet-protocol.md for the protocol, docs/README.md for the design"
    );
    Ok(())
}

async fn fleet_steps(
    a: &DemoArgs,
    server: &ServerHandle,
    api: &FleetApi,
    rm: &super::demo_update::ReleaseManager,
    devices_dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let n = a.devices;
    say(
        7,
        &format!(
            "The factory builds {} simulated devices (root key in OTP, fuses locked, signed \
             bootloader and application), has each generate its identity key inside its crypto \
             service, and registers it: IDevID from the manufacturer CA, reference measurements \
             in the registry.",
            n + 1
        ),
    );
    let kit = FirmwareKit::load_or_create(&a.dir.join("factory-kit"), Version::new(1, 0, 0, 0))?;
    let serials: Vec<String> = (1..=n).map(|i| format!("CSTL-{i:04}")).collect();
    let intruder = format!("CSTL-{:04}", n + 1);
    for serial in serials.iter().chain(std::iter::once(&intruder)) {
        let dir = devices_dir.join(serial);
        build_device(&dir, &kit)?;
        let req = ProvisionRequest {
            serial: serial.clone(),
            device_class: "sensor-v1".into(),
            keys: KeyChoice::CryptoService,
        };
        let done = castellan_agent::provision_sim_device(api, &dir, &req).await?;
        let app = done.measurements.last();
        println!(
            "    {serial}: identity key {}…, IDevID stored; APP {} digest {}…",
            hex::encode(&done.identity_public_key[1..9]),
            app.map(|m| m.version.as_str()).unwrap_or("?"),
            app.map(|m| &m.digest[..16]).unwrap_or("?"),
        );
    }

    say(
        8,
        "Each device boots, connects with its IDevID, answers the server's nonce with an \
         attestation token and a CSR for a new operational key, gets its LDevID, then sends \
         telemetry over mutual TLS. (The TLS keys never leave the crypto service.)",
    );
    let endpoint = Endpoint::parse(&server.mqtt_addr().to_string())?;
    let mut agents = tokio::task::JoinSet::new();
    for serial in &serials {
        let mut cfg = AgentConfig::new(
            devices_dir.join(serial),
            endpoint.clone(),
            device_log(serial),
        );
        cfg.interval = Duration::from_secs(1);
        cfg.count = Some(a.messages.max(1));
        cfg.backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        cfg.max_failures = Some(5);
        agents.spawn(castellan_agent::run(cfg));
    }
    while let Some(r) = agents.join_next().await {
        let report = r.context("an agent task failed")??;
        if !report.onboarded_now {
            bail!("{} did not onboard", report.device_id);
        }
    }
    server.flush_audit().await;

    say(9, "The fleet as the operator API shows it.");
    let devices: Vec<Value> = api.get("/api/v1/devices").await?;
    println!(
        "    {:<10} {:<10} {:<9} {:<11} {:<9} {:>6} {:>5} {:>5}",
        "device", "class", "lifecycle", "attestation", "firmware", "temp", "boots", "msgs"
    );
    for d in &devices {
        let id = d["id"].as_str().unwrap_or("?");
        let rows: Vec<Value> = api
            .get(&format!("/api/v1/devices/{id}/telemetry?limit=1"))
            .await?;
        let t = rows.first().map(|r| &r["payload"]);
        let field = |k: &str| {
            t.and_then(|t| t.get(k))
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "    {:<10} {:<10} {:<9} {:<11} {:<9} {:>6} {:>5} {:>5}",
            id,
            d["device_class"].as_str().unwrap_or("?"),
            d["lifecycle_name"].as_str().unwrap_or("?"),
            d["attestation"].as_str().unwrap_or("?"),
            d["firmware_version"].as_str().unwrap_or("-"),
            field("temperature_c"),
            field("boot_count"),
            field("messages_sent"),
        );
    }

    say(
        10,
        &format!(
            "An attacker replaces {intruder}'s application with another validly signed build. \
             It boots (the signature is good), but the fleet refuses to onboard it."
        ),
    );
    let intruder_dir = devices_dir.join(&intruder);
    castellan_agent::device::replace_app(&intruder_dir, &kit.other_app(b"implant")?)?;
    let mut cfg = AgentConfig::new(&intruder_dir, endpoint.clone(), device_log(&intruder));
    cfg.count = Some(1);
    cfg.max_failures = Some(3);
    match castellan_agent::run(cfg).await {
        Err(AgentError::OnboardingRefused { reason, .. }) => println!("    refused: {reason}"),
        Err(e) => bail!("{intruder}: expected a refusal, got: {e}"),
        Ok(_) => bail!("{intruder} was onboarded with replaced firmware: this is a bug"),
    }

    let victim = serials.get(1).unwrap_or(&serials[0]).clone();
    say(
        11,
        &format!(
            "{} tries to publish on {victim}'s telemetry topic: the broker refuses and closes \
             its connection.",
            serials[0]
        ),
    );
    let (mut conn, world) =
        castellan_agent::connect_operational(&devices_dir.join(&serials[0]), &endpoint).await?;
    let forged = castellan_agent::mqtt::Message::qos1(
        format!("dev/{victim}/telemetry"),
        r#"{"temperature_c": 99.9}"#,
    );
    match conn.publish(&forged).await {
        Err(e) => println!("    refused: {e}"),
        Ok(()) => println!("    the publish was dropped by the broker (not delivered)"),
    }
    conn.disconnect().await;
    world.shut_down()?;
    server.flush_audit().await;

    super::demo_update::campaign_steps(12, rm, api, &kit, &serials, devices_dir, &endpoint).await?;
    server.flush_audit().await;

    let ca = std::fs::read_to_string(&server.paths().ca_bundle)?;
    super::demo_respond::steps(
        15,
        api,
        &server.api_url(),
        &ca,
        &serials,
        devices_dir,
        &endpoint,
    )
    .await?;
    server.flush_audit().await;

    say(17, "Every decision is in the hash-chained audit log.");
    let audit: Vec<Value> = api.get("/api/v1/audit?limit=1000").await?;
    let refusals: Vec<&Value> = audit
        .iter()
        .filter(|e| e["decision"] == "refused")
        .collect();
    for e in &refusals {
        println!(
            "    #{} {} {} {} refused: {}",
            e["seq"],
            e["actor"].as_str().unwrap_or("?"),
            e["action"].as_str().unwrap_or("?"),
            e["target"].as_str().unwrap_or("?"),
            e["reason"].as_str().unwrap_or("?")
        );
    }
    let verdict: Value = api.get("/api/v1/audit/verify").await?;
    println!(
        "    {} entries; chain verification: {}",
        audit.len(),
        if verdict["intact"] == true {
            "intact".to_string()
        } else {
            verdict.to_string()
        }
    );
    Ok(serials)
}
