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

mod actions;
mod device;
mod error;
mod plan;
mod report;
mod tick;
mod view;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use castellan_store::{
    Campaign, CampaignDevice, CampaignState, Device, DeviceUpdateState, Release,
};
use tokio::sync::{Mutex, Notify, mpsc, watch};

pub(crate) use actions::{act, create, heal, preview, rollback, view};
pub(crate) use device::image_of;
pub use error::{CampaignError, SpecError};
pub(crate) use plan::CampaignSpec;
pub use report::ReportRefusal;
pub(crate) use view::campaign_json;

use crate::core::Core;
use crate::protocol::{Cancel, HttpsSource, Offer, WireMessage as _, topics};
use crate::router::UpdateMessage;

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

/// Audit code of a device failed because its campaign was aborted.
const FAIL_ABORTED: &str = "update.campaign_aborted";
/// Audit code of a device failed for want of progress.
const FAIL_TIMEOUT: &str = "update.timeout";
/// Audit code of a device that reported its update failed.
const FAIL_REPORTED: &str = "update.device_failed";
/// Audit code of a device whose trial image was reverted.
const FAIL_REVERTED: &str = "update.reverted";

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
        let ticked = crate::lease::on_duty(&core, crate::lease::Duty::Campaigns, tick::tick(&core));
        if let Some(Err(e)) = ticked.await {
            log::warn!("campaign engine: {e}");
        }
    }
}

/// Handle the devices' update messages in order (one device's reports must not overtake each
/// other).
pub(crate) async fn run_messages(core: Arc<Core>, mut rx: mpsc::Receiver<UpdateMessage>) {
    while let Some(msg) = rx.recv().await {
        let _guard = core.updates.lock.lock().await;
        device::handle(&core, &msg).await;
    }
}

pub(super) async fn members_of(
    core: &Core,
    campaign_id: &str,
) -> Result<Vec<CampaignDevice>, CampaignError> {
    Ok(core.store.campaign_devices(campaign_id).await?)
}

/// Whether a device can be offered an update now: it has a live session subscribed to its offer
/// topic. A connection alone is not enough: a device connected with its IDevID (onboarding) may
/// not subscribe there, and between CONNACK and SUBACK an offer would be lost. A device whose
/// session is on another instance's broker counts as listening: the offer goes through the
/// store's outbox, and that instance publishes it once the device is subscribed.
pub(super) async fn listening(core: &Core, device_id: &str) -> bool {
    core.is_subscribed(device_id, &topics::update_offer(device_id))
        .await
        || core.remote_presence(device_id).await.is_some()
}

/// Record whether a device is online; returns whether it was at the last look.
pub(super) fn mark_online(core: &Core, device_id: &str, online: bool) -> bool {
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
pub(super) async fn offer(
    core: &Core,
    c: &Campaign,
    release: &Release,
    device_id: &str,
    now: i64,
) -> bool {
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
        .deliver(
            device_id,
            &topics::update_offer(device_id),
            body.to_payload(),
        )
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
pub(super) fn cohort(
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
        .filter(|d| {
            if spec.heal {
                d.quarantined && usable(core, d)
            } else {
                eligible(core, d)
            }
        })
        .filter(|d| {
            // A heal installs the good release whatever the registry says the device runs (a
            // failed reattest put that in doubt).
            spec.heal
                || d.reference_measurements
                    .last()
                    .is_none_or(|m| m.digest_hex != release.measurement.digest_hex)
        })
        .map(|d| d.id.clone())
        .collect();
    out.sort();
    out
}

/// Onboarded, not quarantined, revoked or decommissioned.
pub(crate) fn eligible(core: &Core, d: &Device) -> bool {
    !d.quarantined && usable(core, d)
}

/// Onboarded, not revoked or decommissioned (quarantined or not).
fn usable(core: &Core, d: &Device) -> bool {
    let revoked = |serial: &str| {
        crate::authz::serial_bytes(&crate::authz::normalize_serial(serial))
            .is_some_and(|s| core.revocations.is_revoked(&s))
    };
    d.ldevid_serial.is_some()
        && d.onboarded_at.is_some()
        && d.lifecycle != LIFECYCLE_DECOMMISSIONED
        && !revoked(&d.idevid_serial)
        && !d.ldevid_serial.as_deref().is_some_and(revoked)
}

/// Fail a device (if not finished) and audit it, with the failure's stable `code`.
pub(crate) async fn fail_device(
    core: &Core,
    c: &Campaign,
    device_id: &str,
    code: &str,
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
            core.auditor
                .append_coded(
                    "system",
                    ACTION_DEVICE,
                    device_id,
                    false,
                    Some(code),
                    &format!("campaign {}: failed: {reason}", c.id),
                )
                .await;
            core.updates.wake();
        }
        Ok(false) => {}
        Err(e) => log::warn!("campaign {}: cannot fail {device_id}: {e}", c.id),
    }
}

pub(super) async fn audit_device(core: &Core, device_id: &str, allowed: bool, reason: &str) {
    core.auditor
        .append("system", ACTION_DEVICE, device_id, allowed, reason)
        .await;
}

/// Pause every running campaign of `class`'s release `version` (the fleet's analysis saw the
/// release's whole cohort turn anomalous); how many were paused.
pub(crate) async fn pause_release(
    core: &Core,
    class: &str,
    version: &str,
    reason: &str,
) -> Result<u32, CampaignError> {
    let _guard = core.updates.lock.lock().await;
    let mut paused = 0;
    for c in core.store.active_campaigns().await? {
        if c.device_class != class || c.state != CampaignState::Running {
            continue;
        }
        let release = core.store.release(&c.release_id).await?;
        if release.is_some_and(|r| r.version == version)
            && pause(core, &c, "system", reason, castellan_store::unix_now()).await?
        {
            paused += 1;
        }
    }
    core.updates.wake();
    Ok(paused)
}

pub(super) async fn pause(
    core: &Core,
    c: &Campaign,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<bool, CampaignError> {
    let changed = core
        .store
        .transition_campaign(
            &c.id,
            &[CampaignState::Running],
            CampaignState::Paused,
            Some(reason),
            now,
        )
        .await?;
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
pub(super) async fn abort(
    core: &Core,
    c: &Campaign,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<bool, CampaignError> {
    let changed = core
        .store
        .transition_campaign(
            &c.id,
            &[CampaignState::Running, CampaignState::Paused],
            CampaignState::Aborted,
            Some(reason),
            now,
        )
        .await?;
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
                .deliver(
                    &m.device_id,
                    &topics::update_cancel(&m.device_id),
                    body.to_payload(),
                )
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
                FAIL_ABORTED,
                &format!("campaign aborted: {reason}"),
                now,
            )
            .await;
        }
    }
    Ok(true)
}

/// Why `release` cannot be rolled out any more, if it expired.
pub(super) fn expired(release: &Release, now: i64) -> Option<CampaignError> {
    release
        .expires_at
        .filter(|at| *at <= now)
        .map(|at| CampaignError::Expired {
            release: release.id.clone(),
            at,
            now,
        })
}
