//! `castellan bench rollout`: a release rolled out to many simulated devices, timed from the
//! campaign's creation to 100 % updated (downloaded, installed, rebooted, confirmed and
//! attested), with the fleet server's CPU time and peak memory, against the floor of the same
//! work measured in the same run: the hashing and signature checks of the same bytes.
//!
//! ```text
//!  castellan serve (child process: CPU and peak RSS read from /proc)
//!     ▲ HTTPS API (release manager)        ▲ MQTT mutual TLS (devices)
//!  this process: N simulated devices (secure world thread + agent task each)
//!  floor = N × (SUIT authentication + SHA-256 of the image + MCUboot verification)
//!          on one core, divided by the cores the run had
//! ```

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::{AgentConfig, Endpoint, FirmwareKit, FleetApi, device};
use castellan_image::Version;
use castellan_pki::{CaSigner as _, FileKey};
use castellan_release::ReleaseKey;
use castellan_server::protocol::update::{CampaignJson, CampaignRequest, ReleaseKeyRequest};
use clap::Args;
use serde_json::{Value, json};

use super::campaign::progress_line;
use super::release::{NewRelease, upload_release};

/// Arguments of `castellan bench rollout`.
#[derive(Args)]
pub(crate) struct RolloutArgs {
    /// Simulated devices in the cohort.
    #[arg(long, default_value_t = 1000)]
    devices: u32,
    /// Size of the release image in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    image_size: usize,
    /// Working directory (devices, server state); default: a fresh directory in /dev/shm when
    /// it exists (the simulated flash is saved after every secure call), else in the system's
    /// temporary directory. Removed at the end unless --keep.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the working directory.
    #[arg(long)]
    keep: bool,
    /// Most devices provisioned or onboarded at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up when the rollout takes longer than this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

/// The fleet server as a child process.
struct ServerProcess {
    child: Child,
    api_url: String,
    mqtt: String,
    state: PathBuf,
}

impl ServerProcess {
    fn start(state: &Path, devices: u32) -> anyhow::Result<ServerProcess> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        // Every simulated device connects from 127.0.0.1, reconnections included.
        let per_address = (u64::from(devices) * 2 + 64).to_string();
        let mut child = Command::new(exe)
            .args([
                "serve",
                "--embedded-demo-pki",
                "--mqtt",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--mqtt-max-per-address",
                &per_address,
                "--api-max-per-address",
                &per_address,
                "--state-dir",
            ])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start `castellan serve`")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut api_url, mut mqtt) = (None, None);
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.trim().strip_prefix("operator API ") {
                api_url = Some(rest.trim().to_string());
            }
            if let Some(i) = line.find("mqtts://") {
                mqtt = Some(line[i + 8..].trim().to_string());
            }
            if line.contains("Ctrl-C") {
                break;
            }
        }
        // Keep draining the server's output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        match (api_url, mqtt) {
            (Some(api_url), Some(mqtt)) => Ok(ServerProcess {
                child,
                api_url,
                mqtt,
                state: state.to_path_buf(),
            }),
            _ => {
                let _ = child.kill();
                bail!("`castellan serve` did not print its addresses")
            }
        }
    }

    /// CPU seconds (user + system) the server has used so far.
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    /// Peak resident memory (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        peak_rss_mib(&self.child.id().to_string())
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) process `pid` ("self" for this one) has used so far.
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state field.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// Peak resident memory (VmHWM) of process `pid` ("self" for this one) in MiB.
fn peak_rss_mib(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .context("no VmHWM in /proc/<pid>/status")?;
    Ok(kib / 1024.0)
}

/// Bytes of the files under `dir` whose name is `name`.
fn bytes_named(dir: &Path, name: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) if e.file_name() == name => {
                    total += e.metadata().map_or(0, |m| m.len());
                }
                _ => {}
            }
        }
    }
    total
}

/// Runs the benchmark.
pub(crate) fn rollout(a: RolloutArgs) -> anyhow::Result<ExitCode> {
    let dir = super::bench_fleet::working_dir(a.dir.as_deref(), "rollout")?;
    println!(
        "rollout benchmark: {} devices, {} KiB release, working in {}",
        a.devices,
        a.image_size / 1024,
        dir.display()
    );
    let server = ServerProcess::start(&dir.join("server"), a.devices)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&a, &dir, &server));
    let peak = server.peak_rss_mib().ok();
    let devices_peak = peak_rss_mib("self").ok();
    server.stop();
    let db_bytes =
        std::fs::metadata(dir.join("server").join("castellan.db")).map_or(0, |m| m.len());
    let journal_bytes = bytes_named(&dir.join("devices"), castellan_sim::FLASH_JOURNAL_FILE);
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut report = result?;
    report.server_peak_rss_mib = peak.unwrap_or(0.0);
    report.devices_peak_rss_mib = devices_peak.unwrap_or(0.0);
    report.db_bytes = db_bytes;
    report.journal_bytes = journal_bytes;
    println!("{}", report.render());
    Ok(ExitCode::SUCCESS)
}

/// The figures of a run.
struct Report {
    devices: u32,
    image_size: usize,
    rollout_s: f64,
    server_cpu_s: f64,
    /// This process's CPU during the rollout: the simulated devices.
    devices_cpu_s: f64,
    server_peak_rss_mib: f64,
    /// This process's peak memory: the simulated devices (secure worlds, agents, flash).
    devices_peak_rss_mib: f64,
    /// The server's SQLite database after the run.
    db_bytes: u64,
    /// The devices' saved flash (page journals) after the run.
    journal_bytes: u64,
    floor_one_core_s: f64,
    cores: usize,
}

impl Report {
    fn render(&self) -> String {
        let floor = self.floor_one_core_s / self.cores as f64;
        let per_device = |kib: f64| kib / f64::from(self.devices.max(1));
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        format!(
            "\nrollout of a {} KiB release to {} devices (time to 100 % updated and attested)\n\
             {:<44} {:>10.2} s\n\
             {:<44} {:>10.2} s   ({:.0}% of one core over the rollout)\n\
             {:<44} {:>10.2} s\n\
             {:<44} {:>10.1} MiB\n\
             {:<44} {:>10.2} s   (one core: {:.2} s; {} cores)\n\
             {:<44} {:>10.1} x\n\
             {:<44} {:>10.1} x\n\
             {:<44} {:>10.1} MiB ({:.0} KiB per device)\n\
             {:<44} {:>10.1} MiB ({:.1} KiB per device)\n\
             {:<44} {:>10.1} MiB ({:.0} KiB per device)",
            self.image_size / 1024,
            self.devices,
            "rollout, wall clock",
            self.rollout_s,
            "server CPU (user + system) during the rollout",
            self.server_cpu_s,
            100.0 * self.server_cpu_s / self.rollout_s.max(1e-9),
            "devices' CPU (this process) during the rollout",
            self.devices_cpu_s,
            "server peak memory (VmHWM, whole run)",
            self.server_peak_rss_mib,
            "floor: hashing + signature checks, same bytes",
            floor,
            self.floor_one_core_s,
            self.cores,
            "rollout / floor",
            self.rollout_s / floor.max(1e-9),
            "server CPU / floor (one core)",
            self.server_cpu_s / self.floor_one_core_s.max(1e-9),
            "devices' process peak memory (VmHWM)",
            self.devices_peak_rss_mib,
            per_device(self.devices_peak_rss_mib * 1024.0),
            "server database (SQLite file)",
            mib(self.db_bytes),
            per_device(mib(self.db_bytes) * 1024.0),
            "devices' saved flash (page journals)",
            mib(self.journal_bytes),
            per_device(mib(self.journal_bytes) * 1024.0),
        )
    }
}

async fn run(a: &RolloutArgs, dir: &Path, server: &ServerProcess) -> anyhow::Result<Report> {
    let token = std::fs::read_to_string(server.state.join("admin.token"))?;
    let ca = std::fs::read_to_string(server.state.join("tls").join("ca-bundle.pem"))?;
    let admin = FleetApi::new(&server.api_url, &token, &ca)?;
    let rm: Value = admin
        .post(
            "/api/v1/operators",
            &json!({"name": "bench-release-manager", "role": "release-manager"}),
        )
        .await?;
    let rm_token = rm["token"].as_str().context("no operator token")?;
    let manager = FleetApi::new(&server.api_url, rm_token, &ca)?;
    let release_key = FileKey::generate();
    let _: Value = admin
        .put(
            "/api/v1/release-key",
            &ReleaseKeyRequest {
                public_key: hex::encode(release_key.public_key()),
            },
        )
        .await?;

    // The cohort: devices built from one kit, with slots large enough for the release.
    let kit = Arc::new(FirmwareKit::load_or_create(
        &dir.join("kit"),
        Version::new(1, 0, 0, 0),
    )?);
    let slot = u32::try_from(a.image_size + 64 * 1024)?.next_multiple_of(device::SECTOR_SIZE);
    let serials: Vec<String> = (1..=a.devices).map(|i| format!("BENCH-{i:05}")).collect();
    super::bench_fleet::provision(
        &admin,
        dir,
        &kit,
        (&serials, "bench-v1"),
        slot,
        a.concurrency,
    )
    .await?;

    // Every device runs its agent: onboarding, then waiting for offers.
    let endpoint = Endpoint::parse(&server.mqtt)?;
    let quiet: castellan_agent::Logger = Arc::new(|_: &str| {});
    let mut agents = tokio::task::JoinSet::new();
    // Devices come online in batches, as a fleet powers up over time: a thousand attested
    // onboardings at the same instant only measure the queue in front of the server.
    for (i, serial) in serials.iter().enumerate() {
        let mut cfg = AgentConfig::new(
            dir.join("devices").join(serial),
            endpoint.clone(),
            quiet.clone(),
        );
        cfg.interval = Duration::from_secs(3600);
        cfg.onboard_timeout = Duration::from_secs(120);
        agents.spawn(castellan_agent::run(cfg));
        if (i + 1) % a.concurrency.max(1) == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    super::bench_fleet::wait_onboarded(&admin, serials.len(), Duration::from_secs(a.timeout))
        .await?;

    // The release and the campaign.
    let image = kit.release_image(Version::new(2, 0, 0, 0), a.image_size, b"bench 2.0.0")?;
    let key = ReleaseKey::from_signer(Box::new(release_key));
    let (release, envelope) = upload_release(
        &manager,
        &key,
        &NewRelease {
            image: &image,
            device_class: "bench-v1",
            sequence: None,
            notes: Some("rollout benchmark"),
            expires_unix: None,
        },
    )
    .await?;
    let req = CampaignRequest {
        device_timeout_s: 300,
        canary: (a.devices / 100).max(1),
        waves: vec!["10%".into(), "100%".into()],
        max_failures: 0,
        max_failure_rate: 100,
        ..CampaignRequest::new(&release.release_id, "bench-v1")
    };
    let cpu0 = server.cpu_seconds()?;
    let devices_cpu0 = cpu_seconds("self")?;
    let t0 = Instant::now();
    let mut c: CampaignJson = manager.post("/api/v1/campaigns", &req).await?;
    let mut last_print = Instant::now();
    let mut last_line = String::new();
    while c.state == "running" {
        let line = progress_line(&c);
        if line != last_line || last_print.elapsed() > Duration::from_secs(30) {
            println!("  {:>6.1} s  {line}", t0.elapsed().as_secs_f64());
            last_print = Instant::now();
            last_line = line;
        }
        if t0.elapsed() > Duration::from_secs(a.timeout) {
            bail!("the rollout did not finish in {} s", a.timeout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match manager
            .get(&format!("/api/v1/campaigns/{}", c.campaign_id))
            .await
        {
            Ok(next) => c = next,
            Err(e) => println!("  the API did not answer ({e}); asking again"),
        }
    }
    let rollout_s = t0.elapsed().as_secs_f64();
    let server_cpu_s = server.cpu_seconds()? - cpu0;
    let devices_cpu_s = cpu_seconds("self")? - devices_cpu0;
    println!("  {:>6.1} s  {}", rollout_s, progress_line(&c));
    agents.abort_all();
    if c.state != "completed" || c.counts.updated != a.devices {
        let mut reasons = std::collections::BTreeMap::<String, u32>::new();
        for d in c.devices.iter().filter(|d| d.state != "updated") {
            let why = format!(
                "{}: {}",
                d.state,
                d.reason.as_deref().unwrap_or("no reason")
            );
            *reasons.entry(why).or_default() += 1;
        }
        for (why, n) in &reasons {
            eprintln!("  {n} device(s) {why}");
        }
        bail!(
            "the campaign ended {} with {} of {} updated after {rollout_s:.1} s: {}",
            c.state,
            c.counts.updated,
            a.devices,
            c.reason.unwrap_or_default()
        );
    }

    let anchor = key.signer().public_key();
    let n = serials.len();
    let floor_one_core_s =
        tokio::task::spawn_blocking(move || floor_seconds(&image, &envelope, &anchor, n)).await??;
    Ok(Report {
        devices: a.devices,
        image_size: a.image_size,
        rollout_s,
        server_cpu_s,
        devices_cpu_s,
        server_peak_rss_mib: 0.0,
        devices_peak_rss_mib: 0.0,
        db_bytes: 0,
        journal_bytes: 0,
        floor_one_core_s,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// One core's time for what every device must at least do with the release's bytes: the SUIT
/// envelope's authentication, the image's SHA-256 (the manifest's digest) and the MCUboot
/// verification (hash and signature), `devices` times.
fn floor_seconds(
    image: &[u8],
    envelope: &[u8],
    anchor: &[u8; 65],
    devices: usize,
) -> anyhow::Result<f64> {
    use sha2::Digest as _;
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(anchor)?;
    let anchors = [castellan_suit::TrustAnchor::P256(vk)];
    let facts = castellan_release::image_facts(image)?;
    let t = Instant::now();
    for _ in 0..devices {
        castellan_suit::authenticate(envelope, &anchors)
            .map_err(|e| anyhow::anyhow!("floor: {e}"))?;
        let digest: [u8; 32] = sha2::Sha256::digest(image).into();
        std::hint::black_box(digest);
        castellan_image::verify(
            &mut &image[..],
            castellan_image::TrustedKey::Sha256OfSpki(facts.signer_id),
        )
        .map_err(|e| anyhow::anyhow!("floor: {e}"))?;
    }
    Ok(t.elapsed().as_secs_f64())
}
