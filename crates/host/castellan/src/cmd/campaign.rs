//! `castellan campaign`: roll a release out to a cohort in health-gated waves, watch it, pause,
//! resume, abort, and roll it back (the rollback release is re-signed here with the release
//! key: the server cannot sign manifests).
//!
//! ```text
//! castellan campaign create --token-file rm.token --release sensor-v1-2 --canary 1 \
//!     --waves 25%,100% --max-failures 3 --watch
//! castellan campaign status c-… [--watch] | list | pause | resume | abort c-…
//! castellan campaign rollback c-… --key release.key [--watch]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use castellan_agent::FleetApi;
use castellan_server::protocol::update::{
    CampaignJson, CampaignRequest, OnThreshold, ReleaseJson, RollbackRequest,
};
use clap::{Args, Subcommand, ValueEnum};

use super::fleet_api::{ApiArgs, block_on};
use super::release::{KeyArgs, NewRelease, upload_release};

/// `castellan campaign …`
#[derive(Subcommand)]
pub(crate) enum CampaignCommand {
    /// Start a campaign (release-manager).
    Create(CreateArgs),
    /// List the campaigns.
    List(ApiOnly),
    /// Show a campaign's progress (`--watch`: until it completes, pauses or aborts).
    Status(IdArgs),
    /// Stop offering the release to more devices (release-manager).
    Pause(IdArgs),
    /// Continue a paused campaign (release-manager).
    Resume(IdArgs),
    /// End the campaign and cancel the devices in progress (release-manager).
    Abort(IdArgs),
    /// Put the previous release back on every device the campaign updated (release-manager).
    Rollback(RollbackArgs),
}

/// What a crossed failure threshold does.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ThresholdAction {
    /// Pause until resumed.
    Pause,
    /// Abort and cancel devices in progress.
    Abort,
}

/// Arguments of `castellan campaign create`.
#[derive(Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The release to roll out (`<class>-<sequence>`).
    #[arg(long)]
    release: String,
    /// Only devices carrying all these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Devices in the canary wave.
    #[arg(long, default_value_t = 1)]
    canary: u32,
    /// The waves after the canary: cumulative shares ("25%") or counts ("10"), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100%")]
    waves: Vec<String>,
    /// A device that makes no progress for this many seconds fails.
    #[arg(long, default_value_t = 600)]
    device_timeout: u64,
    /// Stop after this many failed devices (0: no limit).
    #[arg(long, default_value_t = 3)]
    max_failures: u32,
    /// Stop when this share (percent) of the finished devices failed ...
    #[arg(long, default_value_t = 20)]
    max_failure_rate: u32,
    /// ... once at least this many finished.
    #[arg(long, default_value_t = 5)]
    min_sample: u32,
    /// What a crossed threshold does.
    #[arg(long, value_enum, default_value = "pause")]
    on_threshold: ThresholdAction,
    /// Follow the progress until the campaign completes, pauses or aborts.
    #[arg(long)]
    watch: bool,
}

/// Only the server options.
#[derive(Args)]
pub(crate) struct ApiOnly {
    #[command(flatten)]
    api: ApiArgs,
}

/// A campaign id and the server options.
#[derive(Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The campaign id.
    campaign_id: String,
    /// Follow the progress (status, resume) until the campaign completes, pauses or aborts.
    #[arg(long)]
    watch: bool,
}

/// Arguments of `castellan campaign rollback`.
#[derive(Args)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// The campaign to roll back.
    campaign_id: String,
    /// Follow the rollback campaign.
    #[arg(long)]
    watch: bool,
}

/// Run a campaign subcommand.
pub(crate) fn run(c: CampaignCommand) -> anyhow::Result<ExitCode> {
    match c {
        CampaignCommand::Create(a) => {
            let api = a.api.client()?;
            let release: ReleaseJson =
                block_on(api.get(&format!("/api/v1/releases/{}", a.release)))?
                    .with_context(|| format!("no release {}", a.release))?;
            let req = CampaignRequest {
                tags: a.tags.clone(),
                canary: a.canary,
                waves: a.waves.clone(),
                device_timeout_s: a.device_timeout,
                max_failures: a.max_failures,
                max_failure_rate: a.max_failure_rate,
                min_sample: a.min_sample,
                on_threshold: match a.on_threshold {
                    ThresholdAction::Pause => OnThreshold::Pause,
                    ThresholdAction::Abort => OnThreshold::Abort,
                },
                ..CampaignRequest::new(&release.release_id, &release.device_class)
            };
            let c: CampaignJson = block_on(api.post("/api/v1/campaigns", &req))??;
            println!(
                "campaign {} started: release {} ({}) to class {}{}",
                c.campaign_id,
                c.release_id,
                release.version,
                c.device_class,
                if c.tags.is_empty() {
                    String::new()
                } else {
                    format!(" with tags {}", c.tags.join(","))
                }
            );
            finish(&api, c, a.watch)
        }
        CampaignCommand::List(a) => {
            let list: Vec<CampaignJson> = block_on(a.api.client()?.get("/api/v1/campaigns"))??;
            println!(
                "{:<24} {:<20} {:<10} {:>5} {:>8} {:>7} {:>6}",
                "campaign", "release", "state", "wave", "updated", "failed", "cohort"
            );
            for c in list {
                println!(
                    "{:<24} {:<20} {:<10} {:>5} {:>8} {:>7} {:>6}",
                    c.campaign_id,
                    c.release_id,
                    c.state,
                    c.wave,
                    c.counts.updated,
                    c.counts.failed,
                    c.devices.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Status(a) => {
            let api = a.api.client()?;
            let c = get(&api, &a.campaign_id)?;
            finish(&api, c, a.watch)
        }
        CampaignCommand::Pause(a) => action(&a, "pause"),
        CampaignCommand::Resume(a) => action(&a, "resume"),
        CampaignCommand::Abort(a) => action(&a, "abort"),
        CampaignCommand::Rollback(a) => rollback(&a),
    }
}

fn get(api: &FleetApi, id: &str) -> anyhow::Result<CampaignJson> {
    Ok(block_on(api.get(&format!("/api/v1/campaigns/{id}")))??)
}

fn action(a: &IdArgs, verb: &str) -> anyhow::Result<ExitCode> {
    let api = a.api.client()?;
    let c: CampaignJson = block_on(api.post(
        &format!("/api/v1/campaigns/{}/{verb}", a.campaign_id),
        &serde_json::json!({}),
    ))??;
    println!("campaign {}: {}", c.campaign_id, c.state);
    finish(&api, c, a.watch)
}

fn rollback(a: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let api = a.api.client()?;
    let key = a.key.load()?;
    let campaign = get(&api, &a.campaign_id)?;
    let c = block_on(async {
        let releases: Vec<ReleaseJson> = api.get("/api/v1/releases").await?;
        let current = releases
            .iter()
            .find(|r| r.release_id == campaign.release_id)
            .with_context(|| format!("release {} is gone", campaign.release_id))?;
        // The previous release: the newest release of the class below the campaign's that a
        // campaign actually put on devices (a release that was never rolled out, or whose
        // campaign failed everywhere, is no "previous" state of the fleet), and whose image is
        // not the campaign's own (an earlier rollback of the same image would loop).
        let campaigns: Vec<CampaignJson> = api.get("/api/v1/campaigns").await?;
        let deployed = |r: &ReleaseJson| {
            campaigns
                .iter()
                .any(|c| c.release_id == r.release_id && c.counts.updated > 0)
        };
        let previous = releases
            .iter()
            .filter(|r| r.device_class == current.device_class && r.sequence < current.sequence)
            .filter(|r| r.measurement.digest != current.measurement.digest)
            .filter(|r| deployed(r))
            .max_by_key(|r| r.sequence)
            .with_context(|| {
                format!(
                    "no earlier release of class {} was deployed by a campaign: nothing to roll                      back to",
                    current.device_class
                )
            })?;
        eprintln!(
            "re-signing release {} ({}) as a new release for the rollback …",
            previous.release_id, previous.version
        );
        let image = api
            .get_bytes(&format!("/api/v1/releases/{}/image", previous.release_id))
            .await?;
        let notes = format!(
            "rollback of campaign {} to {} ({})",
            campaign.campaign_id, previous.release_id, previous.version
        );
        let (release, _) = upload_release(
            &api,
            &key,
            &NewRelease {
                image: &image,
                device_class: &current.device_class,
                sequence: None,
                notes: Some(&notes),
                expires_unix: None,
            },
        )
        .await?;
        let c: CampaignJson = api
            .post(
                &format!("/api/v1/campaigns/{}/rollback", campaign.campaign_id),
                &RollbackRequest {
                    release_id: release.release_id.clone(),
                },
            )
            .await?;
        anyhow::Ok(c)
    })??;
    println!(
        "rollback campaign {} started: release {} to the {} devices campaign {} updated",
        c.campaign_id,
        c.release_id,
        c.devices.len(),
        a.campaign_id
    );
    finish(&api, c, a.watch)
}

/// Prints the campaign, and with `watch` follows it until it is no longer running. Exit code:
/// 0 when completed (or not watching), 1 when it paused or aborted.
fn finish(api: &FleetApi, c: CampaignJson, watch: bool) -> anyhow::Result<ExitCode> {
    let mut c = c;
    let mut last = String::new();
    loop {
        let line = progress_line(&c);
        if line != last {
            println!("{line}");
            last = line;
        }
        if !watch || c.state != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        c = get(api, &c.campaign_id)?;
    }
    if !watch {
        for d in &c.devices {
            println!(
                "  {:<16} wave {:<2} {:<12} {}",
                d.device_id,
                d.wave,
                d.state,
                d.reason.as_deref().unwrap_or("")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    match c.state.as_str() {
        "completed" => {
            println!(
                "campaign {} completed: {} updated, {} failed",
                c.campaign_id, c.counts.updated, c.counts.failed
            );
            Ok(ExitCode::SUCCESS)
        }
        state => {
            let why = c.reason.clone().unwrap_or_else(|| "no reason given".into());
            for d in c.devices.iter().filter(|d| d.state == "failed") {
                eprintln!(
                    "  failed: {} — {}",
                    d.device_id,
                    d.reason.as_deref().unwrap_or("?")
                );
            }
            if state == "paused" {
                bail!(
                    "campaign {} paused: {why}; inspect the failures, then `castellan campaign \
                     resume {}` or `abort`/`rollback`",
                    c.campaign_id,
                    c.campaign_id
                )
            }
            bail!("campaign {} {state}: {why}", c.campaign_id)
        }
    }
}

/// One line of progress: state, wave, counts.
pub(crate) fn progress_line(c: &CampaignJson) -> String {
    let n = &c.counts;
    let total = c.devices.len();
    let busy = n.offered + n.downloading + n.installing + n.rebooting + n.confirming;
    format!(
        "{} [{}] wave {}/{}  updated {}/{}  in progress {} (downloading {}, installing {}, \
         rebooting {}, attesting {})  failed {} ({:.0}%)  pending {}",
        c.campaign_id,
        c.state,
        c.wave,
        c.waves.len(),
        n.updated,
        total,
        busy,
        n.downloading,
        n.installing,
        n.rebooting,
        n.confirming,
        n.failed,
        c.failure_rate,
        n.pending
    )
}
