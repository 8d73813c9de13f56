//! The campaign engine: rolls a release out to a cohort, wave by wave, gated on health.
//!
//! ```text
//!  every tick (ServerConfig::campaign_tick) and after each finished device / operator action:
//!   for each running or paused campaign (state in the store: a restart resumes it):
//!     release expired ─▶ abort
//!     timeouts ─▶ in-progress devices without progress for device_timeout_s fail
//!     thresholds ─▶ failed ≥ max_failures, or failed/(failed+updated) ≥ rate once ≥ min_sample
//!                   (both since the last resume) ─▶ pause or abort, reason recorded
//!     running only:
//!       cohort ─▶ class + all tags, onboarded, not quarantined/revoked/decommissioned, not
//!                 already on the release; pending devices that left are dropped, newcomers
//!                 join the current wave
//!       offers ─▶ pending devices of waves ≤ current that are online: Offer (manifest, HTTPS
//!                 URL + per-device token); in-progress devices that came back online: again
//!       waves  ─▶ every device of waves ≤ current finished ─▶ next wave, or completed
//!  device messages (device.rs): status, fetch (chunks), evidence (post-update appraisal)
//! ```
//!
//! One lock serialises the engine's ticks, the device messages and the operators' campaign
//! actions, so that a decision is never taken on a state another task is changing. Every
//! state change of a campaign and every device decision is audited.

mod device;
mod plan;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use castellan_broker::DeviceMessage;
use castellan_store::{
    Campaign, CampaignDevice, CampaignState, Device, DeviceUpdateState, NewCampaign, Release,
    StoreError, unix_now,
};
use tokio::sync::{Mutex, Notify, mpsc, watch};

pub(crate) use device::image_of;
pub(crate) use plan::CampaignSpec;
pub(crate) use view::campaign_json;

use crate::api::ApiError;
use crate::core::Core;
use crate::protocol::{
    CampaignJson, CampaignRequest, Cancel, HttpsSource, Offer, OnThreshold, topics,
};

/// Audit action: a campaign was created, changed state or wave.
pub const ACTION_CAMPAIGN: &str = "update.campaign";
/// Audit action: the engine decided on a device (offered, updated, failed, joined, left).
pub const ACTION_DEVICE: &str = "update.device";
/// Audit action: a device's report was ignored.
pub const ACTION_REPORT: &str = "update.report";
/// Audit action: an MQTT chunk request was refused.
pub const ACTION_FETCH: &str = "update.fetch";
/// Audit action: an HTTPS image download was refused.
pub const ACTION_DOWNLOAD: &str = "update.download";

/// PSA lifecycle "decommissioned".
const LIFECYCLE_DECOMMISSIONED: u32 = 0x6000;

/// The engine's in-memory state (everything that matters is in the store).
#[derive(Default)]
pub(crate) struct EngineState {
    lock: Mutex<()>,
    wake: Notify,
    online: std::sync::Mutex<HashSet<String>>,
    images: std::sync::Mutex<HashMap<String, Arc<Vec<u8>>>>,
    api_base: OnceLock<String>,
}

impl EngineState {
    /// Set the base URL of HTTPS downloads (once the API is bound).
    pub(crate) fn set_api_base(&self, base: String) {
        let _ = self.api_base.set(base);
    }

    /// Run a tick soon.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Tick until `stop` turns true.
pub(crate) async fn run(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(core.config.campaign_tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = core.updates.wake.notified() => {}
            _ = stop.changed() => return,
        }
        let _guard = core.updates.lock.lock().await;
        if let Err(e) = tick(&core).await {
            log::warn!("campaign engine: {e}");
        }
    }
}

/// Handle the devices' update messages in order (one device's reports must not overtake each
/// other).
pub(crate) async fn run_messages(core: Arc<Core>, mut rx: mpsc::Receiver<DeviceMessage>) {
    while let Some(msg) = rx.recv().await {
        let _guard = core.updates.lock.lock().await;
        device::handle(&core, &msg).await;
    }
}

async fn tick(core: &Core) -> Result<(), StoreError> {
    let campaigns = core.store.active_campaigns().await?;
    if campaigns.is_empty() {
        return Ok(());
    }
    let devices = core.store.list_devices().await?;
    let now = unix_now();
    for c in campaigns {
        if let Err(e) = tick_campaign(core, &c, &devices, now).await {
            log::warn!("campaign {}: {e}", c.id);
        }
    }
    Ok(())
}

async fn tick_campaign(
    core: &Core,
    c: &Campaign,
    devices: &[Device],
    now: i64,
) -> Result<(), String> {
    let spec = CampaignSpec::of(c)?;
    let release = core
        .store
        .release(&c.release_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("release {} is missing", c.release_id))?;
    // An expired release: devices refuse it, nothing more can succeed.
    if let Some(why) = expired(&release, now) {
        abort(core, c, "system", &why, now).await?;
        return Ok(());
    }
    let mut members = members_of(core, &c.id).await?;
    // Timeouts.
    let timeout = i64::try_from(spec.device_timeout_s).unwrap_or(i64::MAX);
    for m in members.iter().filter(|m| m.state.is_in_progress()) {
        if now.saturating_sub(m.updated_at) >= timeout {
            let reason = format!(
                "no progress for {} s (last state {})",
                spec.device_timeout_s, m.state
            );
            fail_device(core, c, &m.device_id, &reason, now).await;
        }
    }
    members = members_of(core, &c.id).await?;
    // Thresholds.
    if c.state == CampaignState::Running
        && let Some(why) = spec.crossed(&plan::count(&members), c)
    {
        let reason = format!("threshold crossed: {why}");
        match spec.on_threshold {
            OnThreshold::Pause => {
                pause(core, c, "system", &reason, now).await?;
            }
            OnThreshold::Abort => {
                abort(core, c, "system", &reason, now).await?;
                return Ok(());
            }
        }
    }
    let running = core
        .store
        .campaign(&c.id)
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|c| c.state == CampaignState::Running);
    if !running {
        // Paused: devices in progress continue (a reconnected one gets its offer again).
        reoffer_reconnected(core, c, &release, &members).await;
        return Ok(());
    }
    // Cohort: leavers and late joiners.
    let cohort = cohort(core, devices, c, &spec, &release);
    let in_cohort: HashSet<&str> = cohort.iter().map(String::as_str).collect();
    let known: HashSet<&str> = members.iter().map(|m| m.device_id.as_str()).collect();
    for m in &members {
        if m.state == DeviceUpdateState::Pending && !in_cohort.contains(m.device_id.as_str()) {
            let removed = core
                .store
                .remove_pending_campaign_device(&c.id, &m.device_id)
                .await
                .unwrap_or(false);
            if removed {
                audit_device(
                    core,
                    &m.device_id,
                    true,
                    &format!(
                        "campaign {}: left the cohort before its offer (quarantined, revoked, \
                     retagged or already on the release)",
                        c.id
                    ),
                )
                .await;
            }
        }
    }
    if spec.devices.is_none() {
        for id in cohort.iter().filter(|id| !known.contains(id.as_str())) {
            if core
                .store
                .add_campaign_device(&c.id, id, c.wave, now)
                .await
                .unwrap_or(false)
            {
                audit_device(
                    core,
                    id,
                    true,
                    &format!("campaign {}: joined wave {} (late joiner)", c.id, c.wave),
                )
                .await;
            }
        }
    }
    members = members_of(core, &c.id).await?;
    // Offers and waves.
    reoffer_reconnected(core, c, &release, &members).await;
    let mut wave = c.wave;
    loop {
        for m in members
            .iter_mut()
            .filter(|m| m.wave <= wave && m.state == DeviceUpdateState::Pending)
        {
            if core.is_connected(&m.device_id).await {
                mark_online(core, &m.device_id, true);
                if offer(core, c, &release, &m.device_id, now).await {
                    m.state = DeviceUpdateState::Offered;
                    audit_device(
                        core,
                        &m.device_id,
                        true,
                        &format!(
                            "campaign {}: offered release {} (wave {wave})",
                            c.id, release.id
                        ),
                    )
                    .await;
                }
            }
        }
        let wave_done = members
            .iter()
            .filter(|m| m.wave <= wave)
            .all(|m| m.state.is_terminal());
        if !wave_done {
            break;
        }
        if wave < spec.last_wave() {
            wave += 1;
            core.store
                .set_campaign_wave(&c.id, wave, now)
                .await
                .map_err(|e| e.to_string())?;
            let counts = plan::count(&members);
            core.auditor
                .append(
                    "system",
                    ACTION_CAMPAIGN,
                    &c.id,
                    true,
                    &format!(
                        "wave {wave} started ({} updated, {} failed so far)",
                        counts.updated, counts.failed
                    ),
                )
                .await;
            continue;
        }
        let counts = plan::count(&members);
        let reason = format!(
            "every wave finished: {} updated, {} failed",
            counts.updated, counts.failed
        );
        let done = core
            .store
            .transition_campaign(
                &c.id,
                &[CampaignState::Running],
                CampaignState::Completed,
                Some(&reason),
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
        if done.is_some() {
            core.auditor
                .append(
                    "system",
                    ACTION_CAMPAIGN,
                    &c.id,
                    true,
                    &format!("completed: {reason}"),
                )
                .await;
        }
        break;
    }
    Ok(())
}

async fn members_of(core: &Core, campaign_id: &str) -> Result<Vec<CampaignDevice>, String> {
    core.store
        .campaign_devices(campaign_id)
        .await
        .map_err(|e| e.to_string())
}

/// Offer again to in-progress devices that were offline at the last look and are online now.
async fn reoffer_reconnected(
    core: &Core,
    c: &Campaign,
    release: &Release,
    members: &[CampaignDevice],
) {
    for m in members.iter().filter(|m| {
        matches!(
            m.state,
            DeviceUpdateState::Offered | DeviceUpdateState::Downloading
        )
    }) {
        let connected = core.is_connected(&m.device_id).await;
        let was_online = mark_online(core, &m.device_id, connected);
        if connected && !was_online {
            log::info!(
                "campaign {}: {} is back online: offering again",
                c.id,
                m.device_id
            );
            offer(core, c, release, &m.device_id, unix_now()).await;
        }
    }
}

/// Record whether a device is online; returns whether it was at the last look.
fn mark_online(core: &Core, device_id: &str, online: bool) -> bool {
    let mut set = core
        .updates
        .online
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if online {
        !set.insert(device_id.to_string())
    } else {
        set.remove(device_id)
    }
}

/// Send the offer (a new download token each time). False when the device is not offerable.
async fn offer(core: &Core, c: &Campaign, release: &Release, device_id: &str, now: i64) -> bool {
    let token = match core
        .store
        .offer_campaign_device(&c.id, device_id, now)
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) => return false,
        Err(e) => {
            log::warn!("campaign {}: cannot offer to {device_id}: {e}", c.id);
            return false;
        }
    };
    let https = core.updates.api_base.get().map(|base| HttpsSource {
        url: format!("{base}/api/v1/updates/{}/image", c.id),
        token,
    });
    let body = Offer {
        campaign_id: c.id.clone(),
        release_id: release.id.clone(),
        version: release.version.clone(),
        manifest: hex::encode(&release.manifest),
        image_size: release.image_size,
        chunk_size: core.config.update_chunk_size.max(1),
        https,
    };
    if let Err(e) = core
        .publish(&topics::update_offer(device_id), to_json(&body))
        .await
    {
        log::warn!(
            "campaign {}: cannot send the offer to {device_id}: {e}",
            c.id
        );
    }
    true
}

/// The devices the campaign is for now, sorted by id.
fn cohort(
    core: &Core,
    devices: &[Device],
    c: &Campaign,
    spec: &CampaignSpec,
    release: &Release,
) -> Vec<String> {
    let mut out: Vec<String> = devices
        .iter()
        .filter(|d| d.device_class == c.device_class)
        .filter(|d| spec.tags.iter().all(|t| d.tags.contains(t)))
        .filter(|d| spec.devices.as_ref().is_none_or(|l| l.contains(&d.id)))
        .filter(|d| eligible(core, d))
        .filter(|d| {
            d.reference_measurements
                .last()
                .is_none_or(|m| m.digest_hex != release.measurement.digest_hex)
        })
        .map(|d| d.id.clone())
        .collect();
    out.sort();
    out
}

/// Onboarded, not quarantined, revoked or decommissioned.
fn eligible(core: &Core, d: &Device) -> bool {
    let revoked = |serial: &str| {
        crate::authz::serial_bytes(&crate::authz::normalize_serial(serial))
            .is_some_and(|s| core.revocations.is_revoked(&s))
    };
    d.ldevid_serial.is_some()
        && d.onboarded_at.is_some()
        && !d.quarantined
        && d.lifecycle != LIFECYCLE_DECOMMISSIONED
        && !revoked(&d.idevid_serial)
        && !d.ldevid_serial.as_deref().is_some_and(revoked)
}

/// Fail a device (if not finished) and audit it.
pub(crate) async fn fail_device(
    core: &Core,
    c: &Campaign,
    device_id: &str,
    reason: &str,
    now: i64,
) {
    match core
        .store
        .finish_campaign_device(
            &c.id,
            device_id,
            DeviceUpdateState::Failed,
            Some(reason),
            now,
        )
        .await
    {
        Ok(true) => {
            audit_device(
                core,
                device_id,
                false,
                &format!("campaign {}: failed: {reason}", c.id),
            )
            .await;
            core.updates.wake();
        }
        Ok(false) => {}
        Err(e) => log::warn!("campaign {}: cannot fail {device_id}: {e}", c.id),
    }
}

async fn audit_device(core: &Core, device_id: &str, allowed: bool, reason: &str) {
    core.auditor
        .append("system", ACTION_DEVICE, device_id, allowed, reason)
        .await;
}

async fn pause(
    core: &Core,
    c: &Campaign,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<bool, String> {
    let changed = core
        .store
        .transition_campaign(
            &c.id,
            &[CampaignState::Running],
            CampaignState::Paused,
            Some(reason),
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
    if changed.is_some() {
        core.auditor
            .append(
                actor,
                ACTION_CAMPAIGN,
                &c.id,
                actor != "system",
                &format!("paused: {reason}"),
            )
            .await;
    }
    Ok(changed.is_some())
}

/// End a running or paused campaign: cancel and fail its devices in progress.
async fn abort(
    core: &Core,
    c: &Campaign,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<bool, String> {
    let changed = core
        .store
        .transition_campaign(
            &c.id,
            &[CampaignState::Running, CampaignState::Paused],
            CampaignState::Aborted,
            Some(reason),
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
    if changed.is_none() {
        return Ok(false);
    }
    core.auditor
        .append(
            actor,
            ACTION_CAMPAIGN,
            &c.id,
            actor != "system",
            &format!("aborted: {reason}"),
        )
        .await;
    for m in members_of(core, &c.id).await? {
        if m.state.is_in_progress() {
            let body = Cancel {
                campaign_id: c.id.clone(),
            };
            if let Err(e) = core
                .publish(&topics::update_cancel(&m.device_id), to_json(&body))
                .await
            {
                log::warn!(
                    "campaign {}: cannot send cancel to {}: {e}",
                    c.id,
                    m.device_id
                );
            }
            fail_device(
                core,
                c,
                &m.device_id,
                &format!("campaign aborted: {reason}"),
                now,
            )
            .await;
        }
    }
    Ok(true)
}

/// Create a campaign from an operator's request.
pub(crate) async fn create(
    core: &Core,
    req: &CampaignRequest,
    actor: &str,
) -> Result<CampaignJson, ApiError> {
    let mut spec = CampaignSpec::from_request(req).map_err(ApiError::BadRequest)?;
    for t in &req.tags {
        crate::api::check_name("tag", t)?;
    }
    let release = release_or_refuse(core, &req.release_id).await?;
    if release.device_class != req.device_class {
        return Err(ApiError::Unprocessable(format!(
            "release {} is for class {}, not {}",
            release.id, release.device_class, req.device_class
        )));
    }
    if let Some(why) = expired(&release, unix_now()) {
        return Err(ApiError::Unprocessable(why));
    }
    spec.devices = None;
    let _guard = core.updates.lock.lock().await;
    start(core, &release, spec, actor, None).await
}

/// Insert a campaign with its initial cohort assigned to waves; the engine takes it from there.
async fn start(
    core: &Core,
    release: &Release,
    spec: CampaignSpec,
    actor: &str,
    rollback_of: Option<&str>,
) -> Result<CampaignJson, ApiError> {
    let devices = core.store.list_devices().await?;
    let id = new_campaign_id()?;
    let draft = Campaign {
        id: id.clone(),
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
    };
    let cohort = cohort(core, &devices, &draft, &spec, release);
    if cohort.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "no device is eligible: none of class {}{} is onboarded, not quarantined or revoked, \
             and not already running release {}",
            release.device_class,
            if spec.tags.is_empty() {
                String::new()
            } else {
                format!(" with tags {}", spec.tags.join(", "))
            },
            release.id
        )));
    }
    let members = spec.assign(&cohort);
    let new = NewCampaign {
        id: id.clone(),
        release_id: release.id.clone(),
        device_class: release.device_class.clone(),
        spec: serde_json::to_string(&spec)
            .map_err(|e| ApiError::Internal(format!("campaign settings: {e}")))?,
        rollback_of: rollback_of.map(str::to_string),
        created_by: actor.into(),
    };
    core.store
        .create_campaign(&new, &members, unix_now())
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { key, .. } => ApiError::Conflict(format!(
                "campaign {key} of class {} is running or paused: finish, abort or roll it \
                 back first",
                release.device_class
            )),
            other => other.into(),
        })?;
    core.updates.wake();
    let c = core
        .store
        .campaign(&id)
        .await?
        .ok_or_else(|| ApiError::Internal("the new campaign vanished".into()))?;
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
) -> Result<CampaignJson, ApiError> {
    let _guard = core.updates.lock.lock().await;
    let c = campaign_or_404(core, id).await?;
    let now = unix_now();
    let reason = format!("{action} by {actor}");
    let changed = match action {
        "pause" => pause(core, &c, actor, &reason, now)
            .await
            .map_err(ApiError::Internal)?,
        "abort" => abort(core, &c, actor, &reason, now)
            .await
            .map_err(ApiError::Internal)?,
        "resume" => {
            let counts = plan::count(&members_of(core, id).await.map_err(ApiError::Internal)?);
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
        _ => return Err(ApiError::NotFound(format!("no campaign action {action:?}"))),
    };
    if !changed {
        return Err(ApiError::Conflict(format!(
            "campaign {id} is {}: cannot {action} it",
            c.state
        )));
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
) -> Result<CampaignJson, ApiError> {
    let _guard = core.updates.lock.lock().await;
    let c = campaign_or_404(core, id).await?;
    let rollback = release_or_refuse(core, release_id).await?;
    if let Some(why) = expired(&rollback, unix_now()) {
        return Err(ApiError::Unprocessable(why));
    }
    let source = release_or_refuse(core, &c.release_id).await?;
    if rollback.device_class != source.device_class {
        return Err(ApiError::Unprocessable(format!(
            "release {} is for class {}, campaign {id} for {}",
            rollback.id, rollback.device_class, source.device_class
        )));
    }
    if rollback.sequence <= source.sequence {
        return Err(ApiError::Unprocessable(format!(
            "release {} (sequence {}) is not newer than the campaign's release {} (sequence {}): \
             devices would refuse it",
            rollback.id, rollback.sequence, source.id, source.sequence
        )));
    }
    let previous = core
        .store
        .releases_of_class(&source.device_class)
        .await?
        .into_iter()
        .filter(|r| r.sequence < source.sequence)
        .max_by_key(|r| r.sequence)
        .ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "release {} has no earlier release of class {} to roll back to",
                source.id, source.device_class
            ))
        })?;
    if rollback.image_sha256 != previous.image_sha256 {
        return Err(ApiError::Unprocessable(format!(
            "the image of release {} (SHA-256 {}) is not the image of the previous release {} \
             (SHA-256 {})",
            rollback.id, rollback.image_sha256, previous.id, previous.image_sha256
        )));
    }
    let updated: Vec<String> = members_of(core, id)
        .await
        .map_err(ApiError::Internal)?
        .into_iter()
        .filter(|m| m.state == DeviceUpdateState::Updated)
        .map(|m| m.device_id)
        .collect();
    if updated.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "campaign {id} updated no device: nothing to roll back"
        )));
    }
    let mut spec = CampaignSpec::of(&c).map_err(ApiError::Internal)?;
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
        .await
        .map_err(ApiError::Internal)?;
    }
    start(core, &rollback, spec, actor, Some(id)).await
}

/// A campaign as the API shows it.
pub(crate) async fn view(core: &Core, id: &str) -> Result<CampaignJson, ApiError> {
    let c = campaign_or_404(core, id).await?;
    campaign_json(core, &c).await
}

async fn campaign_or_404(core: &Core, id: &str) -> Result<Campaign, ApiError> {
    core.store
        .campaign(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id:?}")))
}

async fn release_or_refuse(core: &Core, id: &str) -> Result<Release, ApiError> {
    core.store
        .release(id)
        .await?
        .ok_or_else(|| ApiError::Unprocessable(format!("no release {id:?}")))
}

/// Why `release` cannot be rolled out any more, if it expired.
fn expired(release: &Release, now: i64) -> Option<String> {
    release.expires_at.filter(|at| *at <= now).map(|at| {
        format!(
            "release {} expired at {at} (now {now}): devices refuse it",
            release.id
        )
    })
}

fn new_campaign_id() -> Result<String, ApiError> {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).map_err(|_| ApiError::Internal("random source failed".into()))?;
    Ok(format!("cmp-{}", hex::encode(b)))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
