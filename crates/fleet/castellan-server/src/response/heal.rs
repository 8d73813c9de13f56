//! Healing: a quarantined device that installed the last good release and attested its
//! measurement over a fresh nonce (a heal campaign, `campaign::heal`) goes on probation; when
//! the probation ends without the alert being raised again, it leaves quarantine by itself.
//!
//! ```text
//!  heal policy (`heal`): measurement the last good release's ─▶ reattest first (`reattest`)
//!                         otherwise ─▶ heal campaign of the last good release
//!  heal campaign: device updated (attested good measurement) ─▶ start_probation
//!  reattest: fresh token of the good image after a reboot ─▶ start_probation_after
//!     its unresolved alert (or a new one naming the operator's quarantine) gets
//!     probation_until = now + heal_probation; audit "response.heal"
//!  every analysis window: probations ended ─▶ quarantine lifted (session closed, re-checked),
//!     alert resolved by "system", audit "response.release"
//!  a new finding meanwhile ─▶ the alert's evidence is replaced and its probation ends: the
//!     device stays quarantined
//! ```

use castellan_store::{Alert, AlertState, StoreError, unix_now};

use crate::core::Core;

/// How a quarantined device is healed: the policy's choice.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "heal", rename_all = "snake_case")]
pub enum Healing {
    /// Its measurement was not the last good release's: a heal campaign of that release.
    Campaign(Box<crate::protocol::CampaignJson>),
    /// Its measurement was the good one all along (a run-time compromise): the signed
    /// reboot-and-reattest command was sent first.
    Reattest(super::reattest::Started),
}

/// Why a device was not healed.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// The heal campaign was refused.
    #[error(transparent)]
    Campaign(#[from] crate::CampaignError),
    /// The reattest was refused.
    #[error(transparent)]
    Reattest(#[from] super::reattest::ReattestError),
}

impl HealError {
    /// A stable machine code (audit log, API).
    pub fn code(&self) -> &'static str {
        match self {
            HealError::Campaign(e) => e.code(),
            HealError::Reattest(e) => e.code(),
        }
    }
}

/// Heal quarantined device `id` on behalf of `actor`, as the heal policy says: reattest first
/// when its measurement matched the reference (it is the last good release's already, or no
/// release was ever rolled out and its last attestation passed: a run-time compromise), a heal
/// campaign of the last good release otherwise. A failed reattest goes on to the campaign by
/// itself (`reattest`).
pub(crate) async fn heal(core: &Core, id: &str, actor: &str) -> Result<Healing, HealError> {
    match crate::campaign::heal(core, id, actor, false).await {
        Ok(c) => Ok(Healing::Campaign(Box::new(c))),
        Err(crate::CampaignError::AlreadyGood { .. }) => Ok(Healing::Reattest(
            super::reattest::start(core, id, actor).await?,
        )),
        Err(e @ crate::CampaignError::NoGoodRelease { .. }) => {
            let attested = core
                .store
                .device(id)
                .await
                .map_err(crate::CampaignError::Store)?
                .is_some_and(|d| d.attestation == castellan_store::AttestationStatus::Passed);
            if attested {
                Ok(Healing::Reattest(
                    super::reattest::start(core, id, actor).await?,
                ))
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The device `id` was healed by campaign `campaign` with `release`: put it on probation.
pub(crate) async fn start_probation(
    core: &Core,
    id: &str,
    campaign: &str,
    release: &str,
    now: i64,
) {
    let how = format!(
        "healed by campaign {campaign} (release {release} installed, its measurement attested \
         over a fresh nonce)"
    );
    start_probation_after(core, id, &how, now).await;
}

/// The device `id` proved itself good (`how`): put it on probation.
pub(crate) async fn start_probation_after(core: &Core, id: &str, how: &str, now: i64) {
    if let Err(e) = probation(core, id, how, now).await {
        log::warn!("{id}: probation not started: {e}");
    }
}

async fn probation(core: &Core, id: &str, how: &str, now: i64) -> Result<(), StoreError> {
    let until =
        now.saturating_add(i64::try_from(core.config.heal_probation.as_secs()).unwrap_or(i64::MAX));
    let alert_id = match core.store.unresolved_alert_of(id).await? {
        Some(a) => a.id,
        None => {
            // Quarantined by an operator, not by an alert: the probation needs one to hang on.
            let device = core.store.device(id).await?;
            let (class, version) = device
                .map(|d| (d.device_class, d.firmware_version.unwrap_or_default()))
                .unwrap_or_default();
            let alert = Alert {
                id: super::act::new_alert_id(),
                device_id: Some(id.to_owned()),
                device_class: class,
                release: version,
                kind: "device".into(),
                severity: "medium".into(),
                state: AlertState::Open,
                summary: "quarantined by an operator; healed".into(),
                evidence: "[]".into(),
                raised_at: now,
                updated_at: now,
                updated_by: None,
                probation_until: None,
            };
            core.store.raise_alert(&alert).await?;
            alert.id
        }
    };
    core.store.set_alert_probation(&alert_id, until).await?;
    core.auditor
        .append(
            "system",
            "response.heal",
            id,
            true,
            &format!(
                "{alert_id}: {how}; on probation for {} s",
                core.config.heal_probation.as_secs()
            ),
        )
        .await;
    Ok(())
}

/// Every analysis window: lift the quarantine of devices whose probation ended.
pub(crate) async fn release_ended_probations(core: &Core) -> Result<(), StoreError> {
    let now = unix_now();
    for alert in core.store.probations_ended(now).await? {
        let Some(id) = alert.device_id.as_deref() else {
            continue;
        };
        core.store.set_quarantined(id, false).await?;
        let closed = core.kick(id).await.unwrap_or(false);
        core.store
            .set_alert_state(&alert.id, AlertState::Resolved, "system", now)
            .await?;
        log::info!(
            "{id}: probation over, released from quarantine ({})",
            alert.id
        );
        core.auditor
            .append(
                "system",
                "response.release",
                id,
                true,
                &format!(
                    "{}: probation over without a new finding: released from quarantine{}; \
                     alert resolved",
                    alert.id,
                    if closed {
                        " (session closed to apply the device policy)"
                    } else {
                        ""
                    }
                ),
            )
            .await;
    }
    Ok(())
}
