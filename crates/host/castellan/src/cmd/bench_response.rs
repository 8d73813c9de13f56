//! `castellan bench response`: the fleet's analyse-then-respond loop on a simulated fleet
//! against the real broker, timed. N devices (one class, one release) send telemetry; after a
//! healthy soak, one device's application starts probing other devices' topics and another
//! starts exfiltrating (a run-time compromise: the same signed, attested image). Measured:
//! alerts and quarantines during the soak (should be none), and for each compromised device the
//! time from the compromise to its alert and to its containment (quarantined, session closed),
//! in analysis windows and seconds; the peers must raise nothing.
//!
//! ```text
//!  this process: fleet service (analysis window W) + N simulated devices (agent + secure world)
//!  onboarded ─▶ soak S s (alerts: 0, quarantines: 0?) ─▶ compromise 2 devices at t0
//!    ─▶ poll the API: alert raised (t_alert − t0), device quarantined (t_contain − t0)
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::compromise::{Behaviour, Compromise};
use castellan_agent::{AgentConfig, Endpoint, FirmwareKit, FleetApi, device};
use castellan_image::Version;
use castellan_server::protocol::AlertJson;
use castellan_server::{Server, ServerConfig};
use clap::Args;
use serde_json::Value;

/// Arguments of `castellan bench response`.
#[derive(Args)]
pub(crate) struct ResponseArgs {
    /// Simulated devices (one class, one release: each other's peers).
    #[arg(long, default_value_t = 100)]
    devices: u32,
    /// Healthy operation before the compromise, in seconds.
    #[arg(long, default_value_t = 60)]
    soak: u64,
    /// The fleet analysis window, in seconds.
    #[arg(long, default_value_t = 5)]
    window: u64,
    /// Seconds between two telemetry messages of a device.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Most devices provisioned at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// Run `castellan bench response`.
pub(crate) fn response(a: ResponseArgs) -> anyhow::Result<ExitCode> {
    if a.devices < 6 {
        bail!("--devices must be at least 6: a device's peers are the other devices of its cohort");
    }
    let dir = super::bench_fleet::working_dir(None, "response")?;
    println!(
        "response benchmark: {} devices, window {} s, working in {}",
        a.devices,
        a.window,
        dir.display()
    );
    let report = super::fleet_api::block_on(run(&a, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    let report = report??;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "\nresponse benchmark: {} devices, window {} s",
            a.devices, a.window
        );
        println!(
            "  soak {} s: {} alert(s), {} quarantine(s)",
            a.soak, report["soak_alerts"], report["soak_quarantines"]
        );
        for d in report["compromised"].as_array().into_iter().flatten() {
            println!(
                "  {} ({}): alert after {:.1} s ({:.1} windows), contained after {:.1} s",
                d["device"].as_str().unwrap_or("?"),
                d["behaviour"].as_str().unwrap_or("?"),
                d["alert_s"].as_f64().unwrap_or(f64::NAN),
                d["alert_s"].as_f64().unwrap_or(f64::NAN) / a.window as f64,
                d["contained_s"].as_f64().unwrap_or(f64::NAN),
            );
        }
        println!("  alerts on healthy peers: {}", report["peer_alerts"]);
    }
    let clean = report["soak_alerts"] == 0 && report["peer_alerts"] == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run(a: &ResponseArgs, dir: &Path) -> anyhow::Result<Value> {
    let mut config = ServerConfig::new(dir.join("server"))
        .with_ephemeral_ports()
        .with_embedded_demo_pki();
    config.analysis_window = Duration::from_secs(a.window.max(1));
    let server = Server::start(config)
        .await
        .context("the fleet service does not start")?;
    let ca = std::fs::read_to_string(&server.paths().ca_bundle)?;
    let token = server.admin_token().context("no admin token")?.to_string();
    let admin = FleetApi::new(&server.api_url(), &token, &ca)?;
    let kit = Arc::new(FirmwareKit::load_or_create(
        &dir.join("kit"),
        Version::new(1, 0, 0, 0),
    )?);
    let serials: Vec<String> = (1..=a.devices).map(|i| format!("RSP-{i:04}")).collect();
    let slot = device::SECTOR_SIZE * 64;
    super::bench_fleet::provision(
        &admin,
        dir,
        &kit,
        (&serials, "resp-v1"),
        slot,
        a.concurrency,
    )
    .await?;
    let endpoint = Endpoint::parse(&server.mqtt_addr().to_string())?;
    let quiet: castellan_agent::Logger = Arc::new(|_: &str| {});
    let mut switches = Vec::new();
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut agents = tokio::task::JoinSet::new();
    for serial in &serials {
        let mut cfg = AgentConfig::new(
            dir.join("devices").join(serial),
            endpoint.clone(),
            quiet.clone(),
        );
        cfg.interval = Duration::from_secs(a.interval.max(1));
        cfg.onboard_timeout = Duration::from_secs(120);
        cfg.stop = Some(stop.clone());
        let switch = Arc::new(Compromise::default());
        cfg.compromise = Some(switch.clone());
        switches.push(switch);
        agents.spawn(castellan_agent::run(cfg));
    }
    super::bench_fleet::wait_onboarded(&admin, serials.len(), Duration::from_secs(a.timeout))
        .await?;

    println!("  soak: {} s of healthy operation", a.soak);
    tokio::time::sleep(Duration::from_secs(a.soak)).await;
    let soak_alerts = alerts(&admin).await?.len();
    let soak_quarantines = quarantined(&admin).await?;

    let staged = [
        (
            serials[0].clone(),
            Behaviour::ProbeTopics,
            "probes other devices' topics",
        ),
        (serials[1].clone(), Behaviour::Exfiltrate, "exfiltrates"),
    ];
    println!("  compromise: {} and {}", staged[0].0, staged[1].0);
    let t0 = Instant::now();
    switches[0].set(Behaviour::ProbeTopics);
    switches[1].set(Behaviour::Exfiltrate);
    let mut times: Vec<(Option<f64>, Option<f64>)> = vec![(None, None); staged.len()];
    while times.iter().any(|(al, co)| al.is_none() || co.is_none()) {
        if t0.elapsed() > Duration::from_secs(a.timeout) {
            bail!(
                "the compromised devices were not all alerted and contained in {} s",
                a.timeout
            );
        }
        let raised = alerts(&admin).await?;
        for (i, (serial, _, _)) in staged.iter().enumerate() {
            if times[i].0.is_none()
                && raised
                    .iter()
                    .any(|al| al.device_id.as_deref() == Some(serial))
            {
                times[i].0 = Some(t0.elapsed().as_secs_f64());
            }
            if times[i].1.is_none() {
                let d: Value = admin.get(&format!("/api/v1/devices/{serial}")).await?;
                if d["quarantined"] == true {
                    times[i].1 = Some(t0.elapsed().as_secs_f64());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let peer_alerts = alerts(&admin)
        .await?
        .iter()
        .filter(|al| {
            al.device_id
                .as_deref()
                .is_some_and(|d| staged.iter().all(|(s, _, _)| s != d))
        })
        .count();
    stop.notify_waiters();
    agents.abort_all();
    server.shutdown().await;
    let compromised: Vec<Value> = staged
        .iter()
        .zip(&times)
        .map(|((serial, _, what), (al, co))| {
            serde_json::json!({"device": serial, "behaviour": what, "alert_s": al, "contained_s": co})
        })
        .collect();
    Ok(serde_json::json!({
        "devices": a.devices,
        "window_s": a.window,
        "soak_s": a.soak,
        "soak_alerts": soak_alerts,
        "soak_quarantines": soak_quarantines,
        "compromised": compromised,
        "peer_alerts": peer_alerts,
    }))
}

async fn alerts(admin: &FleetApi) -> anyhow::Result<Vec<AlertJson>> {
    Ok(admin.get("/api/v1/alerts?limit=1000").await?)
}

async fn quarantined(admin: &FleetApi) -> anyhow::Result<usize> {
    let devices: Vec<Value> = admin.get("/api/v1/devices").await?;
    Ok(devices.iter().filter(|d| d["quarantined"] == true).count())
}
