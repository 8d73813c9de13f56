//! Healing: a quarantined device that installed the last good release and attested its
//! measurement over a fresh nonce (a heal campaign, `campaign::heal`) goes on probation; when
//! the probation ends without the alert being raised again, it leaves quarantine by itself.
//!
//! ```text
//!  heal campaign: device updated (attested good measurement) ─▶ start_probation
//!     its unresolved alert (or a new one naming the operator's quarantine) gets
//!     probation_until = now + heal_probation; audit "response.heal"
//!  every analysis window: probations ended ─▶ quarantine lifted (session closed, re-checked),
//!     alert resolved by "system", audit "response.release"
//!  a new finding meanwhile ─▶ the alert's evidence is replaced and its probation ends: the
//!     device stays quarantined
//! ```

use castellan_store::{Alert, AlertState, StoreError, unix_now};

use crate::core::Core;

/// The device `id` was healed by campaign `campaign` with `release`: put it on probation.
pub(crate) async fn start_probation(
    core: &Core,
    id: &str,
    campaign: &str,
    release: &str,
    now: i64,
) {
    if let Err(e) = probation(core, id, campaign, release, now).await {
        log::warn!("{id}: probation not started: {e}");
    }
}

async fn probation(
    core: &Core,
    id: &str,
    campaign: &str,
    release: &str,
    now: i64,
) -> Result<(), StoreError> {
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
                "{alert_id}: healed by campaign {campaign} (release {release} installed, its \
                 measurement attested over a fresh nonce); on probation for {} s",
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
