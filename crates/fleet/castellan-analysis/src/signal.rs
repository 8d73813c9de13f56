//! The signals the fleet compares, each with the floors that keep a quiet cohort quiet.

use serde::{Deserialize, Serialize};

/// A per-device, per-window signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Signal {
    /// MQTT messages the device published.
    Messages,
    /// Publishes or subscriptions the broker refused (topic probing).
    RefusedPublishes,
    /// Connections made (a reconnect storm).
    Connections,
    /// TLS handshakes the front door refused for the device's certificate or address.
    RefusedHandshakes,
    /// Telemetry values outside the class's declared range.
    TelemetryOutOfRange,
    /// The edge detector's anomaly score.
    DetectorScore,
    /// Detection reports missing or replayed (counter gaps).
    ReportGaps,
    /// Attestations that failed appraisal.
    AttestationFailures,
    /// Updates that failed or reverted.
    UpdateFailures,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 9] = [
        Signal::Messages,
        Signal::RefusedPublishes,
        Signal::Connections,
        Signal::RefusedHandshakes,
        Signal::TelemetryOutOfRange,
        Signal::DetectorScore,
        Signal::ReportGaps,
        Signal::AttestationFailures,
        Signal::UpdateFailures,
    ];

    /// The name the API and the audit trail use.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Messages => "messages",
            Signal::RefusedPublishes => "refused_publishes",
            Signal::Connections => "connections",
            Signal::RefusedHandshakes => "refused_handshakes",
            Signal::TelemetryOutOfRange => "telemetry_out_of_range",
            Signal::DetectorScore => "detector_score",
            Signal::ReportGaps => "report_gaps",
            Signal::AttestationFailures => "attestation_failures",
            Signal::UpdateFailures => "update_failures",
        }
    }

    /// The floors of this signal.
    pub fn spec(self) -> SignalSpec {
        match self {
            // Counts of normal traffic vary with the application: a wide floor.
            Signal::Messages => SignalSpec {
                min_scale: 2.0,
                min_excess: 20.0,
            },
            Signal::Connections => SignalSpec {
                min_scale: 0.5,
                min_excess: 3.0,
            },
            Signal::DetectorScore => SignalSpec {
                min_scale: 0.25,
                min_excess: 1.0,
            },
            // Refusals and failures are rare in a healthy fleet: a few are already news.
            Signal::RefusedPublishes
            | Signal::RefusedHandshakes
            | Signal::TelemetryOutOfRange
            | Signal::ReportGaps
            | Signal::AttestationFailures
            | Signal::UpdateFailures => SignalSpec {
                min_scale: 0.5,
                min_excess: 2.0,
            },
        }
    }
}

/// Floors of a signal, in its own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalSpec {
    /// The spread used when the peers' spread is smaller (a cohort whose values are all
    /// equal has a MAD of 0).
    pub min_scale: f64,
    /// A value must exceed its peers' median by at least this much to count.
    pub min_excess: f64,
}
