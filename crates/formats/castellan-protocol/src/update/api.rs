//! The operator API's release and campaign bodies (`docs/fleet-protocol.md`, "Releases" and
//! "Campaigns"): what a release manager sends and what the server shows. Request bodies refuse
//! unknown fields; a release upload's image and manifest are base64, digests and keys hex.
//!
//! ```text
//!  PUT  /api/v1/release-key              ReleaseKeyRequest
//!  POST /api/v1/releases                 ReleaseRequest  ──▶ ReleaseJson (201)
//!  POST /api/v1/campaigns                CampaignRequest ──▶ CampaignJson (201)
//!  POST /api/v1/campaigns/{id}/rollback  RollbackRequest ──▶ CampaignJson (201)
//! ```

use serde::{Deserialize, Serialize};

use crate::MeasurementJson;

/// The body of `PUT /api/v1/release-key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseKeyRequest {
    /// The release key's public key: P-256, SEC1 uncompressed (65 bytes), hex.
    pub public_key: String,
}

/// The body of `POST /api/v1/releases`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The device class the release is for.
    pub device_class: String,
    /// The release's version as the release manager names it (shown; the image's own version
    /// is what devices report).
    pub version: String,
    /// The MCUboot image file, base64 (standard alphabet, padded).
    pub image: String,
    /// The SUIT envelope signed with the release key, base64.
    pub manifest: String,
    /// Free-form release notes.
    #[serde(default)]
    pub notes: Option<String>,
}

/// A release as the API shows it (`201` answer of `POST /api/v1/releases`, and the reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseJson {
    /// The release id: `<device_class>-<sequence>`.
    pub release_id: String,
    /// The device class.
    pub device_class: String,
    /// The version given at upload.
    pub version: String,
    /// The manifest's sequence number.
    pub sequence: u64,
    /// Size of the image file in bytes.
    pub image_size: u64,
    /// SHA-256 of the image file, hex (the digest the manifest names).
    pub image_sha256: String,
    /// The image's security counter (0 when it has none).
    pub security_counter: u32,
    /// SHA-256 of the image key's SubjectPublicKeyInfo, hex.
    pub signer_id: String,
    /// What a device running this release attests for its last component (type, MCUboot
    /// measurement digest, signer id, image version `major.minor.revision+build`).
    pub measurement: MeasurementJson,
    /// Release notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// When the manifest expires (Unix seconds; its `castellan-expires` parameter), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When it was uploaded (Unix seconds).
    pub created_at: i64,
    /// Who uploaded it (operator name).
    pub created_by: String,
}

/// What a campaign does when a failure threshold is crossed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnThreshold {
    /// Stop offering the release to further devices until resumed.
    #[default]
    Pause,
    /// End the campaign and cancel the devices in progress.
    Abort,
}

/// The body of `POST /api/v1/campaigns`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CampaignRequest {
    /// The release to roll out.
    pub release_id: String,
    /// The device class (must be the release's).
    pub device_class: String,
    /// Tags a device must all carry to be in the cohort (none: every device of the class).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Size of the canary wave (wave 0), a count.
    #[serde(default = "default_canary")]
    pub canary: u32,
    /// The following waves, each a cumulative share (`"25%"`) or count (`"10"`) of the cohort.
    #[serde(default = "default_waves")]
    pub waves: Vec<String>,
    /// A device that makes no progress for this long is failed.
    #[serde(default = "default_timeout")]
    pub device_timeout_s: u64,
    /// The campaign stops (pause or abort) when this many devices failed (0: no limit).
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// ... or when at least this share (percent) of the finished devices failed ...
    #[serde(default = "default_max_failure_rate")]
    pub max_failure_rate: u32,
    /// ... once at least this many devices finished (updated or failed).
    #[serde(default = "default_min_sample")]
    pub min_sample: u32,
    /// What happens when a threshold is crossed.
    #[serde(default)]
    pub on_threshold: OnThreshold,
}

fn default_canary() -> u32 {
    1
}
fn default_waves() -> Vec<String> {
    vec!["100%".into()]
}
fn default_timeout() -> u64 {
    600
}
fn default_max_failures() -> u32 {
    3
}
fn default_max_failure_rate() -> u32 {
    20
}
fn default_min_sample() -> u32 {
    5
}

impl CampaignRequest {
    /// A request with the defaults: canary 1, one wave of 100 %, 600 s per device, pause after
    /// 3 failures or 20 % of at least 5.
    pub fn new(release_id: &str, device_class: &str) -> CampaignRequest {
        CampaignRequest {
            release_id: release_id.into(),
            device_class: device_class.into(),
            tags: Vec::new(),
            canary: default_canary(),
            waves: default_waves(),
            device_timeout_s: default_timeout(),
            max_failures: default_max_failures(),
            max_failure_rate: default_max_failure_rate(),
            min_sample: default_min_sample(),
            on_threshold: OnThreshold::Pause,
        }
    }
}

/// The body of `POST /api/v1/campaigns/{id}/rollback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The release that puts the previous image back (same class, same image as the release
    /// before the campaign's, newer sequence).
    pub release_id: String,
}

/// Per-state device counts of a campaign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignCounts {
    /// In the cohort, not offered yet (later wave, or offline).
    pub pending: u32,
    /// Offered, no report yet.
    pub offered: u32,
    /// Accepted the manifest; downloading (or downloaded).
    pub downloading: u32,
    /// Installing for trial.
    pub installing: u32,
    /// Rebooting into the new image.
    pub rebooting: u32,
    /// Confirmed the image; post-update attestation pending.
    pub confirming: u32,
    /// Updated: attested the release's measurement.
    pub updated: u32,
    /// Failed (failed or reverted report, wrong measurement, timeout, abort).
    pub failed: u32,
}

/// One device of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignDeviceJson {
    /// The device.
    pub device_id: String,
    /// pending, offered, downloading, installing, rebooting, confirming, updated or failed.
    pub state: String,
    /// The wave it belongs to (0 = canary).
    pub wave: u32,
    /// Why it failed (or a note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Download offset last reported.
    #[serde(default)]
    pub offset: u64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// A campaign as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignJson {
    /// The campaign id.
    pub campaign_id: String,
    /// The release it rolls out.
    pub release_id: String,
    /// The device class.
    pub device_class: String,
    /// Tags of the cohort.
    pub tags: Vec<String>,
    /// running, paused, completed or aborted.
    pub state: String,
    /// The current wave (0 = canary).
    pub wave: u32,
    /// The waves after the canary, as requested.
    pub waves: Vec<String>,
    /// The canary count.
    pub canary: u32,
    /// Devices per state.
    pub counts: CampaignCounts,
    /// failed / (failed + updated), percent (0 when none finished).
    pub failure_rate: f64,
    /// Why it paused or aborted (or completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The campaign this one rolls back, if it is a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The request's settings.
    pub device_timeout_s: u64,
    /// Threshold: failures.
    pub max_failures: u32,
    /// Threshold: failure rate, percent.
    pub max_failure_rate: u32,
    /// Threshold: minimum sample for the rate.
    pub min_sample: u32,
    /// pause or abort.
    pub on_threshold: OnThreshold,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Last state change (Unix seconds).
    pub updated_at: i64,
    /// Every device of the campaign, by id.
    pub devices: Vec<CampaignDeviceJson>,
}
