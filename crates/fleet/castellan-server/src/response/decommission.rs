//! The signed decommission and its proof of erasure.
//!
//! ```text
//!  decommissioner A asks ─▶ request kept in the store (command_requests) until another
//!  decommissioner B asks ─▶ start: device onboarded, not decommissioned already
//!               nonce (32 random bytes, kept in the store until the deadline: `pending`)
//!               command signed with the operational CA key (Pki::sign_command)
//!               ─▶ dev/<id>/down/lifecycle/decommission      audit "device.decommission" (sent)
//!  device  ─▶ dev/<id>/up/lifecycle/erased {nonce, token}
//!               token verified with the device's IAK, over the pending nonce (used up: a
//!               replayed token finds none), lifecycle claim decommissioned
//!               ─▶ proof of erasure: SHA-256 of the token in the registry and the audit chain
//!  either way ─▶ IDevID and LDevID revoked (cessationOfOperation, in the CRL), session closed,
//!               lifecycle decommissioned in the registry (connections and onboarding refused
//!               forever)
//!  no proof by the deadline ─▶ the same, recorded as "decommission unconfirmed"
//! ```

use castellan_attest::{Lifecycle, VerificationKey, verify_token};
use castellan_pki::RevocationReason;
use castellan_store::{AttestationStatus, StoreError, unix_now};
use sha2::{Digest as _, Sha256};

use crate::authz::LIFECYCLE_DECOMMISSIONED;
use crate::core::Core;
use crate::protocol::{
    DECOMMISSION_DOMAIN, DecommissionCommand, ErasureEvidence, WireMessage as _, topics,
};

/// The audit action of every decommission step.
pub const ACTION: &str = "device.decommission";

/// Why a decommission was not started, or its evidence refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecommissionError {
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// The device never onboarded: it has no operational identity to receive a command.
    #[error("device {0} never onboarded: revoke it instead")]
    NotOnboarded(String),
    /// Decommissioned already (for good).
    #[error("device {0} is decommissioned already")]
    AlreadyDecommissioned(String),
    /// A decommission of the device is waiting for its proof already.
    #[error("a decommission of {0} is waiting for its proof already")]
    Pending(String),
    /// The operational CA's key could not sign the command.
    #[error("cannot sign the command: {0}")]
    Sign(String),
    /// The broker did not take the command.
    #[error("cannot send the command: {0}")]
    Send(String),
    /// The registry failed.
    #[error("registry: {0}")]
    Store(#[from] StoreError),
}

impl DecommissionError {
    /// A stable machine code (audit log, API).
    pub fn code(&self) -> &'static str {
        match self {
            DecommissionError::UnknownDevice(_) => "decommission.unknown_device",
            DecommissionError::NotOnboarded(_) => "decommission.not_onboarded",
            DecommissionError::AlreadyDecommissioned(_) => "decommission.already_decommissioned",
            DecommissionError::Pending(_) => "decommission.pending",
            DecommissionError::Sign(_) => "decommission.sign_failed",
            DecommissionError::Send(_) => "decommission.send_failed",
            DecommissionError::Store(_) => "decommission.registry_error",
        }
    }
}

/// What a request to decommission a device did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Requested {
    /// Recorded; another operator must ask for the same device to approve it.
    AwaitingApproval {
        /// The device.
        device_id: String,
        /// Who asked.
        requested_by: String,
    },
    /// The command was sent.
    Sent {
        /// What was sent.
        #[serde(flatten)]
        started: Started,
        /// Who asked first.
        requested_by: String,
        /// Who approved (the same operator when no approval is required).
        approved_by: String,
    },
}

/// An operator asks to decommission `id`. With `ServerConfig::decommission_approval` (the
/// default) the first request is recorded (in the store: it survives a restart) and a second,
/// different operator's request sends the command; the same operator asking again changes
/// nothing.
pub(crate) async fn request(
    core: &std::sync::Arc<Core>,
    id: &str,
    operator: &str,
) -> Result<Requested, DecommissionError> {
    not_decommissioned(core, id).await?;
    let requested_by = if core.config.decommission_approval {
        let first = core
            .store
            .request_command(id, super::pending::DECOMMISSION, operator, unix_now())
            .await?;
        if first == operator {
            return Ok(Requested::AwaitingApproval {
                device_id: id.into(),
                requested_by: first,
            });
        }
        first
    } else {
        operator.to_owned()
    };
    let actor = format!("{requested_by}+{operator}");
    let started = start(core, id, &actor).await?;
    Ok(Requested::Sent {
        started,
        requested_by,
        approved_by: operator.into(),
    })
}

/// The registry's record of `id`, unless it is unknown or already decommissioned.
async fn not_decommissioned(
    core: &Core,
    id: &str,
) -> Result<castellan_store::Device, DecommissionError> {
    let d = core
        .store
        .device(id)
        .await?
        .ok_or_else(|| DecommissionError::UnknownDevice(id.into()))?;
    if d.lifecycle == LIFECYCLE_DECOMMISSIONED {
        return Err(DecommissionError::AlreadyDecommissioned(id.into()));
    }
    Ok(d)
}

/// What [`start`] sent.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The device.
    pub device_id: String,
    /// The command's nonce, hex.
    pub nonce: String,
    /// When the device's proof is due (Unix seconds); after it the device is recorded as
    /// "decommission unconfirmed".
    pub deadline: i64,
}

/// Send the signed decommission command to `id` on behalf of `actor`, and arm the deadline.
async fn start(
    core: &std::sync::Arc<Core>,
    id: &str,
    actor: &str,
) -> Result<Started, DecommissionError> {
    // Read again: the device may have changed while the request waited for its approval.
    let d = not_decommissioned(core, id).await?;
    if d.ldevid_serial.is_none() {
        return Err(DecommissionError::NotOnboarded(id.into()));
    }
    let timeout = i64::try_from(core.config.decommission_timeout.as_secs()).unwrap_or(i64::MAX);
    let signed = super::pending::sign(core, id, timeout, DECOMMISSION_DOMAIN)
        .map_err(DecommissionError::Sign)?;
    let cmd = DecommissionCommand {
        device_id: id.into(),
        nonce: signed.nonce,
        issued_at: signed.issued_at,
        expires_at: signed.expires_at,
        signer_cert: signed.signer_cert,
        signature: signed.signature,
    };
    let deadline = cmd.expires_at;
    let pending = castellan_store::PendingCommand {
        device_id: id.into(),
        kind: super::pending::DECOMMISSION.into(),
        nonce: cmd.nonce.clone(),
        deadline,
        actor: actor.into(),
        created_at: cmd.issued_at,
    };
    if !super::pending::insert(core, &pending).await? {
        return Err(DecommissionError::Pending(id.into()));
    }
    if let Err(e) = core
        .publish(&topics::decommission(id), cmd.to_payload())
        .await
    {
        core.store
            .take_pending_command(id, super::pending::DECOMMISSION)
            .await?;
        return Err(DecommissionError::Send(e.to_string()));
    }
    core.auditor
        .append(
            actor,
            ACTION,
            id,
            true,
            &format!(
                "signed decommission command sent (nonce {}); proof of erasure due within {timeout} s",
                cmd.nonce
            ),
        )
        .await;
    Ok(Started {
        device_id: id.into(),
        nonce: cmd.nonce,
        deadline,
    })
}

/// No proof of erasure by the deadline (the pending command was taken): closed all the same.
pub(crate) async fn unanswered(core: &Core, id: &str) {
    let why = "decommission unconfirmed: no proof of erasure before the deadline";
    if let Err(e) = finish(core, id, why).await {
        log::warn!("decommission of {id}: {e}");
    }
}

/// The device's final token (`dev/<id>/up/lifecycle/erased`): verified, recorded as proof of
/// erasure, then the device is closed for good. A refusal is audited with its reason.
pub(crate) async fn erased(core: &Core, id: &str, payload: &[u8]) {
    match proof(core, id, payload).await {
        Ok(proof) => {
            let note = format!("decommissioned with proof of erasure: final token sha256 {proof}");
            if let Err(e) = finish(core, id, &note).await {
                log::warn!("decommission of {id}: {e}");
            }
        }
        Err((code, reason)) => {
            core.auditor
                .append_coded(
                    id,
                    ACTION,
                    id,
                    false,
                    Some(code),
                    &format!("final token refused: {reason}"),
                )
                .await;
        }
    }
}

/// The SHA-256 (hex) of a final token that proves the erasure, or the refusal's code and reason.
async fn proof(core: &Core, id: &str, payload: &[u8]) -> Result<String, (&'static str, String)> {
    let refused = |code: &'static str| move |e: String| (code, e);
    let ev = ErasureEvidence::parse(payload)
        .map_err(|e| e.to_string())
        .map_err(refused("decommission.malformed"))?;
    let token = hex::decode(ev.token.trim())
        .map_err(|_| "the token is not hex".to_string())
        .map_err(refused("decommission.malformed"))?;
    let iak = core
        .store
        .iak_public_key(id)
        .await
        .map_err(|e| e.to_string())
        .map_err(refused("decommission.registry_error"))?
        .ok_or_else(|| "no attestation key registered".to_string())
        .map_err(refused("attestation.no_key"))?;
    let key = VerificationKey::p256_from_sec1(&iak)
        .map_err(|e| e.to_string())
        .map_err(refused("attestation.key_unusable"))?;
    let claims = verify_token(&token, &key)
        .map_err(|e| e.to_string())
        .map_err(refused("attestation.bad_signature"))?;
    if claims.lifecycle_state() != Some(Lifecycle::Decommissioned) {
        return Err((
            "attestation.lifecycle",
            format!(
                "the token shows lifecycle {:#06x}, not decommissioned",
                claims.lifecycle
            ),
        ));
    }
    let taken = core
        .store
        .take_pending_command_matching(
            id,
            super::pending::DECOMMISSION,
            &hex::encode(&claims.nonce),
        )
        .await
        .map_err(|e| ("decommission.registry_error", e.to_string()))?;
    if !taken {
        return Err((
            "attestation.nonce_mismatch",
            "the token is not over a pending decommission's nonce (replayed, or none pending)"
                .into(),
        ));
    }
    Ok(hex::encode(Sha256::digest(&token)))
}

/// Revoke the device's certificates, close its session, mark it decommissioned for good with
/// `note` (proof of erasure, or unconfirmed), audit it.
async fn finish(core: &Core, id: &str, note: &str) -> Result<(), StoreError> {
    core.store
        .set_lifecycle(id, LIFECYCLE_DECOMMISSIONED)
        .await?;
    core.store
        .set_attestation(id, AttestationStatus::Unknown, Some(note))
        .await?;
    let revoked =
        crate::api::devices::revoke_device(core, id, RevocationReason::CessationOfOperation)
            .await
            .map(|(n, _)| n)
            .unwrap_or_else(|e| format!("revocation failed: {e}"));
    let confirmed = !note.starts_with("decommission unconfirmed");
    log::info!("device {id}: {note}; {revoked}");
    core.auditor
        .append(
            "system",
            ACTION,
            id,
            confirmed,
            &format!("{note}; {revoked}"),
        )
        .await;
    Ok(())
}
