//! `castellan bench response`: the fleet's analyse-then-respond loop on a simulated fleet
//! against the real broker, timed, for the three cases of a fleet's bad day:
//!
//! ```text
//!  this process: fleet service (analysis window W, probation P) + N simulated devices
//!  N−2 devices onboarded ─▶ release 1.1.0 rolled out to them (the class's last good release)
//!  2 more devices onboarded on 1.0.0, then flashed offline with a validly signed but unexpected
//!    build (an implant, dormant until t0)
//!  soak S s (alerts: 0, quarantines: 0?) ─▶ at t0:
//!   (a) run-time: a 1.1.0 device's application probes other devices' topics
//!         ─▶ alert ─▶ quarantined ─▶ reboot-and-reattest ─▶ probation ─▶ released
//!   (b) flashed: the implant exfiltrates
//!         ─▶ alert ─▶ quarantined ─▶ heal campaign of 1.1.0 ─▶ installed, attested ─▶ probation
//!         ─▶ released
//!   (c) flashed, refuses every update: the implant probes
//!         ─▶ alert ─▶ quarantined ─▶ heal campaign fails ─▶ two decommissioners ─▶ signed
//!            command ─▶ final token (proof of erasure) ─▶ certificates revoked
//!  then: alerts on the healthy peers (0?), every device still in the registry, the audit chain
//!  intact with every step of every case in it
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use castellan_agent::compromise::Compromise;
use castellan_agent::{AgentConfig, Endpoint, FirmwareKit, FleetApi, device};
use castellan_image::Version;
use castellan_server::protocol::{AlertJson, CampaignJson, CampaignRequest};
use castellan_server::{Server, ServerConfig, ServerHandle};
use clap::Args;
use serde_json::Value;

use super::bench_response_loop::{Case, Fleet};
use super::release::{NewRelease, upload_release};

/// Arguments of `castellan bench response`.
#[derive(Args)]
pub(crate) struct ResponseArgs {
    /// Simulated devices (one class: each other's peers); at least 8.
    #[arg(long, default_value_t = 100)]
    pub(crate) devices: u32,
    /// Healthy operation before the compromise, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) soak: u64,
    /// The fleet analysis window, in seconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) window: u64,
    /// A healed device's probation, in seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) probation: u64,
    /// Seconds between two telemetry messages of a device.
    #[arg(long, default_value_t = 1)]
    pub(crate) interval: u64,
    /// Most devices provisioned at once.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The device class of the benchmark's fleet.
const CLASS: &str = "resp-v1";

/// Run `castellan bench response`.
pub(crate) fn response(a: ResponseArgs) -> anyhow::Result<ExitCode> {
    if a.devices < 8 {
        bail!(
            "--devices must be at least 8: five peers on the good release besides the three cases"
        );
    }
    let dir = super::bench_fleet::working_dir(None, "response")?;
    println!(
        "response benchmark: {} devices, window {} s, probation {} s, working in {}",
        a.devices,
        a.window,
        a.probation,
        dir.display()
    );
    let report = super::fleet_api::block_on(run(&a, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    let report = report??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&a, &report);
    }
    Ok(if super::bench_response_loop::clean(&report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(a: &ResponseArgs, r: &Value) {
    let s = |v: &Value| v.as_f64().map_or("—".to_string(), |x| format!("{x:.1} s"));
    println!(
        "\nresponse benchmark: {} devices, window {} s, probation {} s",
        a.devices, a.window, a.probation
    );
    println!(
        "  soak {} s: {} alert(s), {} quarantine(s); alerts on healthy peers afterwards: {}",
        a.soak, r["soak_alerts"], r["soak_quarantines"], r["peer_alerts"]
    );
    println!(
        "  {:<12} {:<34} {:>8} {:>10} {:>18} {:>14}",
        "device", "case", "alert", "contained", "healed, released", "decommissioned"
    );
    for c in r["cases"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} {:<34} {:>8} {:>10} {:>18} {:>14}",
            c["device"].as_str().unwrap_or("?"),
            c["case"].as_str().unwrap_or("?"),
            s(&c["alert_s"]),
            s(&c["contained_s"]),
            s(&c["released_s"]),
            s(&c["decommissioned_s"]),
        );
    }
    println!(
        "  registry: {} of {} devices; audit chain intact: {} ({} entries); every step audited: {}",
        r["registry_devices"], a.devices, r["audit_intact"], r["audit_entries"], r["steps_audited"]
    );
}

async fn run(a: &ResponseArgs, dir: &Path) -> anyhow::Result<Value> {
    let mut config = ServerConfig::new(dir.join("server"))
        .with_ephemeral_ports()
        .with_embedded_demo_pki();
    config.analysis_window = Duration::from_secs(a.window.max(1));
    config.heal_probation = Duration::from_secs(a.probation);
    let server = Server::start(config)
        .await
        .context("the fleet service does not start")?;
    let result = drive(a, dir, &server).await;
    server.shutdown().await;
    result
}

async fn drive(a: &ResponseArgs, dir: &Path, server: &ServerHandle) -> anyhow::Result<Value> {
    let ca = std::fs::read_to_string(&server.paths().ca_bundle)?;
    let token = server.admin_token().context("no admin token")?.to_string();
    let api_url = server.api_url();
    let admin = FleetApi::new(&api_url, &token, &ca)?;
    let rm = super::demo_update::release_manager(dir, &admin, &api_url, &ca).await?;
    let kit = Arc::new(FirmwareKit::load_or_create(
        &dir.join("kit"),
        Version::new(1, 0, 0, 0),
    )?);
    let serials: Vec<String> = (1..=a.devices).map(|i| format!("RSP-{i:04}")).collect();
    let (good, flashed) = serials.split_at(serials.len() - 2);
    let slot = device::SECTOR_SIZE * 64;
    let endpoint = Endpoint::parse(&server.mqtt_addr().to_string())?;
    let mut fleet = Fleet::new(dir, endpoint, a.interval);

    super::bench_fleet::provision(&admin, dir, &kit, (good, CLASS), slot, a.concurrency).await?;
    for serial in good {
        fleet.start(serial, Arc::new(Compromise::default()));
    }
    let limit = Duration::from_secs(a.timeout);
    super::bench_fleet::wait_onboarded(&admin, good.len(), limit).await?;

    println!("  release 1.1.0 rolled out to the {} devices", good.len());
    let image = kit.release_app(Version::new(1, 1, 0, 0), 1, b"response bench 1.1.0")?;
    let (release, _) = upload_release(
        &rm.api,
        &rm.key,
        &NewRelease {
            image: &image,
            device_class: CLASS,
            sequence: None,
            notes: Some("the class's last good release"),
            expires_unix: None,
        },
    )
    .await?;
    roll_out(&rm.api, &release.release_id, limit).await?;

    println!(
        "  {} and {}: onboarded on 1.0.0, then flashed with a validly signed, unexpected build",
        flashed[0], flashed[1]
    );
    super::bench_fleet::provision(&admin, dir, &kit, (flashed, CLASS), slot, a.concurrency).await?;
    let implants: Vec<Arc<Compromise>> = flashed
        .iter()
        .map(|_| Arc::new(Compromise::default()))
        .collect();
    for (serial, c) in flashed.iter().zip(&implants) {
        fleet.start(serial, c.clone());
    }
    super::bench_fleet::wait_onboarded(&admin, serials.len(), limit).await?;
    for (serial, c) in flashed.iter().zip(&implants) {
        fleet.stop(serial).await;
        let implant = kit.other_app(format!("implant of {serial}").as_bytes())?;
        device::replace_app(&dir.join("devices").join(serial), &implant)?;
        c.flash(true);
        fleet.start(serial, c.clone());
    }

    println!("  soak: {} s of healthy operation", a.soak);
    tokio::time::sleep(Duration::from_secs(a.soak)).await;
    let soak_alerts = alerts(&admin).await?.len();
    let soak_quarantines = quarantined(&admin).await?;

    let cases = [
        Case::run_time(&good[0], fleet.switch(&good[0])),
        Case::flashed(&flashed[0], implants[0].clone()),
        Case::refuses_updates(&flashed[1], implants[1].clone()),
    ];
    let report = super::bench_response_loop::watch(
        &admin,
        (&api_url, &ca),
        &cases,
        limit,
        (soak_alerts, soak_quarantines),
    )
    .await;
    fleet.stop_all().await;
    let mut report = report?;
    report["devices"] = a.devices.into();
    report["window_s"] = a.window.into();
    report["soak_s"] = a.soak.into();
    report["probation_s"] = a.probation.into();
    report["good_release"] = release.release_id.into();
    Ok(report)
}

/// Roll `release` out to every device of the class (canary 1, then all) and wait for the end.
async fn roll_out(api: &FleetApi, release: &str, limit: Duration) -> anyhow::Result<()> {
    let req = CampaignRequest {
        canary: 1,
        waves: vec!["100%".into()],
        device_timeout_s: 300,
        max_failures: 1,
        ..CampaignRequest::new(release, CLASS)
    };
    let mut c: CampaignJson = api.post("/api/v1/campaigns", &req).await?;
    let started = std::time::Instant::now();
    while c.state == "running" {
        if started.elapsed() > limit {
            bail!("campaign {} still running", c.campaign_id);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        c = api
            .get(&format!("/api/v1/campaigns/{}", c.campaign_id))
            .await?;
    }
    if c.state != "completed" {
        bail!("the rollout of {release} ended {}: {:?}", c.state, c.reason);
    }
    println!(
        "    completed in {:.0} s ({} updated)",
        started.elapsed().as_secs_f64(),
        c.counts.updated
    );
    Ok(())
}

pub(super) async fn alerts(admin: &FleetApi) -> anyhow::Result<Vec<AlertJson>> {
    Ok(admin.get("/api/v1/alerts?limit=1000").await?)
}

async fn quarantined(admin: &FleetApi) -> anyhow::Result<usize> {
    let devices: Vec<Value> = admin.get("/api/v1/devices").await?;
    Ok(devices.iter().filter(|d| d["quarantined"] == true).count())
}

/// The agent configuration of one benchmark device.
pub(super) fn agent_config(
    dir: &Path,
    serial: &str,
    endpoint: &Endpoint,
    interval: u64,
) -> AgentConfig {
    let quiet: castellan_agent::Logger = Arc::new(|_: &str| {});
    let mut cfg = AgentConfig::new(dir.join("devices").join(serial), endpoint.clone(), quiet);
    cfg.interval = Duration::from_secs(interval.max(1));
    cfg.onboard_timeout = Duration::from_secs(120);
    cfg
}
