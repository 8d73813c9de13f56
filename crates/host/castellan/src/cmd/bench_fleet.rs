//! What the fleet benchmarks share: many simulated devices built from one kit and provisioned
//! at the factory, and the wait until every one has onboarded with an attestation token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use castellan_agent::{FirmwareKit, FleetApi, KeyChoice, ProvisionRequest, device};
use serde_json::Value;

/// Build and provision `serials` of `class` under `<dir>/devices/`, `concurrency` at a time,
/// each with slots of `slot` bytes.
pub(crate) async fn provision(
    admin: &FleetApi,
    dir: &Path,
    kit: &Arc<FirmwareKit>,
    (serials, class): (&[String], &str),
    slot: u32,
    concurrency: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut jobs = tokio::task::JoinSet::new();
    for serial in serials {
        let (admin, kit, sem) = (admin.clone(), kit.clone(), sem.clone());
        let (serial, dev) = (serial.clone(), dir.join("devices").join(serial));
        let class = class.to_owned();
        jobs.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let d = dev.clone();
            tokio::task::spawn_blocking(move || {
                device::build_device_with_slot(&d, &kit, slot)?;
                // Saved as a page journal: each save after a secure call appends the pages it
                // changed, where flash.bin would be the whole flash each time.
                castellan_sim::SimDevice::open(&d)?.use_page_journal()?;
                anyhow::Ok(())
            })
            .await??;
            let req = ProvisionRequest {
                serial,
                device_class: class,
                keys: KeyChoice::CryptoService,
            };
            castellan_agent::provision_sim_device(&admin, &dev, &req).await?;
            anyhow::Ok(())
        });
    }
    let (mut done, total) = (0usize, serials.len());
    while let Some(r) = jobs.join_next().await {
        r??;
        done += 1;
        if done % 100 == 0 || done == total {
            println!(
                "  factory: {done}/{total} devices provisioned ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Wait until `count` devices have passed their onboarding attestation, at most `timeout`.
pub(crate) async fn wait_onboarded(
    admin: &FleetApi,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        // A busy server may answer late: keep asking rather than give up.
        let devices: Vec<Value> = match admin.get("/api/v1/devices").await {
            Ok(d) => d,
            Err(e) => {
                println!("  onboarding: the API did not answer ({e}); asking again");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let onboarded = devices
            .iter()
            .filter(|d| d["attestation"] == "passed")
            .count();
        println!(
            "  onboarding: {onboarded}/{count} devices ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        if onboarded >= count {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("only {onboarded} of {count} devices onboarded");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A fresh working directory for benchmark `name`: `dir` if given (emptied), else one in
/// /dev/shm when it exists (the simulated flash is saved after every secure call), else in the
/// system's temporary directory.
pub(crate) fn working_dir(dir: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let base = if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            base.join(format!("castellan-bench-{name}-{}", std::process::id()))
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
