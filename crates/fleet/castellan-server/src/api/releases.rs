//! The release trust anchor and releases: `PUT /api/v1/release-key` (admin, once),
//! `POST /api/v1/releases` (release-manager), reads, and the image.
//!
//! ```text
//!  POST /api/v1/releases {device_class, version, image, manifest (base64)}
//!   ─▶ release_check: envelope authenticates with the trust anchor, not expired; the SUIT
//!      processor over
//!      the image: vendor, class, digest, size; the image verifies with its own key
//!   ─▶ against the fleet: sequence above the class's latest; signer id = the one registered
//!      for devices of the class (their last reference measurement); security counter not
//!      below the highest confirmed on a device of the class
//!   ─▶ 201 ReleaseJson, or 422 {error, reason} (audited by the guard)
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use castellan_store::{NewRelease, Operator, ReferenceMeasurement, Release, StoreError, unix_now};

use super::{ApiError, AuditNote};
use crate::core::Core;
use crate::protocol::{MeasurementJson, ReleaseJson, ReleaseKeyRequest, ReleaseRequest};
use crate::release_check::check_release;

/// Largest image accepted (bytes, decoded).
const MAX_IMAGE: usize = 32 << 20;
/// Largest SUIT envelope accepted (bytes, decoded).
const MAX_MANIFEST: usize = 64 << 10;
/// Request body limit of a release upload (base64 of both, and JSON around them).
pub(crate) const MAX_RELEASE_BODY: usize = 48 << 20;

type Created<T> = (StatusCode, Extension<AuditNote>, Json<T>);

/// `PUT /api/v1/release-key`: set the release trust anchor, once.
#[utoipa::path(put, path = "/api/v1/release-key", tag = "releases", request_body = ReleaseKeyRequest,
    responses((status = 201, description = "The trust anchor, set", body = super::openapi::ReleaseKeyJson), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson)))]
pub(crate) async fn set_key(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    body: Bytes,
) -> Result<Created<serde_json::Value>, ApiError> {
    let req: ReleaseKeyRequest = super::error::parse_json(&body)?;
    let key = hex::decode(req.public_key.trim())
        .map_err(|_| ApiError::BadRequest("public_key is not hex".into()))?;
    if key.len() != 65 || castellan_suit::TrustAnchor::p256_from_sec1(&key).is_none() {
        return Err(ApiError::BadRequest(
            "public_key must be a P-256 point, SEC1 uncompressed (65 bytes)".into(),
        ));
    }
    let now = unix_now();
    if let Err(e) = core.store.set_release_key(&key, now, &op.name).await {
        return Err(match e {
            StoreError::AlreadyExists { .. } => {
                let current = core.store.release_key().await?;
                ApiError::Conflict(match current {
                    Some(k) => format!(
                        "the release trust anchor is already set (by {} at {}): it never \
                         changes, rotating it needs a new factory flow",
                        k.set_by, k.set_at
                    ),
                    None => "the release trust anchor is already set".into(),
                })
            }
            other => other.into(),
        });
    }
    let fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&key));
    Ok((
        StatusCode::CREATED,
        Extension(AuditNote(format!(
            "release trust anchor set (SHA-256 of the key {fingerprint})"
        ))),
        Json(serde_json::json!({
            "public_key": hex::encode(&key),
            "set_at": now,
            "set_by": op.name,
        })),
    ))
}

/// `POST /api/v1/releases`.
#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = ReleaseRequest,
    responses((status = 201, description = "The release, checked and stored", body = ReleaseJson), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson), (status = 422, description = "Refused by the service's rules", body = super::openapi::ErrorJson)))]
pub(crate) async fn create(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    body: Bytes,
) -> Result<Created<ReleaseJson>, ApiError> {
    let req: ReleaseRequest = super::error::parse_json(&body)?;
    super::check_name("device class", &req.device_class)?;
    if req.version.is_empty() || req.version.len() > 64 || req.version.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "version must be 1 to 64 printable characters".into(),
        ));
    }
    if req.notes.as_ref().is_some_and(|n| n.len() > 4096) {
        return Err(ApiError::BadRequest("notes are at most 4096 bytes".into()));
    }
    let image = decode("image", &req.image, MAX_IMAGE)?;
    let manifest = decode("manifest", &req.manifest, MAX_MANIFEST)?;
    let class = req.device_class.clone();
    let key = core.store.release_key().await?.ok_or_else(|| {
        ApiError::Unprocessable(
            "no release trust anchor is set: an admin sets it with PUT /api/v1/release-key".into(),
        )
    })?;
    let checked = {
        let (vendor, class, image, manifest) = (
            core.config.vendor.clone(),
            class.clone(),
            image.clone(),
            manifest.clone(),
        );
        let now = unix_now();
        tokio::task::spawn_blocking(move || {
            check_release(&key.public_key, &vendor, &class, &image, &manifest, now)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("release check task: {e}")))?
        .map_err(ApiError::from)?
    };
    if let Some(latest) = core.store.latest_release_sequence(&class).await?
        && checked.sequence <= latest
    {
        return Err(ApiError::Unprocessable(format!(
            "manifest sequence {} is not above the latest release of class {class} \
             (sequence {latest})",
            checked.sequence
        )));
    }
    let signer = hex::encode(checked.signer_id);
    let mtype = fleet_signer(&core, &class, &signer).await?;
    if let Some(max) = core.store.max_confirmed_security_counter(&class).await?
        && checked.security_counter < max
    {
        return Err(ApiError::Unprocessable(format!(
            "the image's security counter {} is below {max}, the highest already confirmed on \
             devices of class {class}: they would refuse it",
            checked.security_counter
        )));
    }
    let new = NewRelease {
        id: format!("{class}-{}", checked.sequence),
        device_class: class.clone(),
        version: req.version.clone(),
        sequence: checked.sequence,
        image_sha256: hex::encode(checked.image_sha256),
        image,
        manifest,
        measurement: ReferenceMeasurement {
            mtype,
            digest_hex: hex::encode(checked.measurement),
            signer_id: signer.clone(),
            version: checked.image_version.clone(),
        },
        security_counter: checked.security_counter,
        notes: req.notes.clone(),
        expires_at: checked
            .expires
            .map(|e| i64::try_from(e).unwrap_or(i64::MAX)),
        created_by: op.name.clone(),
    };
    core.store
        .create_release(&new, unix_now())
        .await
        .map_err(|e| match e {
            e @ StoreError::SequenceNotNewer { .. } => ApiError::Unprocessable(e.to_string()),
            other => other.into(),
        })?;
    let stored = core
        .store
        .release(&new.id)
        .await?
        .ok_or_else(|| ApiError::Internal("the new release vanished".into()))?;
    let note = format!(
        "release {} (version {}, sequence {}, image SHA-256 {}, {} {} signed by {signer}, \
         security counter {})",
        stored.id,
        stored.version,
        stored.sequence,
        stored.image_sha256,
        stored.measurement.mtype,
        stored.measurement.version,
        stored.security_counter
    );
    Ok((
        StatusCode::CREATED,
        Extension(AuditNote(note)),
        Json(release_json(&stored)),
    ))
}

/// The image signer id must be the one of the last reference measurement of every registered
/// device of the class (the application's signer: type "APP" on simulated devices, "SPE+NSPE"
/// on QEMU). Returns that measurement's type.
async fn fleet_signer(core: &Core, class: &str, signer: &str) -> Result<String, ApiError> {
    let devices: Vec<_> = core
        .store
        .list_devices()
        .await?
        .into_iter()
        .filter(|d| d.device_class == class)
        .collect();
    let lasts: Vec<&ReferenceMeasurement> = devices
        .iter()
        .filter_map(|d| d.reference_measurements.last())
        .collect();
    let Some(first) = lasts.first() else {
        return Err(ApiError::Unprocessable(format!(
            "no device of class {class} is registered: the image's signer cannot be checked \
             against the fleet's"
        )));
    };
    let expected: BTreeSet<&str> = lasts.iter().map(|m| m.signer_id.as_str()).collect();
    if expected.len() != 1 || !expected.contains(signer) {
        return Err(ApiError::Unprocessable(format!(
            "the image is signed by key {signer}, but devices of class {class} run {} images \
             signed by {}",
            first.mtype,
            expected.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(first.mtype.clone())
}

fn decode(name: &str, b64: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ApiError::BadRequest(format!("{name} is not base64: {e}")))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(ApiError::BadRequest(format!(
            "{name} must be 1 to {max} bytes"
        )));
    }
    Ok(bytes)
}

/// A release as the API shows it.
pub(crate) fn release_json(r: &Release) -> ReleaseJson {
    ReleaseJson {
        release_id: r.id.clone(),
        device_class: r.device_class.clone(),
        version: r.version.clone(),
        sequence: r.sequence,
        image_size: r.image_size,
        image_sha256: r.image_sha256.clone(),
        security_counter: r.security_counter,
        signer_id: r.signer_id().to_string(),
        measurement: MeasurementJson {
            mtype: r.measurement.mtype.clone(),
            digest: r.measurement.digest_hex.clone(),
            signer_id: r.measurement.signer_id.clone(),
            version: r.measurement.version.clone(),
        },
        notes: r.notes.clone(),
        expires_at: r.expires_at,
        created_at: r.created_at,
        created_by: r.created_by.clone(),
    }
}

/// `GET /api/v1/releases`.
#[utoipa::path(get, path = "/api/v1/releases", tag = "releases",
    responses((status = 200, description = "Every release", body = Vec<ReleaseJson>)))]
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
) -> Result<Json<Vec<ReleaseJson>>, ApiError> {
    Ok(Json(
        core.store
            .list_releases()
            .await?
            .iter()
            .map(release_json)
            .collect(),
    ))
}

/// `GET /api/v1/releases/{id}`.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", params(("id" = String, Path, description = "The release id")),
    responses((status = 200, description = "The release", body = ReleaseJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn get_one(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<ReleaseJson>, ApiError> {
    let r = core
        .store
        .release(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no release {id:?}")))?;
    Ok(Json(release_json(&r)))
}

/// `GET /api/v1/releases/{id}/image`.
#[utoipa::path(get, path = "/api/v1/releases/{id}/image", tag = "releases", params(("id" = String, Path, description = "The release id")),
    responses((status = 200, description = "The signed image", body = String, content_type = "application/octet-stream"), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn image(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let img = core
        .store
        .release_image(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no release {id:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.bin\""),
            ),
        ],
        img,
    )
        .into_response())
}
