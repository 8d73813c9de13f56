//! Reboot and re-attest: the first answer to a run-time compromise of a device whose measured
//! image was always the good one (an update would install what it runs already).
//!
//! ```text
//!  heal (operator, or the service after an automatic quarantine), measurement good
//!   ─▶ start: quarantined, onboarded; nonce (32 random bytes, in the store until the deadline)
//!      command signed with the operational CA key, domain "castellan/reattest/v1"
//!      ─▶ dev/<id>/down/lifecycle/reattest                 audit "response.reattest" (sent)
//!  device: checks the command as a decommission command, reboots, attests over the nonce
//!      ─▶ dev/<id>/up/lifecycle/reattested {nonce, token}
//!  token: the device's IAK, the pending nonce, lifecycle secured, every component as the
//!         registry's reference values say
//!      good ─▶ pending taken (once), attestation passed ─▶ probation (`heal`): released later
//!      an authentic token showing anything else ─▶ failed
//!  failed, or no token by the deadline (ServerConfig::reattest_timeout)
//!      ─▶ audit refused with the reason; stays quarantined; heal campaign of the last good
//!         release, even over the same measurement (`campaign::heal` forced)
//! ```
//!
//! A token that is not authentic (not the device's IAK, not over the pending nonce) is refused
//! and audited and changes nothing: the command still waits for the real answer.

use castellan_attest::AppraisalError;
use castellan_store::{AttestationStatus, PendingCommand, StoreError};
use sha2::{Digest as _, Sha256};

use crate::appraisal::Refusal;
use crate::authz::LIFECYCLE_DECOMMISSIONED;
use crate::core::Core;
use crate::protocol::{
    REATTEST_DOMAIN, ReattestCommand, ReattestEvidence, WireMessage as _, topics,
};

use super::pending::REATTEST;

/// The audit action of every reattest step.
pub const ACTION: &str = "response.reattest";

/// Why a reattest was not started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReattestError {
    /// No such device.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// Only a contained device is re-attested.
    #[error("device {0} is not quarantined: nothing to heal (quarantine it first)")]
    NotQuarantined(String),
    /// No operational identity to receive a command, or at its end of life.
    #[error("device {0} is not onboarded, or decommissioned")]
    NotOnboarded(String),
    /// A reattest of the device waits for its token already.
    #[error("a reattest of {0} is waiting for its token already")]
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

impl ReattestError {
    /// A stable machine code (audit log, API).
    pub fn code(&self) -> &'static str {
        match self {
            ReattestError::UnknownDevice(_) => "reattest.unknown_device",
            ReattestError::NotQuarantined(_) => "heal.not_quarantined",
            ReattestError::NotOnboarded(_) => "reattest.not_onboarded",
            ReattestError::Pending(_) => "reattest.pending",
            ReattestError::Sign(_) => "reattest.sign_failed",
            ReattestError::Send(_) => "reattest.send_failed",
            ReattestError::Store(_) => "reattest.registry_error",
        }
    }
}

/// What [`start`] sent.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The device.
    pub device_id: String,
    /// The command's nonce, hex: the token after the reboot must be over it.
    pub nonce: String,
    /// When the token is due (Unix seconds); after it the device goes on to a heal campaign.
    pub deadline: i64,
}

/// Send the signed reattest command to quarantined device `id` on behalf of `actor`.
pub(crate) async fn start(core: &Core, id: &str, actor: &str) -> Result<Started, ReattestError> {
    let d = core
        .store
        .device(id)
        .await?
        .ok_or_else(|| ReattestError::UnknownDevice(id.into()))?;
    if d.lifecycle == LIFECYCLE_DECOMMISSIONED || d.ldevid_serial.is_none() {
        return Err(ReattestError::NotOnboarded(id.into()));
    }
    if !d.quarantined {
        return Err(ReattestError::NotQuarantined(id.into()));
    }
    let timeout = i64::try_from(core.config.reattest_timeout.as_secs()).unwrap_or(i64::MAX);
    let signed =
        super::pending::sign(core, id, timeout, REATTEST_DOMAIN).map_err(ReattestError::Sign)?;
    let cmd = ReattestCommand {
        device_id: id.into(),
        nonce: signed.nonce,
        issued_at: signed.issued_at,
        expires_at: signed.expires_at,
        signer_cert: signed.signer_cert,
        signature: signed.signature,
    };
    let pending = PendingCommand {
        device_id: id.into(),
        kind: REATTEST.into(),
        nonce: cmd.nonce.clone(),
        deadline: cmd.expires_at,
        actor: actor.into(),
        created_at: cmd.issued_at,
    };
    if !super::pending::insert(core, &pending).await? {
        return Err(ReattestError::Pending(id.into()));
    }
    if let Err(e) = core.publish(&topics::reattest(id), cmd.to_payload()).await {
        core.store.take_pending_command(id, REATTEST).await?;
        return Err(ReattestError::Send(e.to_string()));
    }
    core.auditor
        .append(
            actor,
            ACTION,
            id,
            true,
            &format!(
                "measurement good (run-time compromise): signed reboot-and-reattest command \
                 sent (nonce {}); token due within {timeout} s",
                cmd.nonce
            ),
        )
        .await;
    Ok(Started {
        device_id: id.into(),
        nonce: cmd.nonce,
        deadline: cmd.expires_at,
    })
}

/// The device's token after the reboot (`dev/<id>/up/lifecycle/reattested`).
pub(crate) async fn reattested(core: &Core, id: &str, payload: &[u8]) {
    match appraise(core, id, payload).await {
        Ok(note) => {
            let now = castellan_store::unix_now();
            if let Err(e) = core
                .store
                .set_attestation(id, AttestationStatus::Passed, Some(&note))
                .await
            {
                log::warn!("{id}: attestation not recorded: {e}");
            }
            core.auditor.append("system", ACTION, id, true, &note).await;
            super::heal::start_probation_after(core, id, &note, now).await;
        }
        Err(Outcome::Ignored(code, reason)) => {
            core.auditor
                .append_coded(id, ACTION, id, false, Some(code), &reason)
                .await;
        }
        Err(Outcome::Failed(code, reason)) => failed(core, id, code, &reason).await,
    }
}

/// Why a token did not re-attest the device.
enum Outcome {
    /// Not an authentic answer to the pending command: refused, the command still waits.
    Ignored(&'static str, String),
    /// The device's authentic answer, and it is not the good image: the reattest failed.
    Failed(&'static str, String),
}

async fn appraise(core: &Core, id: &str, payload: &[u8]) -> Result<String, Outcome> {
    let ev = ReattestEvidence::parse(payload)
        .map_err(|e| Outcome::Ignored("reattest.malformed", format!("token refused: {e}")))?;
    let pending = core
        .store
        .pending_command(id, REATTEST)
        .await
        .map_err(|e| Outcome::Ignored("reattest.registry_error", e.to_string()))?;
    let Some(pending) = pending.filter(|p| p.nonce == ev.nonce) else {
        return Err(Outcome::Ignored(
            "attestation.nonce_mismatch",
            "token refused: not the answer to a pending reattest (replayed, or none pending)"
                .into(),
        ));
    };
    let nonce = hex::decode(&pending.nonce).unwrap_or_default();
    match crate::appraisal::reattest(&core.store, id, &ev.token, &nonce).await {
        Ok(_) => {}
        Err(
            r @ (Refusal::TokenNotHex
            | Refusal::Token(_)
            | Refusal::Appraisal(AppraisalError::NonceMismatch)
            | Refusal::Registry(_)),
        ) => return Err(Outcome::Ignored(r.code(), format!("token refused: {r}"))),
        Err(r) => {
            // Authentic and over the nonce, but not the good image: used up.
            let _ = core
                .store
                .take_pending_command_matching(id, REATTEST, &pending.nonce)
                .await;
            return Err(Outcome::Failed(
                r.code(),
                format!("the token after the reboot is not the good image: {r}"),
            ));
        }
    }
    let taken = core
        .store
        .take_pending_command_matching(id, REATTEST, &pending.nonce)
        .await
        .map_err(|e| Outcome::Ignored("reattest.registry_error", e.to_string()))?;
    if !taken {
        return Err(Outcome::Ignored(
            "attestation.nonce_mismatch",
            "token refused: the reattest was answered already".into(),
        ));
    }
    let token = hex::decode(ev.token.trim()).unwrap_or_default();
    Ok(format!(
        "re-attested after a reboot over a fresh nonce ({}): the good image, lifecycle \
         secured; token sha256 {}",
        pending.nonce,
        hex::encode(Sha256::digest(&token))
    ))
}

/// No token by the deadline (the pending command was taken).
pub(crate) async fn unanswered(core: &Core, id: &str) {
    failed(
        core,
        id,
        "reattest.unanswered",
        "no token after the reboot before the deadline",
    )
    .await;
}

/// The reattest failed: audited; the device stays quarantined and goes on to a heal campaign.
async fn failed(core: &Core, id: &str, code: &'static str, reason: &str) {
    log::info!("{id}: reattest failed ({code}): {reason}");
    if let Err(e) = core
        .store
        .set_attestation(id, AttestationStatus::Failed, Some(reason))
        .await
    {
        log::warn!("{id}: attestation not recorded: {e}");
    }
    core.auditor
        .append_coded(
            "system",
            ACTION,
            id,
            false,
            Some(code),
            &format!("reattest failed: {reason}; stays quarantined, heal campaign next"),
        )
        .await;
    let (allowed, note) = match crate::campaign::heal(core, id, "system", true).await {
        Ok(c) => (
            true,
            format!(
                "after the failed reattest: heal campaign {} of release {} started",
                c.campaign_id, c.release_id
            ),
        ),
        Err(e) => (
            false,
            format!("after the failed reattest: not healed: {e} [{}]", e.code()),
        ),
    };
    core.auditor
        .append("system", "response.heal", id, allowed, &note)
        .await;
}
