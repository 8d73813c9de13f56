//! What the fleet does about a finding: raise (or update) the alert with its evidence, audit
//! it, and follow the device class's response policy — quarantine at once on a high alert,
//! within an hourly cap, then heal as the heal policy says (`heal`) — or pause the
//! campaigns of a release whose whole cohort shifted.

use std::collections::{HashMap, HashSet, VecDeque};

use castellan_analysis::{CohortShift, DeviceFinding, Severity, Signal};
use castellan_store::{Alert, AlertState, ResponsePolicy, StoreError, unix_now};

use crate::core::Core;

/// The policy of a class that has none set: quarantine automatically, at most three devices an
/// hour (beyond that a false signal must not take half the fleet off the network).
pub(crate) fn default_policy(class: &str) -> ResponsePolicy {
    ResponsePolicy {
        device_class: class.to_owned(),
        auto_quarantine: true,
        max_quarantines_per_hour: 3,
        updated_at: 0,
        updated_by: "default".into(),
    }
}

/// The responder's memory between windows.
#[derive(Debug, Default)]
pub(crate) struct Responder {
    /// Automatic quarantines per class in the last hour (their times).
    quarantines: HashMap<String, VecDeque<i64>>,
    /// Cohort shifts alerted already (until the cohort is learned again).
    shifts: HashSet<(String, String, Signal)>,
}

impl Responder {
    /// A device that deviates from its peers.
    pub(crate) async fn device(
        &mut self,
        core: &Core,
        f: &DeviceFinding,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        let summary = summary(f);
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into());
        let alert_id = match core.store.unresolved_alert_of(&f.device).await? {
            Some(open) => {
                core.store
                    .update_alert_evidence(&open.id, f.severity.as_str(), &summary, &evidence, now)
                    .await?;
                open.id
            }
            None => {
                let alert = Alert {
                    id: new_alert_id(),
                    device_id: Some(f.device.clone()),
                    device_class: f.cohort.device_class.clone(),
                    release: f.cohort.release.clone(),
                    kind: "device".into(),
                    severity: f.severity.as_str().into(),
                    state: AlertState::Open,
                    summary: summary.clone(),
                    evidence,
                    raised_at: now,
                    updated_at: now,
                    updated_by: None,
                    probation_until: None,
                };
                core.store.raise_alert(&alert).await?;
                super::notify::publish(core, &alert).await;
                log::warn!("alert {}: {} {summary}", alert.id, f.device);
                core.auditor
                    .append(
                        "system",
                        "alert.raise",
                        &f.device,
                        true,
                        &format!("{} ({}): {summary}", alert.id, f.severity.as_str()),
                    )
                    .await;
                alert.id
            }
        };
        if f.severity == Severity::High {
            self.contain(core, f, &alert_id, &summary, now).await?;
        }
        Ok(())
    }

    /// Quarantine the device of a high alert if its class's policy says so and the cap allows.
    async fn contain(
        &mut self,
        core: &Core,
        f: &DeviceFinding,
        alert_id: &str,
        summary: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let class = &f.cohort.device_class;
        let policy = match core.store.response_policy(class).await? {
            Some(p) => p,
            None => default_policy(class),
        };
        if !policy.auto_quarantine {
            return Ok(());
        }
        let recent = self.quarantines.entry(class.clone()).or_default();
        recent.retain(|t| now - t < 3600);
        if recent.len() >= policy.max_quarantines_per_hour as usize {
            core.auditor
                .append(
                    "system",
                    "response.quarantine",
                    &f.device,
                    false,
                    &format!(
                        "{alert_id}: not quarantined automatically: {} devices of class {class} \
                         already this hour (the policy's cap); alert only, an operator decides",
                        recent.len()
                    ),
                )
                .await;
            return Ok(());
        }
        core.store.set_quarantined(&f.device, true).await?;
        recent.push_back(now);
        let closed = core.kick(&f.device).await.unwrap_or(false);
        log::warn!("{}: quarantined automatically ({alert_id})", f.device);
        core.auditor
            .append(
                "system",
                "response.quarantine",
                &f.device,
                true,
                &format!(
                    "{alert_id}: quarantined automatically (update, attestation and report \
                     channels only; {}): {summary}",
                    if closed {
                        "its session was closed and is re-checked"
                    } else {
                        "no open session"
                    }
                ),
            )
            .await;
        self.heal(core, &f.device, alert_id).await;
        Ok(())
    }

    /// After an automatic quarantine: heal at once as the heal policy says (reattest when the
    /// measurement is the good one, the last good release otherwise), or say why not.
    async fn heal(&self, core: &Core, device: &str, alert_id: &str) {
        let (allowed, reason) = match super::heal::heal(core, device, "system").await {
            Ok(super::heal::Healing::Campaign(c)) => (
                true,
                format!(
                    "{alert_id}: heal campaign {} of release {} started",
                    c.campaign_id, c.release_id
                ),
            ),
            Ok(super::heal::Healing::Reattest(r)) => (
                true,
                format!(
                    "{alert_id}: measurement good (run-time compromise): reboot-and-reattest \
                     command sent, token due by {}",
                    r.deadline
                ),
            ),
            Err(e) => (
                false,
                format!("{alert_id}: not healed automatically: {e} [{}]", e.code()),
            ),
        };
        log::info!("{device}: {reason}");
        core.auditor
            .append("system", "response.heal", device, allowed, &reason)
            .await;
    }

    /// A whole cohort moved: one alert per cohort and signal, and its release's running
    /// campaigns paused.
    pub(crate) async fn shift(&mut self, core: &Core, s: &CohortShift) -> Result<(), StoreError> {
        let key = (
            s.cohort.device_class.clone(),
            s.cohort.release.clone(),
            s.signal,
        );
        if !self.shifts.insert(key) {
            return Ok(());
        }
        let now = unix_now();
        let summary = format!(
            "{} devices of {} on {}: {} median {} against a learned {:.1}: a release problem, \
             not a compromise",
            s.devices,
            s.cohort.device_class,
            s.cohort.release,
            s.signal.as_str(),
            s.median,
            s.baseline_median
        );
        let alert = Alert {
            id: new_alert_id(),
            device_id: None,
            device_class: s.cohort.device_class.clone(),
            release: s.cohort.release.clone(),
            kind: "cohort".into(),
            severity: Severity::High.as_str().into(),
            state: AlertState::Open,
            summary: summary.clone(),
            evidence: serde_json::to_string(s).unwrap_or_else(|_| "{}".into()),
            raised_at: now,
            updated_at: now,
            updated_by: None,
            probation_until: None,
        };
        core.store.raise_alert(&alert).await?;
        super::notify::publish(core, &alert).await;
        core.auditor
            .append(
                "system",
                "alert.raise",
                &format!("{}/{}", s.cohort.device_class, s.cohort.release),
                true,
                &format!("{}: {summary}", alert.id),
            )
            .await;
        let paused = crate::campaign::pause_release(
            core,
            &s.cohort.device_class,
            &s.cohort.release,
            &format!("the fleet's analysis: {} ({summary})", alert.id),
        )
        .await;
        if let Err(e) = paused {
            log::warn!("pausing the campaigns of {}: {e}", s.cohort.release);
        }
        Ok(())
    }
}

/// One line: the signals and the peers' values.
fn summary(f: &DeviceFinding) -> String {
    let parts: Vec<String> = f
        .evidence
        .iter()
        .map(|e| {
            format!(
                "{} {} (peers: median {:.1}, {} devices, z {:.0})",
                e.signal.as_str(),
                e.value,
                e.peer_median,
                e.peers,
                e.z
            )
        })
        .collect();
    parts.join("; ")
}

pub(super) fn new_alert_id() -> String {
    let mut b = [0u8; 6];
    // Without randomness the time stands in: ids stay unique per second and device.
    if getrandom::fill(&mut b).is_err() {
        b.copy_from_slice(&unix_now().to_be_bytes()[2..]);
    }
    format!("alr-{}", hex::encode(b))
}
