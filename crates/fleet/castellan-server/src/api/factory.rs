//! `POST /api/v1/factory/devices`: factory registration. The CSR's self-signature is verified,
//! the manufacturer CA issues the IDevID, and the registry records serial, class, certificate,
//! attestation key and reference measurements with the lifecycle secured. The answer carries
//! the release trust anchor, when set, for the station to store in the device.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use castellan_attest::VerificationKey;
use castellan_pki::CaKind;
use castellan_store::{NewDevice, ReferenceMeasurement, unix_now};

use super::{ApiError, AuditNote};
use crate::core::Core;
use crate::protocol::{FactoryRequest, FactoryResponse};

/// PSA lifecycle "secured".
const LIFECYCLE_SECURED: u32 = 0x3000;
/// Most reference measurements per device (the token carries at most a handful).
const MAX_MEASUREMENTS: usize = 16;

/// The handler.
#[utoipa::path(post, path = "/api/v1/factory/devices", tag = "devices", request_body = FactoryRequest,
    responses((status = 201, description = "Registered: the IDevID and the trust anchors", body = FactoryResponse), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson)))]
pub(crate) async fn register(
    State(core): State<Arc<Core>>,
    body: Bytes,
) -> Result<
    (
        StatusCode,
        axum::Extension<AuditNote>,
        Json<FactoryResponse>,
    ),
    ApiError,
> {
    let req: FactoryRequest = super::error::parse_json(&body)?;
    check_serial(&req.serial)?;
    check_name("device class", &req.device_class)?;
    for t in &req.tags {
        check_name("tag", t)?;
    }
    let csr = hex_field("csr", &req.csr)?;
    let iak = hex_field("iak_public_key", &req.iak_public_key)?;
    if iak.len() != 65 || VerificationKey::p256_from_sec1(&iak).is_err() {
        return Err(ApiError::BadRequest(
            "iak_public_key must be a P-256 point, SEC1 uncompressed (65 bytes)".into(),
        ));
    }
    if req.reference_measurements.is_empty() || req.reference_measurements.len() > MAX_MEASUREMENTS
    {
        return Err(ApiError::BadRequest(format!(
            "reference_measurements must list 1 to {MAX_MEASUREMENTS} components"
        )));
    }
    let mut refs = Vec::with_capacity(req.reference_measurements.len());
    for m in &req.reference_measurements {
        if m.mtype.is_empty() || m.mtype.len() > 32 {
            return Err(ApiError::BadRequest(
                "a measurement type must be 1 to 32 characters".into(),
            ));
        }
        let digest = hex_field("digest", &m.digest)?;
        if !matches!(digest.len(), 32 | 48 | 64) {
            return Err(ApiError::BadRequest(format!(
                "digest of {} must be 32, 48 or 64 bytes",
                m.mtype
            )));
        }
        let signer = hex_field("signer_id", &m.signer_id)?;
        if m.version.len() > 32 {
            return Err(ApiError::BadRequest(
                "a version is at most 32 characters".into(),
            ));
        }
        refs.push(ReferenceMeasurement {
            mtype: m.mtype.clone(),
            digest_hex: hex::encode(digest),
            signer_id: hex::encode(signer),
            version: m.version.clone(),
        });
    }
    if req.firmware_version.as_ref().is_some_and(|v| v.len() > 64) {
        return Err(ApiError::BadRequest(
            "firmware_version is at most 64 characters".into(),
        ));
    }
    if core.store.device(&req.serial).await?.is_some()
        || core.store.device_by_serial(&req.serial).await?.is_some()
    {
        return Err(ApiError::Conflict(format!(
            "device {:?} is already registered",
            req.serial
        )));
    }
    if !core.pki.holds_key(CaKind::Manufacturer) {
        return Err(ApiError::Conflict(
            "this service does not run the factory: the manufacturer CA's key was not handed \
             over to it (hand it over with `castellan pki handover --manufacturer-key`, or \
             provision at the factory that holds it)"
                .into(),
        ));
    }
    let idevid = core
        .pki
        .issue_idevid(&csr, &req.serial, &req.device_class)
        .map_err(|e| ApiError::BadRequest(format!("CSR refused: {e}")))?;
    let device = NewDevice {
        id: req.serial.clone(),
        serial: req.serial.clone(),
        device_class: req.device_class.clone(),
        tags: req.tags.clone(),
        idevid_der: idevid.der.clone(),
        idevid_serial: idevid.serial_hex(),
        lifecycle: LIFECYCLE_SECURED,
        reference_measurements: refs,
        firmware_version: req.firmware_version.clone(),
    };
    core.store
        .register_device_with_iak(&device, &iak, unix_now())
        .await?;
    let release_key = core.store.release_key().await?;
    let tuf_root = current_tuf_root(&core).await?;
    let note = format!(
        "IDevID {} issued to {} (class {}, {} reference measurements)",
        idevid.serial_hex(),
        req.serial,
        req.device_class,
        device.reference_measurements.len()
    );
    Ok((
        StatusCode::CREATED,
        axum::Extension(AuditNote(note)),
        Json(FactoryResponse {
            device_id: req.serial,
            idevid_pem: idevid.pem,
            chain_pem: core.pki.chain_pem(CaKind::Manufacturer),
            mqtt_ca_pem: core.pki.chain_pem(CaKind::Operational),
            release_public_key: release_key.map(|k| hex::encode(k.public_key)),
            mqtt: mqtt_endpoint(&core).await,
            tuf_root,
        }),
    ))
}

/// The TUF repository's current `root.json` (the new device's TUF trust anchor), when the
/// service keeps a repository. A repository without a published root refuses the registration:
/// a device must not leave the factory without the anchor its fleet expects.
async fn current_tuf_root(core: &Core) -> Result<Option<String>, ApiError> {
    let Some(dir) = core.config.tuf_repository.clone() else {
        return Ok(None);
    };
    let root = tokio::task::spawn_blocking(move || {
        castellan_tuf::repo::Repository::open(&dir)?.metadata_file("root.json")
    })
    .await
    .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
    .map_err(|e| ApiError::Internal(format!("TUF repository: {e}")))?
    .ok_or_else(|| {
        ApiError::Internal(
            "the TUF repository has no published root: sign and import root \
             (castellan repo sign / import) before provisioning devices"
                .into(),
        )
    })?;
    String::from_utf8(root)
        .map(Some)
        .map_err(|_| ApiError::Internal("the TUF repository's root.json is not UTF-8".into()))
}

/// The broker's address as devices should dial it: the bound port, with the first server name
/// when the listener is bound to every interface.
async fn mqtt_endpoint(core: &Core) -> Option<String> {
    let addr = core.mqtt_addr().await?;
    if addr.ip().is_unspecified() {
        let host = core.config.server_names.first()?;
        Some(format!("{host}:{}", addr.port()))
    } else {
        Some(addr.to_string())
    }
}

fn hex_field(name: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    hex::decode(value.trim()).map_err(|_| ApiError::BadRequest(format!("{name} is not hex")))
}

/// A serial is the device id: it must be valid both as an X.520 serialNumber and as an MQTT
/// topic level and certificate CN: 1 to 64 of `A-Z a-z 0-9 . -`, not starting with `.`/`-`.
fn check_serial(serial: &str) -> Result<(), ApiError> {
    let ok = !serial.is_empty()
        && serial.len() <= 64
        && !serial.starts_with(['.', '-'])
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "serial must be 1 to 64 of A-Z a-z 0-9 . - (not starting with . or -)".into(),
        ))
    }
}

pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if crate::names::is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} must be 1 to 64 of A-Z a-z 0-9 . _ - (not starting with . or -)"
        )))
    }
}
