//! Castellan fleet protocol: every message of `docs/fleet-protocol.md`, declared once and read
//! with the same types by the fleet server (`castellan-server`, which re-exports this crate as
//! `castellan_server::protocol`), the simulated device agent (`castellan-agent`) and the QEMU
//! host bridge (`castellan-bridge`). Hostile input from the other side is parsed here and only
//! here ([`WireMessage::parse`], [`decode_chunk`], [`Topic::parse`], the `*_bytes` field readers); the fuzz target
//! `fuzz/fuzz_targets/protocol_messages.rs` feeds it arbitrary bytes.
//!
//! ```text
//!  factory station ── POST /api/v1/factory/devices  FactoryRequest ──▶ FactoryResponse (201)
//!  device ── dev/<id>/up/onboard/hello        {}                    ──▶ server
//!  device ◀─ dev/<id>/down/onboard/challenge  Challenge {nonce}         ── server
//!  device ── dev/<id>/up/onboard/evidence     Evidence {token, csr} ──▶ server (appraisal)
//!  device ◀─ dev/<id>/down/onboard/result     OnboardResult {policy}    ── server
//!  release manager ── release key, releases, campaigns (HTTPS)      ──▶ server   [update]
//!  device ◀─▶ dev/<id>/{down,up}/update/…  Offer, Status, Fetch, chunk, UpdateChallenge,
//!                                           UpdateEvidence, UpdateResult, Cancel   [update]
//!  device ◀─▶ dev/<id>/{up,down}/tuf/{request,response}  TufRequest, TufResponse  [tuf]
//!  device ◀─  dev/<id>/down/lifecycle/decommission  DecommissionCommand (signed)
//!  device ──▶ dev/<id>/up/lifecycle/erased          ErasureEvidence (final token) [decommission]
//!  device ◀─  dev/<id>/down/lifecycle/reattest      ReattestCommand (signed)
//!  device ──▶ dev/<id>/up/lifecycle/reattested      ReattestEvidence (token after reboot) [reattest]
//! ```
//!
//! JSON field names, their order and which optional fields are left out are the wire format:
//! the golden tests in this crate pin them. Binary fields are lowercase hex, except a release
//! upload's image and manifest (base64) and a chunk's bytes (raw, after an 8-byte offset).
//! Messages a device reads ignore unknown fields, so the server may add some; request bodies the
//! server reads from operators and factory stations refuse them (`deny_unknown_fields`).
//!
//! * [`onboard`] — factory registration and attested onboarding;
//! * [`update`] — releases, campaigns and the device's update messages;
//! * [`tuf`] — TUF metadata over MQTT (request/response);
//! * [`decommission`] — the signed decommission command and the proof of erasure;
//! * [`reattest`] — the signed reboot-and-reattest command and its answer;
//! * [`topic`] — the MQTT topics the messages travel on, typed ([`Topic::parse`] reads them);
//! * [`topics`] — the same topics as strings (builders);
//! * [`ProtocolError`] — why a message was refused.
//!
//! Telemetry (`dev/<id>/telemetry`) and status (`dev/<id>/status`) payloads are free-form JSON
//! objects the server stores as they come; they have no type here.

#![forbid(unsafe_code)]
// Hostile input never panics here (tests may: clippy.toml allows it there).
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![deny(clippy::panic, clippy::indexing_slicing)]

pub mod decommission;
mod error;
mod fields;
pub mod onboard;
pub mod reattest;
pub mod response;
pub mod topic;
pub mod topics;
pub mod tuf;
pub mod update;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use decommission::{DECOMMISSION_DOMAIN, DecommissionCommand, ErasureEvidence, SignedCommand};
pub use error::ProtocolError;
pub use fields::NONCE_LENGTHS;
pub use onboard::{
    Challenge, Evidence, FactoryRequest, FactoryResponse, MeasurementJson, OnboardResult,
    PolicyJson,
};
pub use reattest::{REATTEST_DOMAIN, ReattestCommand, ReattestEvidence};
pub use response::{AlertJson, ResponsePolicyJson};
pub use topic::{Direction, OnboardKind, Topic, TopicError, UpdateDownKind, UpdateUpKind};
pub use tuf::{MAX_TUF_FILE, TufAnswer, TufFileKind, TufRequest, TufResponse};
pub use update::{
    CHUNK_HEADER_LEN, CampaignCounts, CampaignDeviceJson, CampaignJson, CampaignRequest, Cancel,
    Fetch, HttpsSource, Offer, OnThreshold, ReleaseJson, ReleaseKeyRequest, ReleaseRequest,
    RollbackRequest, Status, UpdateChallenge, UpdateEvidence, UpdateResult, UpdateState,
    decode_chunk, encode_chunk,
};

/// A JSON message of the protocol: how it is read from a payload (MQTT) or body (HTTPS), and
/// written to one.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// What the message is called in error texts (`"offer"`, `"update challenge"`).
    const NAME: &'static str;

    /// Reads the message from untrusted bytes. Never panics; a refusal names the message and
    /// what is wrong with it (not JSON, a field missing or of the wrong type, an unknown field
    /// where the message refuses them).
    fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        serde_json::from_slice(payload).map_err(|e| ProtocolError::Malformed {
            message: Self::NAME,
            detail: e.to_string(),
        })
    }

    /// The message as JSON bytes. (Serialising these types cannot fail: every map key is a
    /// string and no field has a fallible `Serialize`; an empty payload would be the answer if
    /// it ever did.)
    fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

macro_rules! wire_messages {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl WireMessage for $ty {
            const NAME: &'static str = $name;
        })*
    };
}

wire_messages! {
    FactoryRequest => "factory request",
    FactoryResponse => "factory response",
    Challenge => "challenge",
    Evidence => "evidence",
    OnboardResult => "onboarding result",
    PolicyJson => "policy",
    ReleaseKeyRequest => "release key request",
    ReleaseRequest => "release request",
    ReleaseJson => "release",
    CampaignRequest => "campaign request",
    RollbackRequest => "rollback request",
    CampaignJson => "campaign",
    Offer => "offer",
    Status => "update status",
    Fetch => "fetch",
    UpdateChallenge => "update challenge",
    UpdateEvidence => "update evidence",
    UpdateResult => "update result",
    Cancel => "cancel",
    TufRequest => "TUF request",
    TufResponse => "TUF response",
    DecommissionCommand => "decommission command",
    ErasureEvidence => "erasure evidence",
    ReattestCommand => "reattest command",
    ReattestEvidence => "reattest evidence",
}
