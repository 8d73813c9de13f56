//! The MQTT topics of the protocol, as strings: each builder writes one [`Topic`] (the typed
//! form, which also reads topics back). A device's session with its IDevID may use only
//! `dev/<id>/up/onboard/#` and `dev/<id>/down/onboard/#`; with its LDevID, what its
//! [`crate::PolicyJson`] grants (telemetry, status, the update topics).
//!
//! ```text
//!  dev/<id>/up/onboard/{hello,evidence}        dev/<id>/down/onboard/{challenge,result}
//!  dev/<id>/telemetry   dev/<id>/status
//!  dev/<id>/up/update/{status,fetch,evidence}  dev/<id>/down/update/{offer,challenge,result,
//!                                                                   cancel,chunk/<release_id>}
//!  dev/<id>/up/tuf/request                     dev/<id>/down/tuf/response
//! ```

use crate::topic::{OnboardKind, Topic, UpdateDownKind, UpdateUpKind};

fn onboard(id: &str, kind: OnboardKind) -> String {
    Topic::Onboard {
        id: id.into(),
        kind,
    }
    .to_string()
}

fn update_up(id: &str, kind: UpdateUpKind) -> String {
    Topic::UpdateUp {
        id: id.into(),
        kind,
    }
    .to_string()
}

fn update_down(id: &str, kind: UpdateDownKind) -> String {
    Topic::UpdateDown {
        id: id.into(),
        kind,
    }
    .to_string()
}

/// `dev/<id>/up/onboard/hello`: the device asks for a challenge.
pub fn hello(id: &str) -> String {
    onboard(id, OnboardKind::Hello)
}

/// `dev/<id>/down/onboard/challenge`: the server's nonce.
pub fn challenge(id: &str) -> String {
    onboard(id, OnboardKind::Challenge)
}

/// `dev/<id>/up/onboard/evidence`: the device's token and CSR.
pub fn evidence(id: &str) -> String {
    onboard(id, OnboardKind::Evidence)
}

/// `dev/<id>/down/onboard/result`: the verdict.
pub fn result(id: &str) -> String {
    onboard(id, OnboardKind::Result)
}

/// `dev/<id>/down/onboard/#`: what an onboarding device subscribes to.
pub fn onboard_down_filter(id: &str) -> String {
    format!("dev/{id}/down/onboard/#")
}

/// `dev/<id>/telemetry`.
pub fn telemetry(id: &str) -> String {
    Topic::Telemetry { id: id.into() }.to_string()
}

/// `dev/<id>/status`.
pub fn status(id: &str) -> String {
    Topic::Status { id: id.into() }.to_string()
}

/// `dev/<id>/down/update/offer`: the server offers a release ([`crate::Offer`]).
pub fn update_offer(id: &str) -> String {
    update_down(id, UpdateDownKind::Offer)
}

/// `dev/<id>/up/update/status`: the device's progress ([`crate::Status`]).
pub fn update_status(id: &str) -> String {
    update_up(id, UpdateUpKind::Status)
}

/// `dev/<id>/up/update/fetch`: the device asks for bytes ([`crate::Fetch`]).
pub fn update_fetch(id: &str) -> String {
    update_up(id, UpdateUpKind::Fetch)
}

/// `dev/<id>/down/update/chunk/<release_id>`: bytes of the image
/// ([`crate::encode_chunk`]).
pub fn update_chunk(id: &str, release_id: &str) -> String {
    Topic::UpdateChunk {
        id: id.into(),
        release: release_id.into(),
    }
    .to_string()
}

/// `dev/<id>/down/update/challenge`: the post-update nonce ([`crate::UpdateChallenge`]).
pub fn update_challenge(id: &str) -> String {
    update_down(id, UpdateDownKind::Challenge)
}

/// `dev/<id>/up/update/evidence`: the post-update token ([`crate::UpdateEvidence`]).
pub fn update_evidence(id: &str) -> String {
    update_up(id, UpdateUpKind::Evidence)
}

/// `dev/<id>/down/update/result`: the verdict ([`crate::UpdateResult`]).
pub fn update_result(id: &str) -> String {
    update_down(id, UpdateDownKind::Result)
}

/// `dev/<id>/down/update/cancel`: the campaign was aborted ([`crate::Cancel`]).
pub fn update_cancel(id: &str) -> String {
    update_down(id, UpdateDownKind::Cancel)
}

/// `dev/<id>/down/update/#`: what a device subscribes to for updates.
pub fn update_down_filter(id: &str) -> String {
    format!("dev/{id}/down/update/#")
}

/// `dev/<id>/up/tuf/request`: the device asks for a TUF file ([`crate::TufRequest`]).
pub fn tuf_request(id: &str) -> String {
    Topic::TufRequest { id: id.into() }.to_string()
}

/// `dev/<id>/down/tuf/response`: the server's answer ([`crate::TufResponse`]).
pub fn tuf_response(id: &str) -> String {
    Topic::TufResponse { id: id.into() }.to_string()
}

/// `dev/<id>/down/lifecycle/decommission`: the signed command
/// ([`crate::DecommissionCommand`]).
pub fn decommission(id: &str) -> String {
    Topic::Decommission { id: id.into() }.to_string()
}

/// `dev/<id>/up/lifecycle/erased`: the final token ([`crate::ErasureEvidence`]).
pub fn erased(id: &str) -> String {
    Topic::Erased { id: id.into() }.to_string()
}

/// `dev/<id>/up/detect/report`: a signed detection report (`castellan-detect-report`).
pub fn detect_report(id: &str) -> String {
    Topic::DetectReport { id: id.into() }.to_string()
}

/// `dev/<id>/down/lifecycle/reattest`: the signed reboot-and-reattest command
/// ([`crate::ReattestCommand`]).
pub fn reattest(id: &str) -> String {
    Topic::Reattest { id: id.into() }.to_string()
}

/// `dev/<id>/up/lifecycle/reattested`: the token after the reboot ([`crate::ReattestEvidence`]).
pub fn reattested(id: &str) -> String {
    Topic::Reattested { id: id.into() }.to_string()
}

/// `dev/<id>/down/lifecycle/#`: what a device subscribes to for lifecycle commands (granted
/// to a quarantined device too: a contained device can still be decommissioned).
pub fn lifecycle_down_filter(id: &str) -> String {
    format!("dev/{id}/down/lifecycle/#")
}

/// Where the fleet service publishes every alert it raises (`AlertJson`), for integrations
/// holding a service identity; nothing else publishes there.
pub const FLEET_ALERTS: &str = "fleet/alerts";
