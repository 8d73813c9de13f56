//! One window's analysis: each cohort against itself (device outliers) and against its
//! learned normal (cohort shifts).

use std::collections::BTreeMap;

use crate::robust::median_and_mad;
use crate::{
    Baseline, Cohort, CohortShift, DeviceFinding, Evidence, Findings, Observation, Severity, Signal,
};

/// The largest z an evidence records.
const Z_LIMIT: f64 = 1e12;

/// The thresholds of the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Spreads above the peers' median for a medium finding.
    pub medium_z: f64,
    /// Spreads above the peers' median for a high finding.
    pub high_z: f64,
    /// Devices a cohort needs to be its own peer group (smaller: the learned baseline).
    pub min_cohort: usize,
    /// Learned spreads the cohort median must move for a shift.
    pub shift_z: f64,
    /// Windows a baseline needs before it judges.
    pub min_windows: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            medium_z: 6.0,
            high_z: 12.0,
            min_cohort: 5,
            shift_z: 6.0,
            min_windows: 5,
        }
    }
}

/// Analyse one window of observations, learning the cohorts that did not shift into
/// `baseline`.
pub fn analyze(window: &[Observation], baseline: &mut Baseline, policy: &Policy) -> Findings {
    let mut cohorts: BTreeMap<&Cohort, Vec<&Observation>> = BTreeMap::new();
    for o in window {
        cohorts.entry(&o.cohort).or_default().push(o);
    }
    let mut findings = Findings::default();
    let mut evidence: BTreeMap<(&str, &Cohort), Vec<Evidence>> = BTreeMap::new();
    for (cohort, devices) in cohorts {
        for signal in Signal::ALL {
            let values: Vec<(&str, f64)> = devices
                .iter()
                .filter_map(|o| {
                    let v = *o.values.get(&signal)?;
                    v.is_finite().then_some((o.device.as_str(), v))
                })
                .collect();
            let numbers: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
            let Some((median, mad)) = median_and_mad(&numbers) else {
                continue;
            };
            let spec = signal.spec();
            let reference = baseline.reference(cohort, signal, policy.min_windows);
            let is_group = values.len() >= policy.min_cohort;
            let shifted = reference.is_some_and(|r| {
                let moved = (median - r.median).abs();
                moved >= policy.shift_z * r.scale.max(spec.min_scale) && moved >= spec.min_excess
            });
            if shifted && is_group {
                if let Some(r) = reference {
                    findings.shifts.push(CohortShift {
                        cohort: cohort.clone(),
                        signal,
                        median,
                        baseline_median: r.median,
                        baseline_scale: r.scale,
                        devices: values.len(),
                    });
                }
            }
            // A cohort's spread measured on one window is itself noisy (a few tens of
            // devices): it is never taken below half the learned one.
            let learned_floor = reference.map_or(0.0, |r| r.scale / 2.0);
            let (peer_median, peer_scale, peers) = if is_group {
                (
                    median,
                    mad.max(spec.min_scale).max(learned_floor),
                    values.len(),
                )
            } else if let Some(r) = reference {
                (r.median, r.scale.max(spec.min_scale), 0)
            } else {
                continue;
            };
            for (device, value) in values {
                // Bounded, so that extreme values stay numbers the evidence can carry.
                let z = ((value - peer_median) / peer_scale).clamp(-Z_LIMIT, Z_LIMIT);
                if z >= policy.medium_z && value - peer_median >= spec.min_excess {
                    evidence
                        .entry((device, cohort))
                        .or_default()
                        .push(Evidence {
                            signal,
                            value,
                            peer_median,
                            peer_scale,
                            z,
                            peers,
                        });
                }
            }
            if is_group && !shifted {
                baseline.learn(cohort, signal, median, mad);
            }
        }
    }
    findings.devices = evidence
        .into_iter()
        .map(|((device, cohort), evidence)| DeviceFinding {
            device: device.to_owned(),
            cohort: cohort.clone(),
            severity: if evidence.iter().any(|e| e.z >= policy.high_z) {
                Severity::High
            } else {
                Severity::Medium
            },
            evidence,
        })
        .collect();
    findings
}
