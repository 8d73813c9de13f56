//! The factory station for the QEMU device: registers it with the fleet service
//! (`POST /api/v1/factory/devices`) and stores the release trust anchor in its trusted storage.
//!
//! ```text
//!  bridge                               QEMU device (secure partition)        fleet server
//!    │ `attest <nonce>` run ──────────▶ IAK public key + token (boot record)
//!    │ token verified with that key; measurements = its software components
//!    │ TLS client key (bridge-held PEM) → CSR
//!    │ POST /api/v1/factory/devices {serial, class, csr, iak, measurements} ─────────▶ IDevID
//!    │ check CN and key; write identity/{idevid,chain,mqtt-ca}.pem, device.json
//!    │ `anchor <release key>` run ────▶ ITS uid 0xca57_0100, WRITE_ONCE
//!    │ TUF root of the answer (if the fleet keeps a repository) ─▶ identity/tuf/root.json
//! ```
//!
//! The reference measurements come from the device's own token, verified with the IAK it
//! reported in the same run: what the registry records is what the boot chain measured.
//!
//! Documented limitation: the QEMU firmware has no TCP/IP stack, so the TLS client key lives
//! with the bridge (`identity/idevid-key.pem`, mode 0600), as it would in a gateway that speaks
//! for a constrained device. What matters for updates stays end to end: the manifest and the
//! image are verified in the secure partition, and attestation tokens are made there with the
//! IAK registered here.

use std::path::Path;

use crate::protocol::{FactoryRequest, FactoryResponse, MeasurementJson};
use castellan_agent::factory::check_certificate;
use castellan_agent::identity::{
    DeviceKey as _, DeviceRecord, IdentityFiles, KeyStorage, build_csr,
};
use castellan_agent::{FleetApi, PemKey};
use castellan_attest::Lifecycle;

use crate::Logger;
use crate::device::{DeviceIdentity, QemuDevice};
use crate::error::{BridgeError, write};

/// The device class of the QEMU firmware (`castellan_gate::DEVICE_CLASS`).
pub const DEVICE_CLASS: &str = "an505-v1";

/// File name of the bridge-held identity (IDevID) key, in the identity directory.
pub const IDENTITY_KEY_FILE: &str = "idevid-key.pem";

/// What the factory did.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The device id the server registered.
    pub device_id: String,
    /// The attestation public key recorded.
    pub iak_public_key: [u8; 65],
    /// The reference measurements recorded.
    pub measurements: Vec<MeasurementJson>,
    /// The firmware version recorded.
    pub firmware_version: String,
    /// Whether a release trust anchor was stored in the device.
    pub trust_anchor_stored: bool,
    /// Whether the fleet's TUF root was stored with the identity (offers are then checked
    /// against TUF before the device sees them).
    pub tuf_root_stored: bool,
}

/// The measurements of a verified token as the registry records them.
pub fn reference_measurements(id: &DeviceIdentity) -> Vec<MeasurementJson> {
    id.claims
        .software_components
        .iter()
        .enumerate()
        .map(|(i, c)| MeasurementJson {
            mtype: c
                .measurement_type
                .clone()
                .unwrap_or_else(|| format!("#{i}")),
            digest: hex::encode(&c.measurement_value),
            signer_id: hex::encode(&c.signer_id),
            version: c.version.clone().unwrap_or_default(),
        })
        .collect()
}

/// Registers the QEMU device as `serial` of `device_class` with the server behind `api`, writes
/// its identity files under `<state_dir>/identity/`, and stores the release trust anchor the
/// server returns in the device.
pub async fn register(
    api: &FleetApi,
    device: &QemuDevice,
    state_dir: &Path,
    serial: &str,
    device_class: &str,
    log: &Logger,
) -> Result<Registered, BridgeError> {
    castellan_agent::factory::validate_serial(serial)?;
    let files = IdentityFiles::of(state_dir);
    if files.idevid().exists() {
        return Err(BridgeError::InvalidInput(format!(
            "{} already holds an IDevID",
            files.idevid().display()
        )));
    }
    device.qemu().check()?;
    let d = device.clone();
    let id = tokio::task::spawn_blocking(move || d.identity())
        .await
        .map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
    if id.claims.lifecycle_state() != Some(Lifecycle::Secured) {
        return Err(BridgeError::Refused(format!(
            "the device's lifecycle is {:#06x}, not secured: lock its fuses first",
            id.claims.lifecycle
        )));
    }
    let measurements = reference_measurements(&id);
    let firmware_version = measurements
        .last()
        .map(|m| m.version.clone())
        .unwrap_or_default();
    log(&format!(
        "factory: read the device: IAK {}…, {} measurement(s), firmware {firmware_version}",
        &hex::encode(id.iak_public_key)[..16],
        measurements.len()
    ));
    let key_path = files.dir().join(IDENTITY_KEY_FILE);
    let key = PemKey::load_or_generate(&key_path)?;
    let csr = build_csr(&key, serial)?;
    let request = FactoryRequest {
        serial: serial.to_string(),
        device_class: device_class.to_string(),
        csr: hex::encode(&csr),
        iak_public_key: hex::encode(id.iak_public_key),
        firmware_version: Some(firmware_version.clone()),
        reference_measurements: measurements.clone(),
        tags: Vec::new(),
    };
    let answer: FactoryResponse = api.post("/api/v1/factory/devices", &request).await?;
    check_certificate(&answer.idevid_pem, serial, &key.public_key(), "IDevID")?;
    write(&files.idevid(), answer.idevid_pem.as_bytes())?;
    write(&files.chain(), answer.chain_pem.as_bytes())?;
    write(&files.mqtt_ca(), answer.mqtt_ca_pem.as_bytes())?;
    files.write_record(&DeviceRecord {
        serial: serial.to_string(),
        device_class: device_class.to_string(),
        firmware_version: firmware_version.clone(),
        keys: KeyStorage::PemFile {
            identity: std::path::absolute(&key_path).unwrap_or(key_path),
        },
    })?;
    log(&format!(
        "factory: registered {} (IDevID issued by the manufacturer CA)",
        answer.device_id
    ));
    let tuf_root_stored = match &answer.tuf_root {
        Some(root) => {
            castellan_agent::factory::install_tuf_root(&files, root)?;
            log("factory: TUF root stored: the bridge checks every offer against TUF");
            true
        }
        None => false,
    };
    let mut trust_anchor_stored = false;
    if let Some(anchor) = answer.release_public_key_bytes()? {
        let d = device.clone();
        tokio::task::spawn_blocking(move || d.store_trust_anchor(&anchor))
            .await
            .map_err(|e| BridgeError::Protocol(format!("the QEMU run failed: {e}")))??;
        trust_anchor_stored = true;
        log("factory: release trust anchor stored in the device's trusted storage (write-once)");
    } else {
        log("factory: the server has no release key yet: the device will refuse every update");
    }
    Ok(Registered {
        device_id: answer.device_id,
        iak_public_key: id.iak_public_key,
        measurements,
        firmware_version,
        trust_anchor_stored,
        tuf_root_stored,
    })
}
