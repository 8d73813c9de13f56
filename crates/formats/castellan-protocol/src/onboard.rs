//! Factory registration and attested onboarding (`docs/fleet-protocol.md`, "Factory
//! provisioning" and "Onboarding"): the JSON bodies, binary fields in lowercase hex.
//!
//! ```text
//!  station ── POST /api/v1/factory/devices  FactoryRequest {serial, csr, iak, measurements}
//!          ◀─ 201 FactoryResponse {idevid_pem, chain_pem, mqtt_ca_pem, release_public_key?, mqtt?,
//!                                  tuf_root?}
//!  device  ── up/onboard/hello {} ─▶ ◀─ down/onboard/challenge Challenge {nonce}
//!          ── up/onboard/evidence Evidence {token, csr}
//!          ◀─ down/onboard/result OnboardResult {accepted, ldevid_pem, chain_pem, policy | reason}
//! ```

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::fields;

/// The body of `POST /api/v1/factory/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One reference measurement (a [`FactoryRequest`]'s, a release's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MeasurementJson {
    /// Measurement type (`"BL"`, `"SPE"`, `"APP"`, `"SPE+NSPE"`, ...), as the token names the
    /// component.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The broker devices connect to (`host:port`, mutual TLS), as the service listens; absent
    /// from older services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<String>,
    /// The TUF repository's current `root.json`, as its file's text: the device's TUF trust
    /// anchor, stored with its identity; absent when the service keeps no TUF repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuf_root: Option<String>,
}

impl FactoryResponse {
    /// The release trust anchor as a SEC1 uncompressed P-256 key (65 bytes), `None` when the
    /// server has none; refused when it is not hex or not 65 bytes.
    pub fn release_public_key_bytes(&self) -> Result<Option<[u8; 65]>, ProtocolError> {
        self.release_public_key
            .as_deref()
            .map(|k| fields::sec1_key("release public key", k))
            .transpose()
    }
}

/// The server's challenge (`dev/<id>/down/onboard/challenge`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// A fresh, single-use 32-byte nonce, hex; valid for five minutes.
    pub nonce: String,
}

impl Challenge {
    /// The nonce's bytes: hex of 32, 48 or 64 bytes ([`crate::NONCE_LENGTHS`]), or why not.
    pub fn nonce_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        fields::nonce("challenge nonce", &self.nonce)
    }
}

/// The device's evidence (`dev/<id>/up/onboard/evidence`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// PSA attestation token (COSE_Sign1) over the challenge nonce, hex.
    pub token: String,
    /// PKCS#10 CSR (DER, hex) of the new operational key the LDevID will certify.
    pub csr: String,
}

/// The onboarding verdict (`dev/<id>/down/onboard/result`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The refusal's stable machine code (`attestation.nonce_mismatch`), when refused; the
    /// audit log carries it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl OnboardResult {
    /// The refusal's reason, or `"no reason given"`.
    pub fn reason_text(&self) -> &str {
        self.reason.as_deref().unwrap_or("no reason given")
    }
}

/// A topic policy as sent to the device (the broker enforces it; the device keeps it as
/// `policy.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyJson {
    /// Topics the device may publish to (MQTT filters).
    pub publish: Vec<String>,
    /// Filters the device may subscribe to.
    pub subscribe: Vec<String>,
}
