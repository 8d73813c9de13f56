//! A campaign as the operator API shows it ([`CampaignJson`]): settings, state, current wave,
//! per-state counts, failure rate and every device.

use castellan_store::Campaign;

use super::CampaignError;
use super::plan::{self, CampaignSpec};
use crate::core::Core;
use crate::protocol::{CampaignDeviceJson, CampaignJson};

/// The JSON view of `c`, with its devices read from the store.
pub(crate) async fn campaign_json(
    core: &Core,
    c: &Campaign,
) -> Result<CampaignJson, CampaignError> {
    let spec = CampaignSpec::of(c)?;
    let members = core.store.campaign_devices(&c.id).await?;
    let counts = plan::count(&members);
    Ok(CampaignJson {
        campaign_id: c.id.clone(),
        release_id: c.release_id.clone(),
        device_class: c.device_class.clone(),
        tags: spec.tags,
        state: c.state.as_str().into(),
        wave: c.wave,
        waves: spec.waves,
        canary: spec.canary,
        failure_rate: plan::failure_rate(&counts),
        counts,
        reason: c.reason.clone(),
        rollback_of: c.rollback_of.clone(),
        device_timeout_s: spec.device_timeout_s,
        max_failures: spec.max_failures,
        max_failure_rate: spec.max_failure_rate,
        min_sample: spec.min_sample,
        on_threshold: spec.on_threshold,
        created_at: c.created_at,
        created_by: c.created_by.clone(),
        updated_at: c.updated_at,
        devices: members
            .into_iter()
            .map(|m| CampaignDeviceJson {
                device_id: m.device_id,
                state: m.state.as_str().into(),
                wave: m.wave,
                reason: m.reason,
                offset: m.offset,
                updated_at: m.updated_at,
            })
            .collect(),
    })
}
