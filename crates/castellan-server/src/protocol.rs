//! The wire formats of `docs/fleet-protocol.md`: the JSON bodies of factory registration and of
//! the MQTT onboarding exchange, and the topics they travel on. Binary fields are lowercase hex.
//! Devices (the agent, the demo, tests) may use these types to speak the protocol exactly.
//!
//! ```text
//!  factory station ── POST /api/v1/factory/devices  FactoryRequest ──▶ FactoryResponse (201)
//!  device ── dev/<id>/up/onboard/hello     {}                        ──▶ server
//!  device ◀─ dev/<id>/down/onboard/challenge  Challenge {nonce}          ── server
//!  device ── dev/<id>/up/onboard/evidence  Evidence {token, csr}     ──▶ server (appraisal)
//!  device ◀─ dev/<id>/down/onboard/result     OnboardResult              ── server
//! ```
//!
//! Over-the-air updates (releases, campaigns, offers, reports) are in [`update`], re-exported
//! here.

use serde::{Deserialize, Serialize};

pub mod update;

pub use update::{
    CHUNK_HEADER_LEN, CampaignCounts, CampaignDeviceJson, CampaignJson, CampaignRequest, Cancel,
    Fetch, HttpsSource, Offer, OnThreshold, ReleaseJson, ReleaseKeyRequest, ReleaseRequest,
    RollbackRequest, Status, UpdateChallenge, UpdateEvidence, UpdateResult, UpdateState,
    decode_chunk, encode_chunk,
};

/// The body of `POST /api/v1/factory/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactoryRequest {
    /// The device serial, which is also its id (`[A-Za-z0-9.-]{1,64}`).
    pub serial: String,
    /// The device class (`[A-Za-z0-9._-]{1,64}`), the IDevID's OU.
    pub device_class: String,
    /// PKCS#10 CSR of the identity key, DER, hex.
    pub csr: String,
    /// The attestation public key (IAK), SEC1 uncompressed (65 bytes), hex.
    pub iak_public_key: String,
    /// The firmware version the device ships with.
    #[serde(default)]
    pub firmware_version: Option<String>,
    /// Reference measurements of the firmware it ships with: what onboarding tokens must report.
    pub reference_measurements: Vec<MeasurementJson>,
    /// Free-form tags (cohorts, sites).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One reference measurement in a [`FactoryRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementJson {
    /// Measurement type (`"BL"`, `"SPE"`, `"APP"`, ...), as the token names the component.
    #[serde(rename = "type")]
    pub mtype: String,
    /// The image digest (SHA-256: 32 bytes), hex.
    pub digest: String,
    /// The signer id (hash of the signing key), hex.
    pub signer_id: String,
    /// The image version (`major.minor.revision+build`).
    pub version: String,
}

/// The answer to a successful factory registration (`201`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryResponse {
    /// The device id (= serial).
    pub device_id: String,
    /// The IDevID, PEM.
    pub idevid_pem: String,
    /// The manufacturer CA and the root, PEM.
    pub chain_pem: String,
    /// The CA bundle that signs the server certificate (operational CA and root), PEM: what
    /// the device trusts when it connects to the broker.
    pub mqtt_ca_pem: String,
    /// The release trust anchor (P-256 public key, SEC1 uncompressed, hex) the station stores
    /// in the device's trusted storage; absent while no release key is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_public_key: Option<String>,
}

/// The server's challenge (`dev/<id>/down/onboard/challenge`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// A fresh, single-use 32-byte nonce, hex; valid for five minutes.
    pub nonce: String,
}

/// The device's evidence (`dev/<id>/up/onboard/evidence`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// PSA attestation token (COSE_Sign1) over the challenge nonce, hex.
    pub token: String,
    /// PKCS#10 CSR (DER, hex) of the new operational key the LDevID will certify.
    pub csr: String,
}

/// The onboarding verdict (`dev/<id>/down/onboard/result`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardResult {
    /// Whether the device was admitted.
    pub accepted: bool,
    /// The LDevID, PEM (when accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldevid_pem: Option<String>,
    /// The operational CA and the root, PEM (when accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_pem: Option<String>,
    /// The topics the device may use with its LDevID (when accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyJson>,
    /// Why the device was refused (when refused); the same reason is in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A topic policy as sent to the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyJson {
    /// Topics the device may publish to (MQTT filters).
    pub publish: Vec<String>,
    /// Filters the device may subscribe to.
    pub subscribe: Vec<String>,
}

impl From<&castellan_broker::TopicPolicy> for PolicyJson {
    fn from(p: &castellan_broker::TopicPolicy) -> Self {
        PolicyJson {
            publish: p.publish_patterns().to_vec(),
            subscribe: p.subscribe_patterns().to_vec(),
        }
    }
}

/// Topics of the protocol.
pub mod topics {
    /// `dev/<id>/up/onboard/hello`: the device asks for a challenge.
    pub fn hello(id: &str) -> String {
        format!("dev/{id}/up/onboard/hello")
    }
    /// `dev/<id>/down/onboard/challenge`: the server's nonce.
    pub fn challenge(id: &str) -> String {
        format!("dev/{id}/down/onboard/challenge")
    }
    /// `dev/<id>/up/onboard/evidence`: the device's token and CSR.
    pub fn evidence(id: &str) -> String {
        format!("dev/{id}/up/onboard/evidence")
    }
    /// `dev/<id>/down/onboard/result`: the verdict.
    pub fn result(id: &str) -> String {
        format!("dev/{id}/down/onboard/result")
    }
    /// `dev/<id>/down/onboard/#`: what an onboarding device subscribes to.
    pub fn onboard_down_filter(id: &str) -> String {
        format!("dev/{id}/down/onboard/#")
    }
    /// `dev/<id>/telemetry`.
    pub fn telemetry(id: &str) -> String {
        format!("dev/{id}/telemetry")
    }
    /// `dev/<id>/status`.
    pub fn status(id: &str) -> String {
        format!("dev/{id}/status")
    }
    /// `dev/<id>/down/update/offer`: the server offers a release ([`super::Offer`]).
    pub fn update_offer(id: &str) -> String {
        format!("dev/{id}/down/update/offer")
    }
    /// `dev/<id>/up/update/status`: the device's progress ([`super::Status`]).
    pub fn update_status(id: &str) -> String {
        format!("dev/{id}/up/update/status")
    }
    /// `dev/<id>/up/update/fetch`: the device asks for bytes ([`super::Fetch`]).
    pub fn update_fetch(id: &str) -> String {
        format!("dev/{id}/up/update/fetch")
    }
    /// `dev/<id>/down/update/chunk/<release_id>`: bytes of the image
    /// ([`super::encode_chunk`]).
    pub fn update_chunk(id: &str, release_id: &str) -> String {
        format!("dev/{id}/down/update/chunk/{release_id}")
    }
    /// `dev/<id>/down/update/challenge`: the post-update nonce ([`super::UpdateChallenge`]).
    pub fn update_challenge(id: &str) -> String {
        format!("dev/{id}/down/update/challenge")
    }
    /// `dev/<id>/up/update/evidence`: the post-update token ([`super::UpdateEvidence`]).
    pub fn update_evidence(id: &str) -> String {
        format!("dev/{id}/up/update/evidence")
    }
    /// `dev/<id>/down/update/result`: the verdict ([`super::UpdateResult`]).
    pub fn update_result(id: &str) -> String {
        format!("dev/{id}/down/update/result")
    }
    /// `dev/<id>/down/update/cancel`: the campaign was aborted ([`super::Cancel`]).
    pub fn update_cancel(id: &str) -> String {
        format!("dev/{id}/down/update/cancel")
    }
    /// `dev/<id>/down/update/#`: what a device subscribes to for updates.
    pub fn update_down_filter(id: &str) -> String {
        format!("dev/{id}/down/update/#")
    }
}
