//! The operator API's view of the fleet's analysis and response: alerts with their evidence,
//! and each device class's response policy (`GET /api/v1/alerts`, `POST
//! /api/v1/alerts/{id}/acknowledge|resolve`, `GET|PUT /api/v1/policies/{class}`).

use serde::{Deserialize, Serialize};

/// An alert as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertJson {
    /// The alert id (`alr-…`).
    pub alert_id: String,
    /// `device` (a device deviates from its peers) or `cohort` (a release's whole cohort moved).
    pub kind: String,
    /// The device, for a device alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The cohort's device class.
    pub device_class: String,
    /// The cohort's release (firmware version).
    pub release: String,
    /// `medium` or `high`.
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    /// One line for people.
    pub summary: String,
    /// The evidence: for a device, each signal with its value, the peers' median and spread,
    /// z and the number of peers; for a cohort, the signal, its median and the learned one.
    pub evidence: serde_json::Value,
    /// When it was raised (Unix seconds).
    pub raised_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Who changed it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A device class's response policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponsePolicyJson {
    /// The device class.
    #[serde(default)]
    pub device_class: String,
    /// Whether a high alert quarantines the device at once.
    pub auto_quarantine: bool,
    /// At most this many automatic quarantines in the class per hour; beyond it, alerts only.
    pub max_quarantines_per_hour: u32,
    /// Who set it (`default` when nobody has).
    #[serde(default)]
    pub updated_by: String,
}
