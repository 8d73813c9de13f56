//! The service side of the MQTT protocol: onboarding (challenge, appraisal, LDevID), telemetry
//! and status, consuming the messages the broker accepted from devices.
//!
//! ```text
//!  broker ── DeviceMessage ──▶ run ──▶ up/onboard/hello    ─▶ nonce (store, single use, TTL)
//!                                                              ─▶ down/onboard/challenge
//!                                  ──▶ up/onboard/evidence ─▶ appraise ─▶ LDevID ─▶ down/onboard/result
//!                                  ──▶ telemetry / status  ─▶ registry (last seen, telemetry)
//! ```
//!
//! Appraisal, in order: the token's signature by the IAK registered at the factory; its nonce,
//! consumed from the store (unknown, used, expired or another device's nonce is refused); the
//! lifecycle (secured only); every software component equal to the registry's reference values
//! of the firmware the device should run (digest, signer, version; no unlisted component). Then
//! the CSR's self-signature, and the LDevID. Every outcome is audited (`onboard`), the registry's
//! attestation status is updated, and a refusal tells the device the same reason.

use std::sync::Arc;

use castellan_attest::{ExpectedComponent, ReferenceValues, VerificationKey, verify_token};
use castellan_broker::{DeviceMessage, TopicPolicy};
use castellan_pki::{CaKind, LdevidKey, RevocationReason, RevokedCert};
use castellan_store::{AttestationStatus, Device, Revocation, StoreError, unix_now};
use tokio::sync::mpsc;

use crate::core::Core;
use crate::protocol::{Challenge, Evidence, OnboardResult, policy_json, topics};

/// The audit action of an onboarding decision.
pub const ACTION_ONBOARD: &str = "onboard";

/// Consume device messages until the broker stops. Update messages go to the campaign engine
/// through `updates`, in order.
pub(crate) async fn run(
    core: Arc<Core>,
    mut rx: mpsc::Receiver<DeviceMessage>,
    updates: mpsc::Sender<DeviceMessage>,
) {
    while let Some(msg) = rx.recv().await {
        if msg.topic.contains("/up/update/") {
            if updates.send(msg).await.is_err() {
                log::warn!("campaign engine stopped: update message dropped");
            }
            continue;
        }
        let core = core.clone();
        // One task per message: an appraisal never holds up other devices' telemetry.
        tokio::spawn(async move { handle(&core, msg).await });
    }
}

async fn handle(core: &Core, msg: DeviceMessage) {
    let id = msg.device_id.as_str();
    let prefix = format!("dev/{id}/");
    let Some(rest) = msg.topic.strip_prefix(&prefix) else {
        return;
    };
    let now = unix_now();
    match rest {
        "up/onboard/hello" => hello(core, id, now).await,
        "up/onboard/evidence" => evidence(core, id, &msg.payload, now).await,
        "telemetry" => telemetry(core, id, &msg.payload, now).await,
        _ => {
            let _ = core.store.touch_device(id, now).await;
        }
    }
}

async fn hello(core: &Core, id: &str, now: i64) {
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
    if let Err(e) = core.publish(&topics::challenge(id), to_json(&body)).await {
        log::warn!("onboarding {id}: cannot send the challenge: {e}");
    }
}

async fn evidence(core: &Core, id: &str, payload: &[u8], now: i64) {
    let result = match appraise_and_issue(core, id, payload, now).await {
        Ok(r) => r,
        Err(reason) => {
            if let Err(e) = core
                .store
                .set_attestation(id, AttestationStatus::Failed, Some(&reason))
                .await
            {
                log::warn!("onboarding {id}: cannot record the attestation status: {e}");
            }
            core.auditor
                .append(id, ACTION_ONBOARD, id, false, &reason)
                .await;
            OnboardResult {
                accepted: false,
                ldevid_pem: None,
                chain_pem: None,
                policy: None,
                reason: Some(reason),
            }
        }
    };
    if let Err(e) = core.publish(&topics::result(id), to_json(&result)).await {
        log::warn!("onboarding {id}: cannot send the result: {e}");
    }
}

/// Appraise the evidence and issue the LDevID; `Err` is the refusal's reason.
async fn appraise_and_issue(
    core: &Core,
    id: &str,
    payload: &[u8],
    now: i64,
) -> Result<OnboardResult, String> {
    let ev: Evidence =
        serde_json::from_slice(payload).map_err(|e| format!("malformed evidence: {e}"))?;
    let token =
        hex::decode(ev.token.trim()).map_err(|_| "evidence token is not hex".to_string())?;
    let csr = hex::decode(ev.csr.trim()).map_err(|_| "evidence CSR is not hex".to_string())?;
    let device = core
        .store
        .device(id)
        .await
        .map_err(store_reason)?
        .ok_or_else(|| format!("unknown device {id}"))?;
    let iak = core
        .store
        .iak_public_key(id)
        .await
        .map_err(store_reason)?
        .ok_or_else(|| {
            "no attestation key was registered for this device at the factory".to_string()
        })?;
    let key = VerificationKey::p256_from_sec1(&iak)
        .map_err(|e| format!("the registered attestation key is unusable: {e}"))?;
    // 1. Signed by the key registered at the factory.
    let claims =
        verify_token(&token, &key).map_err(|e| format!("attestation token refused: {e}"))?;
    // 2. Over a fresh nonce this server issued to this device (used up by this attempt).
    core.store
        .consume_nonce(id, &claims.nonce, now)
        .await
        .map_err(|e| format!("nonce refused: {e}"))?;
    // 3. Lifecycle and measurements against what the device should run.
    let reference = reference_values(&device)?;
    reference
        .check(&claims, &claims.nonce)
        .map_err(|e| format!("appraisal failed: {e}"))?;
    // 4. The operational identity, for the key in the CSR (its self-signature proves possession).
    let ldevid = core
        .pki
        .issue_ldevid(LdevidKey::Csr(&csr), id)
        .map_err(|e| format!("CSR refused: {e}"))?;
    let policy = TopicPolicy::device(id).map_err(|e| e.to_string())?;
    if let Some(old) = device.ldevid_serial.as_deref() {
        supersede(core, id, old, now).await;
    }
    let serial = ldevid.serial_hex();
    core.store
        .record_onboarding(id, &serial, now)
        .await
        .map_err(store_reason)?;
    core.store
        .set_attestation(
            id,
            AttestationStatus::Passed,
            Some("onboarding token appraised against the reference values"),
        )
        .await
        .map_err(store_reason)?;
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

/// What the registry says the device should run, as appraisal reference values: lifecycle
/// secured, each recorded component with its digest, signer and (minimum) version, and no
/// unlisted component.
pub(crate) fn reference_values(device: &Device) -> Result<ReferenceValues, String> {
    if device.reference_measurements.is_empty() {
        return Err("no reference measurements are registered for this device".into());
    }
    let mut components = Vec::with_capacity(device.reference_measurements.len());
    for m in &device.reference_measurements {
        let digest = hex::decode(&m.digest_hex)
            .map_err(|_| format!("registry: reference digest of {} is not hex", m.mtype))?;
        let signer = if m.signer_id.is_empty() {
            None
        } else {
            Some(
                hex::decode(&m.signer_id)
                    .map_err(|_| format!("registry: signer id of {} is not hex", m.mtype))?,
            )
        };
        components.push(ExpectedComponent {
            measurement_type: m.mtype.clone(),
            measurement_values: vec![digest],
            signer_id: signer,
            min_version: (!m.version.is_empty()).then(|| m.version.clone()),
        });
    }
    Ok(ReferenceValues {
        components,
        ..ReferenceValues::default()
    })
}

async fn telemetry(core: &Core, id: &str, payload: &[u8], now: i64) {
    let value: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            log::warn!("telemetry from {id} is not a JSON object; dropped");
            let _ = core.store.touch_device(id, now).await;
            return;
        }
    };
    let text = value.to_string();
    if let Err(e) = core.store.record_telemetry(id, now, &text).await {
        log::warn!("telemetry from {id} not stored: {e}");
    }
    if let Some(fw) = value
        .get("firmware")
        .and_then(|f| f.as_str())
        .filter(|f| f.len() <= 64)
    {
        let _ = core.store.set_firmware_version(id, fw).await;
    }
    let _ = core.store.touch_device(id, now).await;
}

fn store_reason(e: StoreError) -> String {
    format!("registry error: {e}")
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
