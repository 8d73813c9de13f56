//! One tick of the engine over the running and paused campaigns: expiry, timeouts, thresholds,
//! cohort changes (leavers, late joiners), offers and re-offers, wave progression, completion.
//! The caller holds the engine lock.

use std::collections::HashSet;

use castellan_store::{
    Campaign, CampaignDevice, CampaignState, Device, DeviceUpdateState, Release, StoreError,
    unix_now,
};

use super::plan::{self, CampaignSpec};
use super::{
    ACTION_CAMPAIGN, CampaignError, FAIL_TIMEOUT, abort, audit_device, cohort, expired,
    fail_device, listening, mark_online, members_of, offer, pause,
};
use crate::core::Core;
use crate::protocol::OnThreshold;

pub(super) async fn tick(core: &Core) -> Result<(), StoreError> {
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
) -> Result<(), CampaignError> {
    let spec = CampaignSpec::of(c)?;
    let release =
        core.store
            .release(&c.release_id)
            .await?
            .ok_or_else(|| CampaignError::ReleaseMissing {
                id: c.release_id.clone(),
            })?;
    // An expired release: devices refuse it, nothing more can succeed.
    if let Some(why) = expired(&release, now) {
        abort(core, c, "system", &why.to_string(), now).await?;
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
            fail_device(core, c, &m.device_id, FAIL_TIMEOUT, &reason, now).await;
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
        .await?
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
            if listening(core, &m.device_id).await {
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
            core.store.set_campaign_wave(&c.id, wave, now).await?;
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
            .await?;
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
        let connected = listening(core, &m.device_id).await;
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
