//! Probation judged by the device's own detector: during a healed device's probation, each
//! signed detection report it sends is evidence for or against it. A report whose window score
//! crossed the detector's alarm threshold, reports missing before the latest counter, or a
//! report refused as a replay end the probation: the device stays quarantined, its alert
//! carries the reason as evidence, and the step is audited.
//!
//! ```text
//!  detection report (`crate::detection`) ─▶ verdict: Clean | Alarm | Gap(n) | Replay
//!     device on probation (unresolved alert with probation_until)?
//!       Alarm, Gap, Replay ─▶ alert evidence replaced (probation_until cleared), audit
//!                             "response.probation" refused: stays quarantined
//!       Clean ─▶ nothing: the probation runs on
//! ```

use castellan_analysis::{Evidence, Signal};
use castellan_store::{StoreError, unix_now};

use crate::core::Core;

/// The audit action of a probation the detector's reports ended.
pub const ACTION: &str = "response.probation";

/// What one detection report says about its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Stored, under the alarm threshold, no counter skipped.
    Clean,
    /// Its window score crossed the alarm threshold (score, threshold, in thousandths).
    Alarm(u32, u32),
    /// This many reports are missing before it.
    Gap(u64),
    /// Refused as a replay (its counter not above the latest stored).
    Replay,
}

/// Judge device `id` by `verdict` if it is on probation.
pub(crate) async fn judge(core: &Core, id: &str, verdict: Verdict) {
    if verdict == Verdict::Clean {
        return;
    }
    if let Err(e) = fail_probation(core, id, verdict).await {
        log::warn!("{id}: probation not judged: {e}");
    }
}

async fn fail_probation(core: &Core, id: &str, verdict: Verdict) -> Result<(), StoreError> {
    let Some(alert) = core.store.unresolved_alert_of(id).await? else {
        return Ok(());
    };
    if alert.probation_until.is_none() {
        return Ok(());
    }
    let (signal, value, why) = match verdict {
        Verdict::Clean => return Ok(()),
        Verdict::Alarm(score, alarm) => (
            Signal::DetectorScore,
            f64::from(score) / 1000.0,
            format!(
                "its detector's report crossed the alarm threshold (score {:.3}, threshold {:.3})",
                f64::from(score) / 1000.0,
                f64::from(alarm) / 1000.0
            ),
        ),
        Verdict::Gap(n) => (
            Signal::ReportGaps,
            n as f64,
            format!("{n} detection report(s) missing"),
        ),
        Verdict::Replay => (
            Signal::ReportGaps,
            1.0,
            "a detection report replayed (counter not above the latest)".into(),
        ),
    };
    let evidence = [Evidence {
        signal,
        value,
        peer_median: 0.0,
        peer_scale: 0.0,
        z: 0.0,
        peers: 0,
    }];
    let evidence = serde_json::to_string(&evidence).unwrap_or_else(|_| "[]".into());
    let summary = format!("probation failed: {why}");
    core.store
        .update_alert_evidence(&alert.id, "high", &summary, &evidence, unix_now())
        .await?;
    log::warn!("{id}: {summary}; stays quarantined ({})", alert.id);
    core.auditor
        .append_coded(
            "system",
            ACTION,
            id,
            false,
            Some("probation.failed"),
            &format!(
                "{}: {summary}; probation ended, stays quarantined",
                alert.id
            ),
        )
        .await;
    Ok(())
}
