//! The fleet protocol's messages as the device side sends and reads them
//! (`docs/fleet-protocol.md`): factory registration, onboarding, over-the-air updates. The same
//! shapes as `castellan_server::protocol` (a test in `tests/protocol_compat.rs` round-trips
//! every message through the server's types), kept here so that the bridge does not link the
//! fleet service.

use serde::{Deserialize, Serialize};

/// The body of `POST /api/v1/factory/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryRequest {
    /// The device serial (= device id = certificate CN).
    pub serial: String,
    /// The device class.
    pub device_class: String,
    /// PKCS#10 CSR of the identity key, DER, hex.
    pub csr: String,
    /// The attestation public key, SEC1 uncompressed, hex.
    pub iak_public_key: String,
    /// The firmware version the device ships with.
    pub firmware_version: Option<String>,
    /// Reference measurements: what the device's tokens must report.
    pub reference_measurements: Vec<MeasurementJson>,
    /// Free-form tags.
    pub tags: Vec<String>,
}

/// One reference measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasurementJson {
    /// Measurement type (`"BL"`, `"SPE+NSPE"`, …), as the token names the component.
    #[serde(rename = "type")]
    pub mtype: String,
    /// The image digest, hex.
    pub digest: String,
    /// The signer id, hex.
    pub signer_id: String,
    /// The image version.
    pub version: String,
}

/// The answer to a factory registration (`201`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryResponse {
    /// The device id.
    pub device_id: String,
    /// The IDevID, PEM.
    pub idevid_pem: String,
    /// The manufacturer CA and the root, PEM.
    pub chain_pem: String,
    /// The CA bundle that signs the server certificate, PEM.
    pub mqtt_ca_pem: String,
    /// The release trust anchor (SEC1 hex), when the server has one.
    #[serde(default)]
    pub release_public_key: Option<String>,
}

/// The onboarding challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The nonce, hex.
    pub nonce: String,
}

/// The onboarding evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The attestation token, hex.
    pub token: String,
    /// CSR of the new operational key, DER, hex.
    pub csr: String,
}

/// The onboarding verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardResult {
    /// Whether the device was admitted.
    pub accepted: bool,
    /// The LDevID, PEM.
    #[serde(default)]
    pub ldevid_pem: Option<String>,
    /// The operational CA and the root, PEM.
    #[serde(default)]
    pub chain_pem: Option<String>,
    /// The topics granted (kept as the server sent it).
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// Why the device was refused.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Where and how the image may be downloaded over HTTPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsSource {
    /// The URL.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

/// `down/update/offer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The campaign.
    pub campaign_id: String,
    /// The release.
    pub release_id: String,
    /// The release's version (informational).
    pub version: String,
    /// The SUIT envelope, hex.
    pub manifest: String,
    /// Size of the image in bytes.
    pub image_size: u64,
    /// Largest chunk the server sends on MQTT.
    pub chunk_size: u32,
    /// The HTTPS download, when offered.
    #[serde(default)]
    pub https: Option<HttpsSource>,
}

/// A state in a [`Status`] report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateState {
    /// The manifest authenticated; the download starts.
    Accepted,
    /// Downloading.
    Downloading,
    /// The whole image is staged.
    Downloaded,
    /// Installing for trial.
    Installing,
    /// Rebooting into the trial image.
    Rebooting,
    /// The trial image passed its self-test and was accepted.
    Confirmed,
    /// The update failed (the reason is the device's).
    Failed,
    /// The trial image was reverted.
    Reverted,
}

impl UpdateState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Accepted => "accepted",
            UpdateState::Downloading => "downloading",
            UpdateState::Downloaded => "downloaded",
            UpdateState::Installing => "installing",
            UpdateState::Rebooting => "rebooting",
            UpdateState::Confirmed => "confirmed",
            UpdateState::Failed => "failed",
            UpdateState::Reverted => "reverted",
        }
    }
}

/// `up/update/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The campaign.
    pub campaign_id: String,
    /// The release.
    pub release_id: String,
    /// The state.
    pub state: UpdateState,
    /// Bytes downloaded so far.
    pub offset: u64,
    /// The device's reason, or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `up/update/fetch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// The release.
    pub release_id: String,
    /// First byte wanted.
    pub offset: u64,
    /// How many bytes.
    pub length: u32,
}

/// `down/update/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateChallenge {
    /// The campaign.
    pub campaign_id: String,
    /// The nonce, hex.
    pub nonce: String,
}

/// `up/update/evidence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateEvidence {
    /// The campaign.
    pub campaign_id: String,
    /// The token, hex.
    pub token: String,
}

/// `down/update/result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// The campaign.
    pub campaign_id: String,
    /// Whether the device counts as updated.
    pub updated: bool,
    /// Why not (or a note).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `down/update/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The campaign.
    pub campaign_id: String,
}

/// Length of a chunk's header (the offset, u64 big-endian).
pub const CHUNK_HEADER_LEN: usize = 8;

/// Splits a chunk into its offset and bytes (`None` when shorter than the header).
pub fn decode_chunk(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (head, bytes) = payload.split_first_chunk::<CHUNK_HEADER_LEN>()?;
    Some((u64::from_be_bytes(*head), bytes))
}

/// The topics the device side uses.
pub mod topics {
    /// `dev/<id>/up/onboard/hello`.
    pub fn hello(id: &str) -> String {
        format!("dev/{id}/up/onboard/hello")
    }
    /// `dev/<id>/down/onboard/challenge`.
    pub fn challenge(id: &str) -> String {
        format!("dev/{id}/down/onboard/challenge")
    }
    /// `dev/<id>/up/onboard/evidence`.
    pub fn evidence(id: &str) -> String {
        format!("dev/{id}/up/onboard/evidence")
    }
    /// `dev/<id>/down/onboard/result`.
    pub fn result(id: &str) -> String {
        format!("dev/{id}/down/onboard/result")
    }
    /// `dev/<id>/down/onboard/#`.
    pub fn onboard_down_filter(id: &str) -> String {
        format!("dev/{id}/down/onboard/#")
    }
    /// `dev/<id>/status`.
    pub fn status(id: &str) -> String {
        format!("dev/{id}/status")
    }
    /// `dev/<id>/down/update/offer`.
    pub fn update_offer(id: &str) -> String {
        format!("dev/{id}/down/update/offer")
    }
    /// `dev/<id>/up/update/status`.
    pub fn update_status(id: &str) -> String {
        format!("dev/{id}/up/update/status")
    }
    /// `dev/<id>/up/update/fetch`.
    pub fn update_fetch(id: &str) -> String {
        format!("dev/{id}/up/update/fetch")
    }
    /// `dev/<id>/down/update/chunk/<release_id>`.
    pub fn update_chunk(id: &str, release_id: &str) -> String {
        format!("dev/{id}/down/update/chunk/{release_id}")
    }
    /// `dev/<id>/down/update/challenge`.
    pub fn update_challenge(id: &str) -> String {
        format!("dev/{id}/down/update/challenge")
    }
    /// `dev/<id>/up/update/evidence`.
    pub fn update_evidence(id: &str) -> String {
        format!("dev/{id}/up/update/evidence")
    }
    /// `dev/<id>/down/update/result`.
    pub fn update_result(id: &str) -> String {
        format!("dev/{id}/down/update/result")
    }
    /// `dev/<id>/down/update/cancel`.
    pub fn update_cancel(id: &str) -> String {
        format!("dev/{id}/down/update/cancel")
    }
    /// `dev/<id>/down/update/#`.
    pub fn update_down_filter(id: &str) -> String {
        format!("dev/{id}/down/update/#")
    }
}
