//! The factory station (fleet protocol, "Factory provisioning"): boots the device, has its
//! crypto service generate the identity key, builds the CSR (signed inside the service), sends
//! it with the attestation public key and the reference measurements to
//! `POST /api/v1/factory/devices`, checks the IDevID it gets back and stores it beside the
//! device.
//!
//! ```text
//!  station                                device (secure world)              fleet server
//!    │ power on ───────────────────────▶ boot chain, services
//!    │ lifecycle secured? (lock fuses, reboot)
//!    │ provision_identity_key ─────────▶ P-256 key in ITS ──▶ public key
//!    │ build_csr ── sign_hash ─────────▶ r‖s
//!    │ POST /api/v1/factory/devices {serial, class, csr, iak, measurements} ──────────▶ IDevID
//!    │ check CN and key of the IDevID; write identity/{idevid,chain,mqtt-ca}.pem, device.json
//!    │ update_provision_trust_anchor(release key) ─▶ ITS, write-once (when the fleet has one)
//!    │ (device.json's class gives the update client the class id of its manifests)
//! ```

use std::path::{Path, PathBuf};

use castellan_boot::{Lifecycle, Measurement};
use castellan_gate_api::SecureGate as _;
use serde::{Deserialize, Serialize};

use crate::api::FleetApi;
use crate::device;
use crate::error::{AgentError, write};
use crate::identity::{
    DeviceKey, DeviceRecord, IdentityFiles, KeyStorage, PemKey, ServiceKey, build_csr,
};
use crate::secure::SecureWorld;

/// One reference measurement as the registry records it (fleet protocol JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceMeasurement {
    /// Measurement type ("BL", "APP", ...).
    #[serde(rename = "type")]
    pub sw_type: String,
    /// Image digest, hex.
    pub digest: String,
    /// SHA-256 of the signing key, hex.
    pub signer_id: String,
    /// Image version, `major.minor.revision+build`.
    pub version: String,
}

impl From<&Measurement> for ReferenceMeasurement {
    fn from(m: &Measurement) -> Self {
        ReferenceMeasurement {
            sw_type: m.sw_type.as_str().to_string(),
            digest: hex::encode(m.digest.as_bytes()),
            signer_id: hex::encode(m.signer_id),
            version: m.version.to_string(),
        }
    }
}

/// Body of `POST /api/v1/factory/devices`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// Device serial (= device id = CN).
    pub serial: String,
    /// Device class.
    pub device_class: String,
    /// DER CSR, hex.
    pub csr: String,
    /// Attestation public key, SEC1 uncompressed, hex.
    pub iak_public_key: String,
    /// Firmware version the device ships with.
    pub firmware_version: String,
    /// The boot record of the firmware it ships with.
    pub reference_measurements: Vec<ReferenceMeasurement>,
}

/// Answer of `POST /api/v1/factory/devices` (201): the server's own type, read where it is
/// declared (`castellan_protocol::FactoryResponse`).
pub use castellan_protocol::FactoryResponse as RegistrationResponse;

/// Where the factory keeps a device's identity keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// Generated in, and never leaving, the simulated device's crypto service.
    CryptoService,
    /// A PEM file (created if missing): for Linux-class devices and interop tests. The
    /// simulated device still boots and attests.
    PemFile(PathBuf),
}

/// What the factory asks for one device.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    /// Serial number (`[A-Za-z0-9._-]{1,64}`).
    pub serial: String,
    /// Device class.
    pub device_class: String,
    /// Where the identity key lives.
    pub keys: KeyChoice,
}

/// What the factory did.
#[derive(Debug, Clone)]
pub struct ProvisionedDevice {
    /// The device id the server registered.
    pub device_id: String,
    /// The IDevID, PEM.
    pub idevid_pem: String,
    /// The identity public key (SEC1).
    pub identity_public_key: [u8; 65],
    /// The attestation public key (SEC1).
    pub iak_public_key: [u8; 65],
    /// The reference measurements registered.
    pub measurements: Vec<ReferenceMeasurement>,
    /// True when the station had to secure the lifecycle (lock fuses) first.
    pub secured_now: bool,
    /// True when the server gave a release trust anchor and the device stored it (without one
    /// the device refuses every update).
    pub release_trust_anchor: bool,
    /// True when the server gave the TUF repository's root and the device keeps it
    /// (`identity/tuf/root.json`): its offers are then checked against TUF.
    pub tuf_trust_anchor: bool,
    /// The broker the server told the station devices connect to (`host:port`).
    pub mqtt: Option<String>,
}

/// Checks a serial against the protocol's device-id syntax.
pub fn validate_serial(serial: &str) -> Result<(), AgentError> {
    let ok = (1..=64).contains(&serial.len())
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && serial != "."
        && serial != "..";
    if ok {
        Ok(())
    } else {
        Err(AgentError::InvalidInput(format!(
            "serial `{serial}` must be 1 to 64 of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// Provisions the simulated device in `dir` with the fleet server behind `api`.
pub async fn provision_sim_device(
    api: &FleetApi,
    dir: &Path,
    req: &ProvisionRequest,
) -> Result<ProvisionedDevice, AgentError> {
    provision_sim_device_with(dir, req, move |r| async move { api.register(&r).await }).await
}

/// [`provision_sim_device`] with another registrar than the HTTPS API (a factory that talks to
/// its CA some other way, or a test).
pub async fn provision_sim_device_with<F, Fut>(
    dir: &Path,
    req: &ProvisionRequest,
    register: F,
) -> Result<ProvisionedDevice, AgentError>
where
    F: FnOnce(RegistrationRequest) -> Fut,
    Fut: std::future::Future<Output = Result<RegistrationResponse, AgentError>>,
{
    validate_serial(&req.serial)?;
    let files = IdentityFiles::of(dir);
    if files.idevid().exists() {
        return Err(AgentError::InvalidInput(format!(
            "{} already holds an IDevID ({})",
            dir.display(),
            files.idevid().display()
        )));
    }
    // Keys are bound to the DICE mode, which changes with the lifecycle: secure first (fuses,
    // device off), then boot, then generate keys.
    let secured_now = device::secure_offline(dir)?;
    let world = SecureWorld::power_on(dir)?;
    if world.boot_info().lifecycle != Lifecycle::Secured {
        return Err(AgentError::device_state(
            "the lifecycle did not move to secured",
        ));
    }
    let storage_ok = world.refusing(|g| g.its_status().map(|_| ()))?;
    if let Err(r) = storage_ok {
        return Err(AgentError::device_state(format!(
            "trusted storage does not mount ({}): it was initialised before the device was \
             secured; provision devices before their first boot",
            r.to_error()
        )));
    }
    let (key, storage): (Box<dyn DeviceKey>, KeyStorage) = match &req.keys {
        KeyChoice::CryptoService => (Box::new(ServiceKey::identity(&world)?), KeyStorage::Service),
        KeyChoice::PemFile(path) => (
            Box::new(PemKey::load_or_generate(path)?),
            KeyStorage::PemFile {
                identity: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            },
        ),
    };
    let csr = build_csr(key.as_ref(), &req.serial)?;
    let info = world.boot_info().clone();
    let measurements: Vec<ReferenceMeasurement> = info
        .measurements
        .iter()
        .map(ReferenceMeasurement::from)
        .collect();
    let firmware_version = info.firmware_version();
    let registration = RegistrationRequest {
        serial: req.serial.clone(),
        device_class: req.device_class.clone(),
        csr: hex::encode(&csr),
        iak_public_key: hex::encode(info.iak_public_key),
        firmware_version: firmware_version.clone(),
        reference_measurements: measurements.clone(),
    };
    let answer = register(registration).await?;
    check_certificate(&answer.idevid_pem, &req.serial, &key.public_key(), "IDevID")?;
    if let Some(root) = &answer.tuf_root {
        install_tuf_root(&files, root)?;
    }
    let release_key = match &answer.release_public_key {
        Some(hex_key) => Some(hex::decode(hex_key.trim()).map_err(|_| {
            AgentError::protocol_state("the release public key from the server is not hex")
        })?),
        None => None,
    };
    if let Some(anchor) = release_key.clone() {
        // Write-once, in the update client's own storage: from now on the device accepts only
        // manifests signed by the fleet's release key.
        world.with_gate(|g| g.update_anchor(&anchor))?;
    }
    write(&files.idevid(), answer.idevid_pem.as_bytes())?;
    write(&files.chain(), answer.chain_pem.as_bytes())?;
    write(&files.mqtt_ca(), answer.mqtt_ca_pem.as_bytes())?;
    files.write_record(&DeviceRecord {
        serial: req.serial.clone(),
        device_class: req.device_class.clone(),
        firmware_version,
        keys: storage,
    })?;
    world.shut_down()?;
    Ok(ProvisionedDevice {
        device_id: answer.device_id,
        idevid_pem: answer.idevid_pem,
        identity_public_key: key.public_key(),
        iak_public_key: info.iak_public_key,
        measurements,
        secured_now,
        release_trust_anchor: release_key.is_some(),
        tuf_trust_anchor: answer.tuf_root.is_some(),
        mqtt: answer.mqtt,
    })
}

/// Checks that a certificate the server issued names `cn` and certifies `public_key`.
pub fn check_certificate(
    pem: &str,
    cn: &str,
    public_key: &[u8; 65],
    what: &str,
) -> Result<(), AgentError> {
    let cert = castellan_x509::parse_certificate_pem(pem)
        .map_err(|e| AgentError::pki(format!("the {what} from the server"), e))?;
    if cert.subject_common_name.as_deref() != Some(cn) {
        return Err(AgentError::pki_state(format!(
            "the {what} names {:?}, not {cn}",
            cert.subject_common_name
        )));
    }
    if cert.public_key_p256.as_ref() != Some(public_key) {
        return Err(AgentError::pki_state(format!(
            "the {what} certifies another key than the device's"
        )));
    }
    Ok(())
}

/// Keep the TUF root of the registration answer as the device's TUF trust anchor
/// (`identity/tuf/root.json`), checked first (signed by its own threshold): from then on the
/// device checks every offer against TUF.
pub fn install_tuf_root(files: &IdentityFiles, root: &str) -> Result<(), AgentError> {
    let dir = files.dir().join("tuf");
    castellan_tuf::client::init(&dir, root.as_bytes()).map_err(|e| {
        AgentError::protocol_state(format!("the TUF root from the server is refused: {e}"))
    })
}
