//! Fleet analysis: devices of the same class running the same release are each other's
//! baseline. Per window, each signal a device reports (or that the fleet observes about it) is
//! compared with its cohort's median and median absolute deviation: the one device that
//! deviates from its peers is a [`DeviceFinding`] (a suspected compromise), while a whole
//! cohort that moves away from the class's learned normal at once is a [`CohortShift`] (a
//! release problem, for the campaign's health gates) rather than N compromised devices.
//!
//! ```text
//!  window of observations ─▶ group by cohort (class, release)
//!    cohort ≥ min_cohort devices: peers = the cohort (median m, scale s = max(MAD·1.4826, floor))
//!    smaller cohort:              peers = the class's learned baseline
//!      device value x: z = (x − m) / s ─ z ≥ medium_z and x − m ≥ min_excess ─▶ DeviceFinding
//!    cohort median vs the class's baseline: |m − b| ≥ shift_z · scale_b ─▶ CohortShift
//!  windows without a shift teach the class baseline (EWMA of median and scale)
//! ```
//!
//! Every threshold has a floor in absolute units per signal (`SignalSpec`), so a cohort whose
//! values are all equal (MAD 0) does not turn the smallest wobble into an alarm. The false-alarm
//! behaviour is measured in `docs/response.md` and by this crate's tests (a healthy fleet of
//! 100 devices over 1,000 windows: no finding).

#![forbid(unsafe_code)]

mod baseline;
mod peers;
pub mod robust;
mod signal;
pub mod simulate;

pub use baseline::Baseline;
pub use peers::{Policy, analyze};
pub use signal::{Signal, SignalSpec};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Devices that are each other's peers: one class running one release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cohort {
    /// The device class.
    pub device_class: String,
    /// The release (firmware version) the devices run.
    pub release: String,
}

/// What is known of one device in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The device id.
    pub device: String,
    /// Its cohort.
    pub cohort: Cohort,
    /// The signals' values in the window (a signal not observed is absent, not zero).
    pub values: BTreeMap<Signal, f64>,
}

/// How sure the analysis is that a device is not behaving like its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Medium,
    /// Far outside its peers: a policy may quarantine on it.
    High,
}

impl Severity {
    /// The name the API and the audit trail use.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One signal of a device against its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The signal.
    pub signal: Signal,
    /// The device's value.
    pub value: f64,
    /// The peers' median.
    pub peer_median: f64,
    /// The peers' spread (scaled MAD, at least the signal's floor).
    pub peer_scale: f64,
    /// How many spreads the value is above the median.
    pub z: f64,
    /// How many devices the peers are (0: the class's learned baseline stood in for them).
    pub peers: usize,
}

/// A device that deviates from its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceFinding {
    /// The device.
    pub device: String,
    /// Its cohort.
    pub cohort: Cohort,
    /// The highest severity of its evidence.
    pub severity: Severity,
    /// Each deviating signal.
    pub evidence: Vec<Evidence>,
}

/// A whole cohort away from its class's learned normal: a release problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortShift {
    /// The cohort.
    pub cohort: Cohort,
    /// The signal that moved.
    pub signal: Signal,
    /// The cohort's median now.
    pub median: f64,
    /// The class's learned median.
    pub baseline_median: f64,
    /// The class's learned spread.
    pub baseline_scale: f64,
    /// Devices in the cohort.
    pub devices: usize,
}

/// What one window's analysis found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// Devices that deviate from their peers.
    pub devices: Vec<DeviceFinding>,
    /// Cohorts that moved together.
    pub shifts: Vec<CohortShift>,
}

impl Findings {
    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.shifts.is_empty()
    }
}
