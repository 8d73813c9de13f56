//! Onboarding, the server's half: a challenge for each hello, and for the evidence the
//! appraisal ([`crate::appraisal`]) then the LDevID. The router ([`crate::router`]) hands it
//! the device's `up/onboard/…` messages.
//!
//! ```text
//!  up/onboard/hello    ─▶ nonce (store, single use, TTL) ─▶ down/onboard/challenge
//!  up/onboard/evidence ─▶ appraisal ─▶ CSR ─▶ LDevID ─▶ down/onboard/result
//! ```
//!
//! Appraisal, in order: the token's signature by the IAK registered at the factory; its nonce,
//! consumed from the store (unknown, used, expired or another device's nonce is refused); the
//! lifecycle (secured only); every software component equal to the registry's reference values
//! of the firmware the device should run (digest, signer, version; no unlisted component). Then
//! the CSR's self-signature, and the LDevID. Every outcome is audited (`onboard`, a refusal with
//! its stable code), the registry's attestation status is updated, and a refusal tells the
//! device the same reason and code.

use castellan_broker::{BrokerError, TopicPolicy};
use castellan_pki::{CaKind, LdevidKey, PkiError, RevocationReason, RevokedCert};
use castellan_store::{AttestationStatus, Revocation, StoreError};
use sha2::Digest as _;

use crate::appraisal::{self, Refusal};
use crate::core::Core;
use crate::protocol::{Challenge, Evidence, OnboardResult, WireMessage as _, policy_json, topics};

/// The audit action of an onboarding decision.
pub const ACTION_ONBOARD: &str = "onboard";

/// Why a device was not onboarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardRefusal {
    /// The evidence message is not JSON of the expected shape.
    #[error("malformed evidence: {0}")]
    Malformed(serde_json::Error),
    /// The CSR field is not hex.
    #[error("evidence CSR is not hex")]
    CsrNotHex,
    /// The attestation token was refused.
    #[error(transparent)]
    Attestation(#[from] Refusal),
    /// The CSR does not verify or cannot be certified.
    #[error("CSR refused: {0}")]
    Csr(PkiError),
    /// The device's topic policy cannot be built (its id).
    #[error("{0}")]
    Policy(BrokerError),
    /// The registry failed.
    #[error("registry error: {0}")]
    Registry(StoreError),
}

impl OnboardRefusal {
    /// The stable machine code of the refusal (audit log, MQTT result).
    pub fn code(&self) -> &'static str {
        match self {
            OnboardRefusal::Malformed(_) => "onboarding.malformed_evidence",
            OnboardRefusal::CsrNotHex => "onboarding.csr_not_hex",
            OnboardRefusal::Attestation(r) => r.code(),
            OnboardRefusal::Csr(_) => "onboarding.csr_refused",
            OnboardRefusal::Policy(_) => "onboarding.invalid_id",
            OnboardRefusal::Registry(_) => "onboarding.registry_error",
        }
    }

    /// Whether the attestation token itself was refused (an appraisal that failed), not the
    /// message around it or what follows it.
    pub fn is_appraisal(&self) -> bool {
        matches!(self, OnboardRefusal::Attestation(_))
    }
}

/// `up/onboard/hello`: a fresh nonce (single use, TTL) on `down/onboard/challenge`.
pub(crate) async fn hello(core: &Core, id: &str, now: i64) {
    let ttl = i64::try_from(core.config.nonce_ttl.as_secs()).unwrap_or(300);
    let nonce = match core.store.create_nonce(id, now, ttl).await {
        Ok(n) => n,
        Err(e) => {
            log::error!("onboarding {id}: cannot create a nonce: {e}");
            return;
        }
    };
    let body = Challenge {
        nonce: hex::encode(nonce),
    };
    if let Err(e) = core
        .deliver(id, &topics::challenge(id), body.to_payload())
        .await
    {
        log::warn!("onboarding {id}: cannot send the challenge: {e}");
    }
}

/// `up/onboard/evidence`: appraisal, then the LDevID; the verdict on `down/onboard/result`.
pub(crate) async fn evidence(core: &Core, id: &str, payload: &[u8], now: i64) {
    let result = match appraise_and_issue(core, id, payload, now).await {
        Ok(r) => r,
        Err(refusal) => {
            let reason = refusal.to_string();
            let code = refusal.code();
            core.observed.onboarding(code);
            if refusal.is_appraisal() {
                core.observed.attestation("onboarding", false);
            }
            if let Err(e) = core
                .store
                .set_attestation(id, AttestationStatus::Failed, Some(&reason))
                .await
            {
                log::warn!("onboarding {id}: cannot record the attestation status: {e}");
            }
            core.auditor
                .append_coded(id, ACTION_ONBOARD, id, false, Some(code), &reason)
                .await;
            OnboardResult {
                accepted: false,
                ldevid_pem: None,
                chain_pem: None,
                policy: None,
                reason: Some(reason),
                code: Some(code.to_string()),
            }
        }
    };
    if let Err(e) = core
        .deliver(id, &topics::result(id), result.to_payload())
        .await
    {
        log::warn!("onboarding {id}: cannot send the result: {e}");
    }
}

/// Appraise the evidence and issue the LDevID.
async fn appraise_and_issue(
    core: &Core,
    id: &str,
    payload: &[u8],
    now: i64,
) -> Result<OnboardResult, OnboardRefusal> {
    let ev: Evidence = serde_json::from_slice(payload).map_err(OnboardRefusal::Malformed)?;
    let csr = hex::decode(ev.csr.trim()).map_err(|_| OnboardRefusal::CsrNotHex)?;
    // 1.-3. Signed by the factory's IAK, over a fresh nonce, as the registry expects.
    let device = appraisal::onboarding(&core.store, id, &ev.token, now).await?;
    // 4. The operational identity, for the key in the CSR (its self-signature proves possession).
    let ldevid = core
        .pki
        .issue_ldevid(LdevidKey::Csr(&csr), id)
        .map_err(OnboardRefusal::Csr)?;
    let policy = TopicPolicy::device(id).map_err(OnboardRefusal::Policy)?;
    if let Some(old) = device.ldevid_serial.as_deref() {
        supersede(core, id, old, now).await;
    }
    let serial = ldevid.serial_hex();
    // The device's sessions are bound to this very certificate (see `cert_binding`).
    let sha256 = hex::encode(sha2::Sha256::digest(&ldevid.der));
    core.store
        .record_onboarding(id, &serial, &sha256, now)
        .await
        .map_err(OnboardRefusal::Registry)?;
    // Kept for the console's certificate chain; the binding above is what the broker checks.
    if let Err(e) = core.store.set_ldevid_der(id, &ldevid.der).await {
        log::warn!("onboarding {id}: LDevID kept by its SHA-256 only: {e}");
    }
    core.store
        .set_attestation(
            id,
            AttestationStatus::Passed,
            Some("onboarding token appraised against the reference values"),
        )
        .await
        .map_err(OnboardRefusal::Registry)?;
    core.observed.onboarding("accepted");
    core.observed.attestation("onboarding", true);
    core.auditor
        .append(
            id,
            ACTION_ONBOARD,
            id,
            true,
            &format!("attestation passed; LDevID {serial} issued"),
        )
        .await;
    Ok(OnboardResult {
        accepted: true,
        ldevid_pem: Some(ldevid.pem),
        chain_pem: Some(core.pki.chain_pem(CaKind::Operational)),
        policy: Some(policy_json(&policy)),
        reason: None,
        code: None,
    })
}

/// The previous LDevID of a re-onboarded device is revoked (superseded).
async fn supersede(core: &Core, id: &str, old_serial: &str, now: i64) {
    let rev = Revocation {
        serial: old_serial.to_string(),
        issuer: "operational".into(),
        reason: RevocationReason::Superseded.code(),
        revoked_at: now,
        device_id: Some(id.to_string()),
    };
    if let Err(e) = core.store.revoke(&rev).await {
        log::warn!("onboarding {id}: cannot revoke the superseded LDevID {old_serial}: {e}");
    }
    if let Some(entry) = RevokedCert::from_hex(old_serial, RevocationReason::Superseded, now) {
        core.revocations.insert(entry);
    }
}
