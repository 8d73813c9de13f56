//! Signed detection reports from devices (`dev/<id>/up/detect/report`): verified with the
//! device's registered attestation key, refused when forged or replayed (counter not above the
//! latest stored), stored with the gap of counters skipped before them, and fed to the fleet's
//! analysis (`DetectorScore`, `ReportGaps`). A gap, a refusal and a score that crosses the
//! device's alarm threshold are each an audit entry.
//!
//! ```text
//!  payload ─▶ iak_public_key(id) ─▶ verify_report ─▶ instance id = 0x01 ‖ SHA-256(IAK)?
//!     ─▶ record_detection (counter > latest, else replay) ─▶ gap > 0: audit + ReportGaps
//!     ─▶ crossed: audit "detect.alarm" · DetectorScore += score
//!     ─▶ device on probation: an alarm, a gap or a replay fails it (`response::probation`)
//! ```

use castellan_analysis::Signal;
use castellan_detect_report::{Report, ReportError, verify_report};
use castellan_store::{NewDetection, StoreError};
use sha2::{Digest, Sha256};

use crate::core::Core;
use crate::response::probation::{self, Verdict};

/// The audit action of every detection-report entry.
pub(crate) const ACTION: &str = "detect.report";

/// Why a report was not stored.
#[derive(Debug)]
enum Refused {
    /// The device has no registered attestation key.
    NoKey,
    /// Forged, malformed or signed by another key.
    Invalid(ReportError),
    /// The report names another instance than the device's key.
    WrongInstance,
    /// The counter is not above the latest stored: a replay.
    Replay(StoreError),
    /// The store failed.
    Store(StoreError),
}

impl Refused {
    fn code(&self) -> &'static str {
        match self {
            Refused::NoKey => "detect.no_key",
            Refused::Invalid(_) | Refused::WrongInstance => "detect.forged",
            Refused::Replay(_) => "detect.replay",
            Refused::Store(_) => "detect.store",
        }
    }

    fn reason(&self) -> String {
        match self {
            Refused::NoKey => "detection report refused: no attestation key registered".into(),
            Refused::Invalid(e) => format!("detection report refused: {e}"),
            Refused::WrongInstance => {
                "detection report refused: it names another attestation instance".into()
            }
            Refused::Replay(e) => format!("detection report refused as a replay: {e}"),
            Refused::Store(e) => format!("detection report not stored: {e}"),
        }
    }
}

/// Handles one report of device `id` received at `now`.
pub(crate) async fn record(core: &Core, id: &str, payload: &[u8], now: i64) {
    let _ = core.store.touch_device(id, now).await;
    match accept(core, id, payload, now).await {
        Ok((report, gap)) => {
            let verdict = if report.crossed {
                Verdict::Alarm(report.score_milli, report.alarm_milli)
            } else if gap > 0 {
                Verdict::Gap(gap)
            } else {
                Verdict::Clean
            };
            core.signals.add(
                id,
                Signal::DetectorScore,
                f64::from(report.score_milli) / 1000.0,
            );
            if gap > 0 {
                core.signals.add(id, Signal::ReportGaps, gap as f64);
                let reason = format!(
                    "{gap} detection report(s) missing before counter {}",
                    report.counter
                );
                audit(core, id, true, "detect.gap", &reason).await;
            }
            if report.crossed {
                let reason = format!(
                    "detector alarm: window score {} crossed the threshold {} (report {})",
                    milli(report.score_milli),
                    milli(report.alarm_milli),
                    report.counter
                );
                audit(core, id, true, "detect.alarm", &reason).await;
            }
            probation::judge(core, id, verdict).await;
        }
        Err(refused) => {
            if matches!(refused, Refused::Replay(_)) {
                core.signals.add(id, Signal::ReportGaps, 1.0);
            }
            log::warn!("{id}: {}", refused.reason());
            audit(core, id, false, refused.code(), &refused.reason()).await;
            if matches!(refused, Refused::Replay(_)) {
                probation::judge(core, id, Verdict::Replay).await;
            }
        }
    }
}

fn milli(v: u32) -> String {
    format!("{}.{:03}", v / 1000, v % 1000)
}

async fn audit(core: &Core, id: &str, allowed: bool, code: &str, reason: &str) {
    core.auditor
        .append_coded(id, ACTION, id, allowed, Some(code), reason)
        .await;
}

async fn accept(core: &Core, id: &str, payload: &[u8], now: i64) -> Result<(Report, u64), Refused> {
    let key = core
        .store
        .iak_public_key(id)
        .await
        .map_err(Refused::Store)?
        .ok_or(Refused::NoKey)?;
    let report = verify_report(payload, &key).map_err(Refused::Invalid)?;
    let mut instance = [0u8; 33];
    instance[0] = 0x01;
    instance[1..].copy_from_slice(&Sha256::digest(&key));
    if report.instance_id != instance {
        return Err(Refused::WrongInstance);
    }
    let new = NewDetection {
        device_id: id.into(),
        counter: report.counter,
        received_at: now,
        first_event: report.first_event,
        events: report.events,
        score_milli: report.score_milli,
        alarm_milli: report.alarm_milli,
        crossed: report.crossed,
        counters: serde_json::to_string(&report.counters).unwrap_or_else(|_| "[]".into()),
        model_digest: hex::encode(report.model_digest),
        report: payload.to_vec(),
    };
    let gap = core
        .store
        .record_detection(&new)
        .await
        .map_err(|e| match e {
            e @ StoreError::ReportNotNewer { .. } => Refused::Replay(e),
            e => Refused::Store(e),
        })?;
    Ok((report, gap))
}
