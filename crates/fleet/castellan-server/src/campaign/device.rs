//! The device side of a campaign: progress reports, MQTT chunk requests and the post-update
//! attestation, from the messages devices publish under `dev/<id>/up/update/…`.
//!
//! ```text
//!  status   ─▶ current campaign? (else ignored + audited) ─▶ progress (never backwards)
//!              confirmed ─▶ nonce (store) ─▶ down/update/challenge
//!              failed / reverted ─▶ device failed
//!  fetch    ─▶ current campaign's release, device in progress, offset ≤ size
//!              ─▶ down/update/chunk/<release_id>: offset (u64 BE) ‖ ≤ chunk_size bytes
//!  evidence ─▶ token signed by the IAK registered at the factory, over the outstanding nonce
//!              (single use), every component as the registry expects with the last one the
//!              release's measurement (digest, signer id, version, exactly)
//!              ─▶ updated: registry gets the new firmware version and reference measurements
//!              ─▶ down/update/result
//! ```
//!
//! "Current campaign" is the running or paused campaign the device is a member of; a report
//! naming any other campaign (an earlier one, replayed) changes nothing and is audited.

use std::sync::Arc;

use castellan_store::{
    AttestationStatus, Campaign, CampaignDevice, DeviceUpdateState, ReferenceMeasurement, Release,
    unix_now,
};

use super::CampaignSpec;
use super::report::{ReportRefusal, refuse};
use super::{
    ACTION_DEVICE, ACTION_FETCH, ACTION_REPORT, CampaignError, FAIL_REPORTED, FAIL_REVERTED,
    fail_device,
};
use crate::appraisal;
use crate::core::Core;
use crate::protocol::{
    Fetch, Status, UpdateChallenge, UpdateEvidence, UpdateResult, UpdateState, UpdateUpKind,
    WireMessage as _, encode_chunk, topics,
};
use crate::router::UpdateMessage;

/// Handle one message a device published under `dev/<id>/up/update/`.
pub(crate) async fn handle(core: &Core, msg: &UpdateMessage) {
    let id = msg.device_id.as_str();
    let now = unix_now();
    match msg.kind {
        UpdateUpKind::Status => status(core, id, &msg.payload, now).await,
        UpdateUpKind::Fetch => fetch(core, id, &msg.payload, now).await,
        UpdateUpKind::Evidence => evidence(core, id, &msg.payload, now).await,
    }
    let _ = core.store.touch_device(id, now).await;
}

/// The image of a release (cached: images do not change).
pub(crate) async fn image_of(core: &Core, release_id: &str) -> Result<Arc<Vec<u8>>, CampaignError> {
    if let Some(img) = core
        .updates
        .images
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(release_id)
    {
        return Ok(img.clone());
    }
    let img = core.store.release_image(release_id).await?.ok_or_else(|| {
        CampaignError::ReleaseMissing {
            id: release_id.to_string(),
        }
    })?;
    let img = Arc::new(img);
    core.updates
        .images
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(release_id.to_string(), img.clone());
    Ok(img)
}

/// The device's current campaign and membership when `campaign_id` is it and the device is
/// not finished; otherwise the report is refused (audited) and `None` returned.
async fn current(
    core: &Core,
    id: &str,
    campaign_id: &str,
    what: &'static str,
) -> Option<(Campaign, CampaignDevice)> {
    let found = match core.store.active_campaign_of_device(id).await {
        Ok(f) => f,
        Err(e) => {
            log::warn!("{id}: {what} for campaign {campaign_id} not handled: {e}");
            return None;
        }
    };
    let campaign = campaign_id.to_string();
    let refusal = match &found {
        None => ReportRefusal::NoCampaign { what, campaign },
        Some((c, _)) if c.id != campaign_id => ReportRefusal::NotCurrent {
            what,
            campaign,
            current: c.id.clone(),
        },
        Some((_, m)) if m.state.is_terminal() => ReportRefusal::Finished {
            what,
            campaign,
            state: m.state,
        },
        Some((_, m)) if m.state == DeviceUpdateState::Pending => {
            ReportRefusal::NotOffered { what, campaign }
        }
        Some(_) => return found,
    };
    refuse(core, id, ACTION_REPORT, campaign_id, &refusal).await;
    None
}

/// Position of a state in the flow (progress never goes backwards).
fn rank(s: DeviceUpdateState) -> u8 {
    match s {
        DeviceUpdateState::Pending => 0,
        DeviceUpdateState::Offered => 1,
        DeviceUpdateState::Downloading => 2,
        DeviceUpdateState::Installing => 3,
        DeviceUpdateState::Rebooting => 4,
        DeviceUpdateState::Confirming => 5,
        DeviceUpdateState::Updated | DeviceUpdateState::Failed => 6,
    }
}

async fn status(core: &Core, id: &str, payload: &[u8], now: i64) {
    let s: Status = match serde_json::from_slice(payload) {
        Ok(s) => s,
        Err(source) => {
            let refusal = ReportRefusal::Malformed {
                message: "status",
                source,
            };
            return refuse(core, id, ACTION_REPORT, id, &refusal).await;
        }
    };
    let Some((c, m)) = current(core, id, &s.campaign_id, "status report").await else {
        return;
    };
    if s.release_id != c.release_id {
        let refusal = ReportRefusal::WrongRelease {
            release: s.release_id.clone(),
            campaign: c.id.clone(),
            rolls_out: c.release_id.clone(),
        };
        return refuse(core, id, ACTION_REPORT, &c.id, &refusal).await;
    }
    let detail = s.reason.as_deref().unwrap_or("no reason given");
    let next = match s.state {
        UpdateState::Accepted | UpdateState::Downloading | UpdateState::Downloaded => {
            DeviceUpdateState::Downloading
        }
        UpdateState::Installing => DeviceUpdateState::Installing,
        UpdateState::Rebooting => DeviceUpdateState::Rebooting,
        UpdateState::Confirmed => DeviceUpdateState::Confirming,
        UpdateState::Failed => {
            let reason = format!("the device reported failed: {detail}");
            return fail_device(core, &c, id, FAIL_REPORTED, &reason, now).await;
        }
        UpdateState::Reverted => {
            let reason = format!("the trial image was reverted: {detail}");
            return fail_device(core, &c, id, FAIL_REVERTED, &reason, now).await;
        }
    };
    if rank(next) < rank(m.state) {
        log::info!(
            "{id}: campaign {}: {} report after {} ignored (progress never goes back)",
            c.id,
            s.state.as_str(),
            m.state
        );
        return;
    }
    if next == DeviceUpdateState::Confirming {
        // A fresh challenge each time the device says confirmed (it may have missed one).
        match core.store.issue_update_nonce(&c.id, id, now).await {
            Ok(Some(nonce)) => {
                let body = UpdateChallenge {
                    campaign_id: c.id.clone(),
                    nonce: hex::encode(nonce),
                };
                if let Err(e) = core
                    .deliver(id, &topics::update_challenge(id), body.to_payload())
                    .await
                {
                    log::warn!("{id}: cannot send the update challenge: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("{id}: cannot issue an update nonce: {e}"),
        }
        return;
    }
    let release_size = core
        .store
        .release(&c.release_id)
        .await
        .ok()
        .flatten()
        .map_or(u64::MAX, |r| r.image_size);
    if let Err(e) = core
        .store
        .record_campaign_progress(&c.id, id, next, s.offset.min(release_size), None, now)
        .await
    {
        log::warn!("{id}: progress not recorded: {e}");
    }
}

async fn fetch(core: &Core, id: &str, payload: &[u8], now: i64) {
    let f: Fetch = match serde_json::from_slice(payload) {
        Ok(f) => f,
        Err(source) => {
            let refusal = ReportRefusal::Malformed {
                message: "fetch",
                source,
            };
            return refuse(core, id, ACTION_FETCH, id, &refusal).await;
        }
    };
    let found = core
        .store
        .active_campaign_of_device(id)
        .await
        .ok()
        .flatten();
    let refusal = match found {
        Some((c, m)) if c.release_id == f.release_id && m.state.is_in_progress() => {
            return serve_fetch(core, id, &f, &c, &m, now).await;
        }
        Some((c, _)) if c.release_id != f.release_id => ReportRefusal::FetchWrongRelease {
            release: f.release_id.clone(),
            campaign: c.id,
            rolls_out: c.release_id,
        },
        Some((c, m)) => ReportRefusal::FetchNotInProgress {
            release: f.release_id.clone(),
            state: m.state,
            campaign: c.id,
        },
        None => ReportRefusal::FetchNoCampaign {
            release: f.release_id.clone(),
        },
    };
    refuse(core, id, ACTION_FETCH, &f.release_id, &refusal).await;
}

/// Answer a fetch of a device downloading its campaign's release `c`.
async fn serve_fetch(core: &Core, id: &str, f: &Fetch, c: &Campaign, m: &CampaignDevice, now: i64) {
    let image = match image_of(core, &f.release_id).await {
        Ok(i) => i,
        Err(e) => return log::warn!("{id}: fetch not served: {e}"),
    };
    let size = image.len() as u64;
    if f.offset > size {
        let refusal = ReportRefusal::PastEnd {
            offset: f.offset,
            release: f.release_id.clone(),
            size,
        };
        return refuse(core, id, ACTION_FETCH, &f.release_id, &refusal).await;
    }
    let max = u64::from(f.length.min(core.config.update_chunk_size.max(1)));
    let end = size.min(f.offset.saturating_add(max));
    let bytes = usize::try_from(f.offset)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(a, b)| image.get(a..b))
        .unwrap_or_default();
    if let Err(e) = core
        .publish(
            &topics::update_chunk(id, &f.release_id),
            encode_chunk(f.offset, bytes),
        )
        .await
    {
        log::warn!("{id}: cannot send a chunk: {e}");
    }
    // Progress, at most one write per second per device.
    let moved = m.state == DeviceUpdateState::Offered
        || (m.state == DeviceUpdateState::Downloading && m.updated_at != now);
    if moved {
        let _ = core
            .store
            .record_campaign_progress(&c.id, id, DeviceUpdateState::Downloading, end, None, now)
            .await;
    }
}

async fn evidence(core: &Core, id: &str, payload: &[u8], now: i64) {
    let ev: UpdateEvidence = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(source) => {
            let refusal = ReportRefusal::Malformed {
                message: "evidence",
                source,
            };
            return refuse(core, id, ACTION_REPORT, id, &refusal).await;
        }
    };
    let Some((c, m)) = current(core, id, &ev.campaign_id, "evidence").await else {
        return;
    };
    if m.state != DeviceUpdateState::Confirming {
        let refusal = ReportRefusal::NotConfirmed {
            campaign: c.id.clone(),
            state: m.state,
        };
        return refuse(core, id, ACTION_REPORT, &c.id, &refusal).await;
    }
    let release = match core.store.release(&c.release_id).await {
        Ok(Some(r)) => r,
        _ => return log::warn!("{id}: release {} unavailable", c.release_id),
    };
    let result = match appraisal::after_update(&core.store, id, &c.id, &release, &ev.token).await {
        Ok(refs) => {
            let finished = core
                .store
                .finish_campaign_device(&c.id, id, DeviceUpdateState::Updated, None, now)
                .await
                .unwrap_or(false);
            if finished {
                record_update(core, id, &release, &refs).await;
                core.auditor
                    .append(
                        "system",
                        ACTION_DEVICE,
                        id,
                        true,
                        &format!(
                            "campaign {}: updated: attested release {} ({} {} digest {})",
                            c.id,
                            release.id,
                            release.measurement.mtype,
                            release.measurement.version,
                            release.measurement.digest_hex
                        ),
                    )
                    .await;
                if CampaignSpec::of(&c).is_ok_and(|s| s.heal) {
                    crate::response::start_probation(core, id, &c.id, &release.id, now).await;
                }
                core.updates.wake();
            }
            UpdateResult {
                campaign_id: c.id.clone(),
                updated: finished,
                reason: None,
                code: None,
            }
        }
        Err(refusal) => {
            let code = refusal.code();
            let reason = format!("post-update attestation failed: {refusal}");
            core.observed.attestation("update", false);
            fail_device(core, &c, id, code, &reason, now).await;
            if let Err(e) = core
                .store
                .set_attestation(id, AttestationStatus::Failed, Some(&reason))
                .await
            {
                log::warn!("{id}: attestation status not recorded: {e}");
            }
            UpdateResult {
                campaign_id: c.id.clone(),
                updated: false,
                reason: Some(reason),
                code: Some(code.to_string()),
            }
        }
    };
    if let Err(e) = core
        .deliver(id, &topics::update_result(id), result.to_payload())
        .await
    {
        log::warn!("{id}: cannot send the update result: {e}");
    }
}

/// The registry now expects the release: firmware version, reference measurements, status.
async fn record_update(core: &Core, id: &str, release: &Release, refs: &[ReferenceMeasurement]) {
    core.observed.attestation("update", true);
    let note = format!("post-update token shows release {}", release.id);
    let results = [
        core.store.set_reference_measurements(id, refs).await,
        core.store.set_firmware_version(id, &release.version).await,
        core.store
            .set_attestation(id, AttestationStatus::Passed, Some(&note))
            .await,
    ];
    for r in results {
        if let Err(e) = r {
            log::error!("{id}: updated, but the registry was not updated: {e}");
        }
    }
}
