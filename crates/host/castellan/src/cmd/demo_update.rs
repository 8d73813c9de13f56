//! The update part of `castellan demo`: the release manager's key becomes the fleet's release
//! trust anchor before the factory runs, then a good release is rolled out in a campaign
//! (canary, then the rest; each device downloads, installs, reboots, confirms and attests the
//! new measurement), and a bad release pauses its own campaign when the canary reverts.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::{AgentConfig, Backoff, Endpoint, FirmwareKit, FleetApi};
use castellan_image::Version;
use castellan_pki::FileKey;
use castellan_release::ReleaseKey;
use castellan_server::protocol::update::{CampaignJson, CampaignRequest, ReleaseKeyRequest};
use serde_json::{Value, json};

use super::campaign::progress_line;
use super::release::{NewRelease, upload_release};

/// The release manager: their API client and their key.
pub(crate) struct ReleaseManager {
    pub(crate) api: FleetApi,
    pub(crate) key: ReleaseKey,
}

/// Creates the release manager (an operator with the release-manager role), generates the
/// release key in `dir` and registers its public key as the fleet's release trust anchor.
pub(crate) async fn release_manager(
    dir: &Path,
    admin: &FleetApi,
    api_url: &str,
    ca_pem: &str,
) -> anyhow::Result<ReleaseManager> {
    let mut key = FileKey::generate();
    let key_path = dir.join("release-key.pem");
    // Each demo run starts a new fleet with a new trust anchor: an earlier run's key in the
    // demo's own directory is replaced, not reused (saving refuses to overwrite a key file).
    match std::fs::remove_file(&key_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot replace {}", key_path.display()));
        }
        _ => {}
    }
    key.save(&key_path)
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    let _: Value = admin
        .put(
            "/api/v1/release-key",
            &ReleaseKeyRequest {
                public_key: castellan_release::trust_anchor_hex(&key),
            },
        )
        .await?;
    let op: Value = admin
        .post(
            "/api/v1/operators",
            &json!({"name": "release-manager", "role": "release-manager"}),
        )
        .await?;
    let token = op["token"].as_str().context("no operator token")?;
    println!(
        "    release key {} (kept by the release manager; the server only learns its public key, \
         which the factory stores write-once in every device)",
        key_path.display()
    );
    Ok(ReleaseManager {
        api: FleetApi::new(api_url, token, ca_pem)?,
        key: ReleaseKey::from_signer(Box::new(key)),
    })
}

/// The update steps, numbered from `first`. The devices' agents run for the whole part.
pub(crate) async fn campaign_steps(
    first: usize,
    rm: &ReleaseManager,
    admin: &FleetApi,
    kit: &FirmwareKit,
    serials: &[String],
    devices_dir: &Path,
    endpoint: &Endpoint,
) -> anyhow::Result<()> {
    let mut agents = tokio::task::JoinSet::new();
    for serial in serials {
        let mut cfg = AgentConfig::new(
            devices_dir.join(serial),
            endpoint.clone(),
            std::sync::Arc::new(|_: &str| {}),
        );
        cfg.interval = Duration::from_secs(2);
        cfg.backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(2));
        agents.spawn(castellan_agent::run(cfg));
    }
    let result = steps(first, rm, admin, kit).await;
    agents.abort_all();
    result
}

async fn steps(
    first: usize,
    rm: &ReleaseManager,
    admin: &FleetApi,
    kit: &FirmwareKit,
) -> anyhow::Result<()> {
    super::demo::say(
        first,
        "Firmware 1.1.0 is released: the build signs the MCUboot image, the release manager signs \
         its SUIT manifest (class, digest, size, sequence number); the server checks both.",
    );
    let good = kit.release_app(Version::new(1, 1, 0, 0), 1, b"demo 1.1.0")?;
    let (release, _) = upload_release(
        &rm.api,
        &rm.key,
        &NewRelease {
            image: &good,
            device_class: "sensor-v1",
            sequence: None,
            notes: Some("demo 1.1.0"),
            expires_unix: None,
        },
    )
    .await?;
    println!(
        "    release {}: version {}, sequence {}, {} bytes, security counter {}",
        release.release_id,
        release.version,
        release.sequence,
        release.image_size,
        release.security_counter
    );

    super::demo::say(
        first + 1,
        "A campaign rolls it out: one canary, then every device. A device counts as updated only \
         once it downloaded, installed, rebooted, confirmed, and attested the new measurement.",
    );
    let c = run_campaign(rm, &release.release_id).await?;
    if c.state != "completed" {
        bail!(
            "the campaign ended {}: {}",
            c.state,
            c.reason.unwrap_or_default()
        );
    }
    let devices: Vec<Value> = admin.get("/api/v1/devices").await?;
    for d in &devices {
        println!(
            "    {:<10} firmware {:<8} attestation {}",
            d["id"].as_str().unwrap_or("?"),
            d["firmware_version"].as_str().unwrap_or("-"),
            d["attestation"].as_str().unwrap_or("?")
        );
    }

    super::demo::say(
        first + 2,
        "Firmware 1.2.0 is broken: it fails its self-test after the reboot, so the canary never \
         confirms it, the bootloader reverts to 1.1.0, and the campaign pauses itself.",
    );
    let bad = kit.release_app(
        Version::new(1, 2, 0, 0),
        1,
        b"demo 1.2.0 CASTELLAN-SELFTEST-FAIL",
    )?;
    let (release, _) = upload_release(
        &rm.api,
        &rm.key,
        &NewRelease {
            image: &bad,
            device_class: "sensor-v1",
            sequence: None,
            notes: Some("demo 1.2.0 (broken)"),
            expires_unix: None,
        },
    )
    .await?;
    let c = run_campaign(rm, &release.release_id).await?;
    for d in c.devices.iter().filter(|d| d.state == "failed") {
        println!(
            "    {} failed: {}",
            d.device_id,
            d.reason.as_deref().unwrap_or("?")
        );
    }
    println!(
        "    campaign {}: {} ({}); {} device(s) never received 1.2.0",
        c.campaign_id,
        c.state,
        c.reason.as_deref().unwrap_or("no reason"),
        c.counts.pending
    );
    if c.state != "paused" {
        bail!(
            "the broken release's campaign did not pause (it is {})",
            c.state
        );
    }
    let c: CampaignJson = rm
        .api
        .post(
            &format!("/api/v1/campaigns/{}/abort", c.campaign_id),
            &json!({}),
        )
        .await?;
    println!("    the release manager aborts it: {}", c.state);
    Ok(())
}

/// Starts a campaign (canary 1, then 100 %, pause on the first failure) and follows it until it
/// stops running; prints progress.
async fn run_campaign(rm: &ReleaseManager, release_id: &str) -> anyhow::Result<CampaignJson> {
    let req = CampaignRequest {
        canary: 1,
        waves: vec!["100%".into()],
        device_timeout_s: 120,
        max_failures: 1,
        ..CampaignRequest::new(release_id, "sensor-v1")
    };
    let mut c: CampaignJson = rm.api.post("/api/v1/campaigns", &req).await?;
    let started = Instant::now();
    let mut last = String::new();
    while c.state == "running" {
        let line = progress_line(&c);
        if line != last {
            println!("    {line}");
            last = line;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("campaign {} still running after 300 s", c.campaign_id);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        c = rm
            .api
            .get(&format!("/api/v1/campaigns/{}", c.campaign_id))
            .await?;
    }
    println!("    {}", progress_line(&c));
    Ok(c)
}
