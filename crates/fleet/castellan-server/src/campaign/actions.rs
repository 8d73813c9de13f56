//! What the release manager does to campaigns through the API: create one (cohort assigned to
//! waves), pause, resume (thresholds count from there), abort, roll back (a new campaign for the
//! devices a campaign updated), and read them. Each takes the engine lock.

use castellan_store::{
    Campaign, CampaignState, DeviceUpdateState, NewCampaign, Release, StoreError, unix_now,
};

use super::plan::{self, CampaignSpec};
use super::{
    ACTION_CAMPAIGN, CampaignError, abort, campaign_json, cohort, expired, members_of, pause,
};
use crate::core::Core;
use crate::protocol::{CampaignJson, CampaignRequest};

/// Create a campaign from an operator's request.
pub(crate) async fn create(
    core: &Core,
    req: &CampaignRequest,
    actor: &str,
) -> Result<CampaignJson, CampaignError> {
    let (release, spec) = checked_request(core, req).await?;
    let _guard = core.updates.lock.lock().await;
    start(core, &release, spec, actor, None).await
}

/// Which devices a campaign created from `req` now would reach, each with its wave (0 = the
/// canary), by the rules `create` applies; nothing is stored.
pub(crate) async fn preview(
    core: &Core,
    req: &CampaignRequest,
) -> Result<Vec<(String, u32)>, CampaignError> {
    let (release, spec) = checked_request(core, req).await?;
    let devices = core.store.list_devices().await?;
    let draft = draft(String::new(), &release, "");
    Ok(spec.assign(&cohort(core, &devices, &draft, &spec, &release)))
}

/// The request's settings and release, refused as `create` refuses them.
async fn checked_request(
    core: &Core,
    req: &CampaignRequest,
) -> Result<(Release, CampaignSpec), CampaignError> {
    let mut spec = CampaignSpec::from_request(req)?;
    if !req.tags.iter().all(|t| crate::names::is_valid_name(t)) {
        return Err(CampaignError::InvalidName { what: "tag" });
    }
    let release = release_or_refuse(core, &req.release_id).await?;
    if release.device_class != req.device_class {
        return Err(CampaignError::WrongClass {
            release: release.id.clone(),
            class: release.device_class.clone(),
            requested: req.device_class.clone(),
        });
    }
    if let Some(why) = expired(&release, unix_now()) {
        return Err(why);
    }
    spec.devices = None;
    Ok((release, spec))
}

/// A running campaign of `release` not yet stored (what the cohort rules read).
fn draft(id: String, release: &Release, actor: &str) -> Campaign {
    Campaign {
        id,
        release_id: release.id.clone(),
        device_class: release.device_class.clone(),
        spec: String::new(),
        state: CampaignState::Running,
        wave: 0,
        reason: None,
        rollback_of: None,
        baseline_failed: 0,
        baseline_updated: 0,
        created_at: 0,
        created_by: actor.into(),
        updated_at: 0,
    }
}

/// Insert a campaign with its initial cohort assigned to waves; the engine takes it from there.
async fn start(
    core: &Core,
    release: &Release,
    spec: CampaignSpec,
    actor: &str,
    rollback_of: Option<&str>,
) -> Result<CampaignJson, CampaignError> {
    let devices = core.store.list_devices().await?;
    let id = new_campaign_id()?;
    let draft = draft(id.clone(), release, actor);
    let cohort = cohort(core, &devices, &draft, &spec, release);
    if cohort.is_empty() {
        return Err(CampaignError::NoEligibleDevice {
            class: release.device_class.clone(),
            tags: if spec.tags.is_empty() {
                String::new()
            } else {
                format!(" with tags {}", spec.tags.join(", "))
            },
            release: release.id.clone(),
        });
    }
    let members = spec.assign(&cohort);
    let new = NewCampaign {
        id: id.clone(),
        release_id: release.id.clone(),
        device_class: release.device_class.clone(),
        spec: serde_json::to_string(&spec).map_err(CampaignError::WriteSpec)?,
        rollback_of: rollback_of.map(str::to_string),
        created_by: actor.into(),
    };
    core.store
        .create_campaign(&new, &members, unix_now())
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { key, .. } => CampaignError::AlreadyActive {
                active: key,
                class: release.device_class.clone(),
            },
            other => other.into(),
        })?;
    core.updates.wake();
    let c = core
        .store
        .campaign(&id)
        .await?
        .ok_or(CampaignError::Vanished)?;
    let json = campaign_json(core, &c).await?;
    core.auditor
        .append(
            actor,
            ACTION_CAMPAIGN,
            &id,
            true,
            &format!(
                "created for release {} ({} devices, canary {}, waves {})",
                release.id,
                members.len(),
                spec.canary,
                spec.waves.join(" ")
            ),
        )
        .await;
    Ok(json)
}

/// An operator's pause, resume or abort.
pub(crate) async fn act(
    core: &Core,
    id: &str,
    action: &str,
    actor: &str,
) -> Result<CampaignJson, CampaignError> {
    let _guard = core.updates.lock.lock().await;
    let c = campaign_or_404(core, id).await?;
    let now = unix_now();
    let reason = format!("{action} by {actor}");
    let changed = match action {
        "pause" => pause(core, &c, actor, &reason, now).await?,
        "abort" => abort(core, &c, actor, &reason, now).await?,
        "resume" => {
            let counts = plan::count(&members_of(core, id).await?);
            let changed = core
                .store
                .transition_campaign(
                    id,
                    &[CampaignState::Paused],
                    CampaignState::Running,
                    None,
                    now,
                )
                .await?
                .is_some();
            if changed {
                core.store
                    .set_campaign_baseline(id, counts.failed, counts.updated)
                    .await?;
                core.auditor
                    .append(
                        actor,
                        ACTION_CAMPAIGN,
                        id,
                        true,
                        &format!(
                            "resumed by {actor} (thresholds count from here: {} failed, {} \
                             updated so far)",
                            counts.failed, counts.updated
                        ),
                    )
                    .await;
            }
            changed
        }
        _ => {
            return Err(CampaignError::UnknownAction {
                action: action.to_string(),
            });
        }
    };
    if !changed {
        return Err(CampaignError::WrongState {
            id: id.to_string(),
            state: c.state.to_string(),
            action: action.to_string(),
        });
    }
    core.updates.wake();
    let c = campaign_or_404(core, id).await?;
    campaign_json(core, &c).await
}

/// Roll back what campaign `id` did: a new campaign with `release_id` (the previous release's
/// image, re-signed with a newer sequence) for every device it updated. An active campaign `id`
/// is aborted first.
pub(crate) async fn rollback(
    core: &Core,
    id: &str,
    release_id: &str,
    actor: &str,
) -> Result<CampaignJson, CampaignError> {
    let _guard = core.updates.lock.lock().await;
    let c = campaign_or_404(core, id).await?;
    let rollback = release_or_refuse(core, release_id).await?;
    if let Some(why) = expired(&rollback, unix_now()) {
        return Err(why);
    }
    let source = release_or_refuse(core, &c.release_id).await?;
    if rollback.device_class != source.device_class {
        return Err(CampaignError::RollbackClass {
            release: rollback.id.clone(),
            class: rollback.device_class.clone(),
            campaign: id.to_string(),
            campaign_class: source.device_class.clone(),
        });
    }
    if rollback.sequence <= source.sequence {
        return Err(CampaignError::RollbackNotNewer {
            release: rollback.id.clone(),
            sequence: rollback.sequence,
            source_release: source.id.clone(),
            source_sequence: source.sequence,
        });
    }
    // The previous release: the newest earlier release of the class that a campaign actually
    // put on devices (a release never rolled out, or one whose campaign failed everywhere, is
    // not a state the fleet was in).
    let mut earlier: Vec<_> = core
        .store
        .releases_of_class(&source.device_class)
        .await?
        .into_iter()
        .filter(|r| r.sequence < source.sequence)
        .collect();
    earlier.sort_by_key(|r| std::cmp::Reverse(r.sequence));
    let previous = newest_deployed(core, earlier).await?;
    let previous = previous.ok_or_else(|| CampaignError::NothingToRollBackTo {
        class: source.device_class.clone(),
        release: source.id.clone(),
    })?;
    if rollback.image_sha256 != previous.image_sha256 {
        return Err(CampaignError::RollbackImage {
            release: rollback.id.clone(),
            sha256: rollback.image_sha256.clone(),
            previous: previous.id.clone(),
            previous_sha256: previous.image_sha256.clone(),
        });
    }
    let updated: Vec<String> = members_of(core, id)
        .await?
        .into_iter()
        .filter(|m| m.state == DeviceUpdateState::Updated)
        .map(|m| m.device_id)
        .collect();
    if updated.is_empty() {
        return Err(CampaignError::NothingUpdated { id: id.to_string() });
    }
    let mut spec = CampaignSpec::of(&c)?;
    spec.canary = 0;
    spec.waves = vec!["100%".into()];
    spec.tags = Vec::new();
    spec.devices = Some(updated);
    if c.state.is_active() {
        abort(
            core,
            &c,
            actor,
            &format!("rolled back by {actor} with release {}", rollback.id),
            unix_now(),
        )
        .await?;
    }
    start(core, &rollback, spec, actor, Some(id)).await
}

/// The first of `releases` (newest first) that a campaign has updated a device to.
async fn newest_deployed(
    core: &Core,
    releases: Vec<Release>,
) -> Result<Option<Release>, CampaignError> {
    let campaigns = core.store.list_campaigns().await?;
    for r in releases {
        for other in campaigns.iter().filter(|o| o.release_id == r.id) {
            let members = members_of(core, &other.id).await?;
            if members
                .iter()
                .any(|m| m.state == DeviceUpdateState::Updated)
            {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}

/// Heal quarantined device `device_id`: a campaign, for that device alone, of the last good
/// release of its class (the newest that a campaign has updated a device to). The device must
/// install it and attest its measurement over a fresh nonce; the engine then puts it on
/// probation (`crate::response`), after which it leaves quarantine. `force` (after a failed
/// reattest: the device's measurement is in doubt) installs the good release even when the
/// registry says the device runs it already.
pub(crate) async fn heal(
    core: &Core,
    device_id: &str,
    actor: &str,
    force: bool,
) -> Result<CampaignJson, CampaignError> {
    let device = core
        .store
        .device(device_id)
        .await?
        .ok_or_else(|| CampaignError::NotFound {
            id: device_id.to_string(),
        })?;
    if !device.quarantined {
        return Err(CampaignError::NotQuarantined {
            device: device_id.to_string(),
        });
    }
    let mut releases = core.store.releases_of_class(&device.device_class).await?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.sequence));
    let good =
        newest_deployed(core, releases)
            .await?
            .ok_or_else(|| CampaignError::NoGoodRelease {
                class: device.device_class.clone(),
            })?;
    if !force
        && device
            .reference_measurements
            .last()
            .is_some_and(|m| m.digest_hex == good.measurement.digest_hex)
    {
        return Err(CampaignError::AlreadyGood {
            device: device_id.to_string(),
            release: good.id.clone(),
        });
    }
    if let Some(why) = expired(&good, unix_now()) {
        return Err(why);
    }
    let spec = CampaignSpec {
        tags: Vec::new(),
        canary: 1,
        waves: vec!["100%".into()],
        device_timeout_s: 600,
        max_failures: 1,
        max_failure_rate: 100,
        min_sample: 1,
        on_threshold: crate::protocol::OnThreshold::Abort,
        devices: Some(vec![device_id.to_string()]),
        heal: true,
    };
    let _guard = core.updates.lock.lock().await;
    start(core, &good, spec, actor, None).await
}

/// A campaign as the API shows it.
pub(crate) async fn view(core: &Core, id: &str) -> Result<CampaignJson, CampaignError> {
    let c = campaign_or_404(core, id).await?;
    campaign_json(core, &c).await
}

async fn campaign_or_404(core: &Core, id: &str) -> Result<Campaign, CampaignError> {
    core.store
        .campaign(id)
        .await?
        .ok_or_else(|| CampaignError::NotFound { id: id.to_string() })
}

async fn release_or_refuse(core: &Core, id: &str) -> Result<Release, CampaignError> {
    core.store
        .release(id)
        .await?
        .ok_or_else(|| CampaignError::NoRelease { id: id.to_string() })
}

fn new_campaign_id() -> Result<String, CampaignError> {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).map_err(|_| CampaignError::Random)?;
    Ok(format!("cmp-{}", hex::encode(b)))
}
