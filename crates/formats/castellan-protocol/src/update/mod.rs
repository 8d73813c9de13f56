//! Over-the-air updates (`docs/fleet-protocol.md`, "Over-the-air updates"): the operator API's
//! release and campaign bodies, and the MQTT messages between the campaign engine and a
//! device. Binary fields are lowercase hex, except the image and manifest of a release upload
//! (base64) and the chunk payload (raw bytes after the offset).
//!
//! ```text
//!  release manager ── PUT  /api/v1/release-key  ReleaseKeyRequest
//!                  ── POST /api/v1/releases     ReleaseRequest ──▶ ReleaseJson (201)
//!                  ── POST /api/v1/campaigns    CampaignRequest ─▶ CampaignJson (201)
//!  server ── dev/<id>/down/update/offer               Offer
//!  device ── dev/<id>/up/update/status                Status
//!  device ── dev/<id>/up/update/fetch                 Fetch
//!  server ── dev/<id>/down/update/chunk/<release_id>  offset (u64 BE) ‖ bytes   (encode_chunk)
//!  server ── dev/<id>/down/update/challenge           UpdateChallenge
//!  device ── dev/<id>/up/update/evidence              UpdateEvidence
//!  server ── dev/<id>/down/update/result              UpdateResult
//!  server ── dev/<id>/down/update/cancel              Cancel
//! ```
//!
//! The messages a device reads (offer, challenge, result, cancel, chunk) ignore unknown fields
//! and give optional fields their defaults, so an older device reads a newer server's offer;
//! the manifest inside an offer, not the offer, decides what the device installs.

mod api;
mod chunk;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::fields;

pub use api::{
    CampaignCounts, CampaignDeviceJson, CampaignJson, CampaignRequest, OnThreshold, ReleaseJson,
    ReleaseKeyRequest, ReleaseRequest, RollbackRequest,
};
pub use chunk::{CHUNK_HEADER_LEN, decode_chunk, encode_chunk};

/// Where and how a device may download the image over HTTPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsSource {
    /// The URL (`https://<host>:<port>/api/v1/updates/<campaign_id>/image`).
    pub url: String,
    /// The bearer token for this device and campaign (`Authorization: Bearer <token>`).
    pub token: String,
}

/// `dev/<id>/down/update/offer`: the server offers a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The campaign.
    pub campaign_id: String,
    /// The release.
    pub release_id: String,
    /// The release's version (informational: the manifest decides; empty when absent).
    #[serde(default)]
    pub version: String,
    /// The SUIT envelope, hex.
    pub manifest: String,
    /// Size of the image in bytes (informational: the manifest's size decides; 0 when
    /// absent).
    #[serde(default)]
    pub image_size: u64,
    /// Largest chunk the server sends on MQTT.
    pub chunk_size: u32,
    /// The HTTPS download, when offered (`null` otherwise; absent reads as `null`).
    #[serde(default)]
    pub https: Option<HttpsSource>,
}

impl Offer {
    /// The SUIT envelope's bytes (hex decoded), or why not. The envelope is still untrusted:
    /// the device authenticates it with its release trust anchor.
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        fields::hex_bytes("offer's manifest", &self.manifest)
    }
}

/// A state a device reports in [`Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateState {
    /// The manifest authenticated; the download starts.
    Accepted,
    /// Downloading (`offset` bytes so far), reported at least every 10 %.
    Downloading,
    /// The whole image is staged.
    Downloaded,
    /// The image is being installed for trial.
    Installing,
    /// The device reboots into the trial image.
    Rebooting,
    /// The trial image passed its self-test and was accepted (confirmed).
    Confirmed,
    /// The update failed (`reason`: the device's error).
    Failed,
    /// The trial image failed its self-test; the previous image runs again.
    Reverted,
}

impl UpdateState {
    /// The state's wire name.
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

/// `dev/<id>/up/update/status`: a device's progress report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The campaign the report is for.
    pub campaign_id: String,
    /// The release.
    pub release_id: String,
    /// The state.
    pub state: UpdateState,
    /// Bytes downloaded so far.
    #[serde(default)]
    pub offset: u64,
    /// Why it failed (the device's typed error text), or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `dev/<id>/up/update/fetch`: a device asks for `length` bytes at `offset` over MQTT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// The release.
    pub release_id: String,
    /// First byte wanted.
    pub offset: u64,
    /// How many bytes (the server sends at most the offer's `chunk_size`).
    pub length: u32,
}

/// `dev/<id>/down/update/challenge`: a fresh nonce for the post-update token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateChallenge {
    /// The campaign.
    pub campaign_id: String,
    /// 32 random bytes, hex; single use.
    pub nonce: String,
}

impl UpdateChallenge {
    /// The nonce's bytes: hex of 32, 48 or 64 bytes ([`crate::NONCE_LENGTHS`]), or why not.
    pub fn nonce_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        fields::nonce("update challenge nonce", &self.nonce)
    }
}

/// `dev/<id>/up/update/evidence`: the post-update attestation token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateEvidence {
    /// The campaign.
    pub campaign_id: String,
    /// PSA attestation token over the challenge nonce, hex.
    pub token: String,
}

/// `dev/<id>/down/update/result`: the verdict on the device's update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// The campaign.
    pub campaign_id: String,
    /// Whether the device now counts as updated.
    pub updated: bool,
    /// Why not (or a note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal's stable machine code (`attestation.not_the_release`), when not updated;
    /// the audit log carries it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `dev/<id>/down/update/cancel`: the campaign was aborted; stop and discard the download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The campaign.
    pub campaign_id: String,
}
