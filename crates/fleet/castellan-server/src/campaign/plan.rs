//! The pure rules of a campaign: its stored settings ([`CampaignSpec`]), wave sizes, the
//! assignment of a cohort to waves, per-state counts and the failure thresholds.
//!
//! ```text
//!  cohort (sorted by id), canary c, waves ["25%", "10", "100%"]
//!   cumulative targets: t0 = min(c, n); ti = max(t(i-1), min(n, size_i)), size "p%" = ⌈p·n/100⌉
//!   device k (0-based) belongs to the first wave i with k < ti; beyond the last target: none
//! ```
//!
//! Thresholds count what happened since the campaign was last resumed (the baseline), so that
//! resuming after a pause on threshold gives the next devices a chance instead of pausing
//! again at once.

use castellan_store::{Campaign, CampaignDevice, DeviceUpdateState};
use serde::{Deserialize, Serialize};

use super::error::{CampaignError, SpecError};
use crate::protocol::{CampaignCounts, CampaignRequest, OnThreshold};

/// What a campaign was created with (stored as JSON in the campaign row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CampaignSpec {
    /// Tags every device of the cohort carries.
    pub(crate) tags: Vec<String>,
    /// Canary count (wave 0).
    pub(crate) canary: u32,
    /// The waves after the canary, as requested.
    pub(crate) waves: Vec<String>,
    /// A device without progress for this long fails.
    pub(crate) device_timeout_s: u64,
    /// Failure count threshold (0: none).
    pub(crate) max_failures: u32,
    /// Failure rate threshold, percent.
    pub(crate) max_failure_rate: u32,
    /// Finished devices needed before the rate counts.
    pub(crate) min_sample: u32,
    /// Pause or abort on a threshold.
    pub(crate) on_threshold: OnThreshold,
    /// A fixed device list (rollbacks): no other device joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) devices: Option<Vec<String>>,
    /// A heal: the campaign is for quarantined devices (and only those), which must install
    /// the last good release and attest its measurement; each then goes on probation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) heal: bool,
}

/// The size of one wave after the canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaveSize {
    /// A cumulative share of the cohort, 1 to 100 percent.
    Percent(u32),
    /// A cumulative count of devices.
    Count(u32),
}

impl WaveSize {
    /// `"25%"` or `"10"`.
    pub(crate) fn parse(s: &str) -> Result<WaveSize, SpecError> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            match p.trim().parse::<u32>() {
                Ok(v @ 1..=100) => Ok(WaveSize::Percent(v)),
                _ => Err(SpecError::Share(s.to_string())),
            }
        } else {
            match t.parse::<u32>() {
                Ok(v) if v >= 1 => Ok(WaveSize::Count(v)),
                _ => Err(SpecError::Wave(s.to_string())),
            }
        }
    }

    fn of(self, n: usize) -> usize {
        match self {
            WaveSize::Percent(p) => (n * p as usize).div_ceil(100),
            WaveSize::Count(c) => c as usize,
        }
    }
}

impl CampaignSpec {
    /// The settings of a request, validated.
    pub(crate) fn from_request(req: &CampaignRequest) -> Result<CampaignSpec, SpecError> {
        for w in &req.waves {
            WaveSize::parse(w)?;
        }
        if req.waves.len() > 100 {
            return Err(SpecError::TooManyWaves);
        }
        if req.max_failure_rate > 100 {
            return Err(SpecError::FailureRate);
        }
        if req.device_timeout_s == 0 || req.device_timeout_s > 30 * 86_400 {
            return Err(SpecError::DeviceTimeout);
        }
        Ok(CampaignSpec {
            tags: req.tags.clone(),
            canary: req.canary,
            waves: req.waves.clone(),
            device_timeout_s: req.device_timeout_s,
            max_failures: req.max_failures,
            max_failure_rate: req.max_failure_rate,
            min_sample: req.min_sample,
            on_threshold: req.on_threshold,
            devices: None,
            heal: false,
        })
    }

    /// The stored spec of a campaign.
    pub(crate) fn of(c: &Campaign) -> Result<CampaignSpec, CampaignError> {
        serde_json::from_str(&c.spec).map_err(|source| CampaignError::StoredSpec {
            id: c.id.clone(),
            source,
        })
    }

    /// The highest wave index (the canary is 0).
    pub(crate) fn last_wave(&self) -> u32 {
        u32::try_from(self.waves.len()).unwrap_or(u32::MAX)
    }

    /// Cumulative device counts per wave for a cohort of `n`.
    pub(crate) fn targets(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.waves.len() + 1);
        let mut cum = (self.canary as usize).min(n);
        out.push(cum);
        for w in &self.waves {
            let size = WaveSize::parse(w).map(|s| s.of(n)).unwrap_or(n);
            cum = cum.max(size.min(n));
            out.push(cum);
        }
        out
    }

    /// The wave of each device of `cohort` (sorted by id); devices beyond the last wave's
    /// target are left out.
    pub(crate) fn assign(&self, cohort: &[String]) -> Vec<(String, u32)> {
        let targets = self.targets(cohort.len());
        cohort
            .iter()
            .enumerate()
            .filter_map(|(k, id)| {
                let wave = targets.iter().position(|t| k < *t)?;
                Some((id.clone(), u32::try_from(wave).ok()?))
            })
            .collect()
    }

    /// The reason to stop, if a threshold is crossed by `counts` (since the baseline).
    pub(crate) fn crossed(&self, counts: &CampaignCounts, c: &Campaign) -> Option<String> {
        let failed = counts.failed.saturating_sub(c.baseline_failed);
        let updated = counts.updated.saturating_sub(c.baseline_updated);
        if self.max_failures > 0 && failed >= self.max_failures {
            return Some(format!(
                "{failed} devices failed (threshold: {} failures)",
                self.max_failures
            ));
        }
        let done = failed + updated;
        if done > 0
            && done >= self.min_sample
            && failed > 0
            && u64::from(failed) * 100 >= u64::from(self.max_failure_rate) * u64::from(done)
        {
            return Some(format!(
                "{failed} of {done} finished devices failed ({:.0}%, threshold {}% of at least {})",
                f64::from(failed) * 100.0 / f64::from(done),
                self.max_failure_rate,
                self.min_sample
            ));
        }
        None
    }
}

/// Devices per state.
pub(crate) fn count(members: &[CampaignDevice]) -> CampaignCounts {
    let mut c = CampaignCounts::default();
    for m in members {
        let slot = match m.state {
            DeviceUpdateState::Pending => &mut c.pending,
            DeviceUpdateState::Offered => &mut c.offered,
            DeviceUpdateState::Downloading => &mut c.downloading,
            DeviceUpdateState::Installing => &mut c.installing,
            DeviceUpdateState::Rebooting => &mut c.rebooting,
            DeviceUpdateState::Confirming => &mut c.confirming,
            DeviceUpdateState::Updated => &mut c.updated,
            DeviceUpdateState::Failed => &mut c.failed,
        };
        *slot += 1;
    }
    c
}

/// failed / (failed + updated), percent.
pub(crate) fn failure_rate(c: &CampaignCounts) -> f64 {
    let done = c.failed + c.updated;
    if done == 0 {
        0.0
    } else {
        f64::from(c.failed) * 100.0 / f64::from(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(canary: u32, waves: &[&str]) -> CampaignSpec {
        let mut req = CampaignRequest::new("r", "c");
        req.canary = canary;
        req.waves = waves.iter().map(|w| w.to_string()).collect();
        CampaignSpec::from_request(&req).unwrap()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i:02}")).collect()
    }

    #[test]
    fn canary_then_cumulative_waves() {
        let s = spec(1, &["25%", "100%"]);
        assert_eq!(s.targets(8), vec![1, 2, 8]);
        let waves: Vec<u32> = s.assign(&ids(8)).into_iter().map(|(_, w)| w).collect();
        assert_eq!(waves, [0, 1, 2, 2, 2, 2, 2, 2]);
        // Counts and shares mix; a smaller later target never shrinks a wave.
        assert_eq!(
            spec(2, &["3", "50%", "1", "100%"]).targets(10),
            [2, 3, 5, 5, 10]
        );
        // A last wave below 100 % leaves devices out.
        assert_eq!(spec(1, &["50%"]).assign(&ids(4)).len(), 2);
        // More canaries than devices.
        assert_eq!(spec(5, &["100%"]).targets(3), [3, 3]);
    }

    #[test]
    fn bad_waves_and_settings_are_refused() {
        for bad in ["0%", "101%"] {
            assert_eq!(
                WaveSize::parse(bad),
                Err(SpecError::Share(bad.into())),
                "{bad}"
            );
        }
        for bad in ["0", "x", "-1", ""] {
            assert_eq!(
                WaveSize::parse(bad),
                Err(SpecError::Wave(bad.into())),
                "{bad}"
            );
        }
        let mut req = CampaignRequest::new("r", "c");
        req.max_failure_rate = 101;
        assert_eq!(
            CampaignSpec::from_request(&req),
            Err(SpecError::FailureRate)
        );
        req.max_failure_rate = 20;
        req.device_timeout_s = 0;
        assert_eq!(
            CampaignSpec::from_request(&req),
            Err(SpecError::DeviceTimeout)
        );
        req.device_timeout_s = 60;
        req.waves = vec!["100%".into(); 101];
        assert_eq!(
            CampaignSpec::from_request(&req),
            Err(SpecError::TooManyWaves)
        );
    }

    fn campaign(baseline_failed: u32, baseline_updated: u32) -> Campaign {
        Campaign {
            id: "c".into(),
            release_id: "r".into(),
            device_class: "k".into(),
            spec: String::new(),
            state: castellan_store::CampaignState::Running,
            wave: 0,
            reason: None,
            rollback_of: None,
            baseline_failed,
            baseline_updated,
            created_at: 0,
            created_by: "x".into(),
            updated_at: 0,
        }
    }

    #[test]
    fn thresholds_count_since_the_last_resume() {
        let mut s = spec(1, &["100%"]);
        s.max_failures = 2;
        s.max_failure_rate = 50;
        s.min_sample = 4;
        let counts = |failed, updated| CampaignCounts {
            failed,
            updated,
            ..CampaignCounts::default()
        };
        assert_eq!(s.crossed(&counts(1, 0), &campaign(0, 0)), None);
        assert!(s.crossed(&counts(2, 0), &campaign(0, 0)).is_some());
        assert_eq!(s.crossed(&counts(2, 0), &campaign(2, 0)), None, "resumed");
        // Rate: 2 of 4 = 50 % with max_failures off.
        s.max_failures = 0;
        assert!(
            s.crossed(&counts(2, 2), &campaign(0, 0))
                .unwrap()
                .contains("50%")
        );
        assert_eq!(
            s.crossed(&counts(1, 2), &campaign(0, 0)),
            None,
            "sample too small"
        );
        assert_eq!(s.crossed(&counts(1, 3), &campaign(0, 0)), None, "25 %");
    }
}
