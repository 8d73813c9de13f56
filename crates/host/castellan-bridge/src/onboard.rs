//! Onboarding the QEMU device (fleet protocol, "Onboarding") with the fleet client's one
//! implementation ([`castellan_agent::onboard::onboard_device`]): the bridge connects with the
//! IDevID, the device's secure partition makes the token over the server's nonce (one QEMU
//! run), and the CSR of a new bridge-held operational key asks for the LDevID.
//!
//! ```text
//!  CONNECT (IDevID, bridge-held key) · SUBSCRIBE dev/<id>/down/onboard/#
//!  PUBLISH dev/<id>/up/onboard/hello {}            ──▶
//!                                                  ◀── dev/<id>/down/onboard/challenge {nonce}
//!  QEMU `attest <nonce>` → token (IAK, secure partition); CSR of a new bridge-held key
//!  PUBLISH dev/<id>/up/onboard/evidence {token, csr} ──▶ appraisal against the registry
//!                                                  ◀── dev/<id>/down/onboard/result
//! ```

use std::sync::Arc;
use std::time::Duration;

use castellan_agent::identity::{DeviceKey, IdentityFiles, open_key};
use castellan_agent::onboard::{
    AttestFuture, OnboardingDevice, fresh_operational_pem_key, onboard_device,
};
use castellan_agent::{AgentError, Endpoint};

use crate::Logger;
use crate::device::QemuDevice;
use crate::error::BridgeError;

/// Onboards the device registered in `files`: returns once its LDevID is stored, or the
/// server's refusal as [`BridgeError::Refused`].
pub async fn onboard(
    endpoint: &Endpoint,
    files: &IdentityFiles,
    device: &QemuDevice,
    timeout: Duration,
    log: &Logger,
) -> Result<(), BridgeError> {
    let record = files.record()?;
    let qemu = QemuOnboarding {
        files,
        identity: open_key(&record, files, None, false)?,
        device,
    };
    onboard_device(
        endpoint,
        files,
        &record.serial,
        &qemu,
        timeout,
        log.as_ref(),
    )
    .await
    .map_err(|e| match e {
        AgentError::OnboardingRefused { reason, .. } => {
            BridgeError::Refused(format!("onboarding: {reason}"))
        }
        AgentError::DeviceLink(e) => match e.downcast::<BridgeError>() {
            Ok(e) => *e,
            Err(e) => AgentError::DeviceLink(e).into(),
        },
        other => other.into(),
    })
}

/// The QEMU device as onboarding sees it: keys in the bridge's PEM files, tokens from the
/// secure partition in QEMU.
struct QemuOnboarding<'a> {
    files: &'a IdentityFiles,
    identity: Arc<dyn DeviceKey>,
    device: &'a QemuDevice,
}

impl OnboardingDevice for QemuOnboarding<'_> {
    fn identity_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError> {
        Ok(self.identity.clone())
    }

    fn attest<'a>(&'a self, nonce: &'a [u8]) -> AttestFuture<'a> {
        let device = self.device.clone();
        let nonce = nonce.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || device.attest(&nonce))
                .await
                .map_err(|e| AgentError::DeviceLink(Box::new(e)))?
                .map_err(|e| AgentError::DeviceLink(Box::new(e)))
        })
    }

    fn new_operational_key(&self) -> Result<Arc<dyn DeviceKey>, AgentError> {
        Ok(Arc::new(fresh_operational_pem_key(self.files)?))
    }

    fn key_place(&self) -> &'static str {
        "bridge's PEM file"
    }
}
