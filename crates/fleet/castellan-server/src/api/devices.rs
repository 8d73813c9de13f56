//! Registry endpoints: list and show devices (attestation status, last seen), latest
//! telemetry, revoke, quarantine and release.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use castellan_pki::{RevocationReason, RevocationSet};
use castellan_store::{Device, DeviceQuery, DeviceSort, DeviceState, Revocation, unix_now};
use serde::{Deserialize, Serialize};

use super::{ApiError, AuditNote};
use crate::core::Core;

/// A device as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceJson {
    /// Device id (= serial).
    pub id: String,
    /// Serial.
    pub serial: String,
    /// Device class.
    pub device_class: String,
    /// Tags.
    pub tags: Vec<String>,
    /// PSA lifecycle (raw).
    pub lifecycle: u32,
    /// PSA lifecycle name.
    pub lifecycle_name: String,
    /// Latest attestation result: "unknown", "passed" or "failed".
    pub attestation: String,
    /// Why the latest appraisal failed, or a note.
    pub attestation_reason: Option<String>,
    /// IDevID serial, hex.
    pub idevid_serial: String,
    /// Current LDevID serial, hex.
    pub ldevid_serial: Option<String>,
    /// When it was onboarded (Unix seconds).
    pub onboarded_at: Option<i64>,
    /// When it was last seen (Unix seconds).
    pub last_seen: Option<i64>,
    /// Whether it is quarantined.
    pub quarantined: bool,
    /// Whether its IDevID or LDevID is revoked.
    pub revoked: bool,
    /// Whether it has a live MQTT connection.
    pub connected: bool,
    /// The firmware version it reports.
    pub firmware_version: Option<String>,
    /// Reference measurements (type, digest, signer id, version).
    pub reference_measurements: Vec<crate::protocol::MeasurementJson>,
    /// When the factory registered it (Unix seconds).
    pub created_at: i64,
    /// The factory certificate (IDevID) the registry holds, decoded; `None` if it does not
    /// parse.
    #[serde(default)]
    pub idevid: Option<CertificateJson>,
}

/// A certificate, as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateJson {
    /// Subject (RFC 4514-like).
    pub subject: String,
    /// Issuer (RFC 4514-like).
    pub issuer: String,
    /// Serial, hex.
    pub serial: String,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
}

fn certificate_json(der: &[u8]) -> Option<CertificateJson> {
    let c = castellan_x509::parse_certificate(der).ok()?;
    Some(CertificateJson {
        serial: c.serial_hex(),
        subject: c.subject,
        issuer: c.issuer,
        not_before: c.not_before,
        not_after: c.not_after,
    })
}

pub(crate) fn lifecycle_name(raw: u32) -> &'static str {
    match raw & 0xf000 {
        0x0000 => "unknown",
        0x1000 => "assembly-and-test",
        0x2000 => "psa-rot-provisioning",
        0x3000 => "secured",
        0x4000 => "non-psa-rot-debug",
        0x5000 => "recoverable-psa-rot-debug",
        0x6000 => "decommissioned",
        _ => "invalid",
    }
}

fn is_revoked(set: &RevocationSet, serial: &str) -> bool {
    crate::authz::serial_bytes(&crate::authz::normalize_serial(serial))
        .is_some_and(|s| set.is_revoked(&s))
}

pub(crate) async fn to_json(core: &Core, d: Device) -> DeviceJson {
    let revoked = is_revoked(&core.revocations, &d.idevid_serial)
        || d.ldevid_serial
            .as_deref()
            .is_some_and(|s| is_revoked(&core.revocations, s));
    DeviceJson {
        connected: core.is_connected(&d.id).await,
        lifecycle_name: lifecycle_name(d.lifecycle).into(),
        attestation: match d.attestation {
            castellan_store::AttestationStatus::Passed => "passed",
            castellan_store::AttestationStatus::Failed => "failed",
            _ => "unknown",
        }
        .into(),
        reference_measurements: d
            .reference_measurements
            .iter()
            .map(|m| crate::protocol::MeasurementJson {
                mtype: m.mtype.clone(),
                digest: m.digest_hex.clone(),
                signer_id: m.signer_id.clone(),
                version: m.version.clone(),
            })
            .collect(),
        revoked,
        idevid: certificate_json(&d.idevid_der),
        id: d.id,
        serial: d.serial,
        device_class: d.device_class,
        tags: d.tags,
        lifecycle: d.lifecycle,
        attestation_reason: d.attestation_reason,
        idevid_serial: d.idevid_serial,
        ldevid_serial: d.ldevid_serial,
        onboarded_at: d.onboarded_at,
        last_seen: d.last_seen,
        quarantined: d.quarantined,
        firmware_version: d.firmware_version,
        created_at: d.created_at,
    }
}

async fn device_or_404(core: &Core, id: &str) -> Result<Device, ApiError> {
    core.store
        .device(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no device {id:?}")))
}

/// The device list's query string: search, filters, sort and paging (all optional; without
/// `limit` and filters the whole registry is listed, as before paging existed).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub(crate) struct ListQuery {
    /// Part of the id or serial.
    q: Option<String>,
    /// Exactly this class.
    class: Option<String>,
    /// Exactly this firmware version.
    firmware: Option<String>,
    /// Exactly this state (pending, onboarded, quarantined, revoked, decommissioned).
    state: Option<String>,
    /// Sort column (id, class, firmware, last_seen).
    sort: Option<String>,
    /// Descending order.
    desc: bool,
    /// Rows to skip.
    offset: u64,
    /// Rows per page (at most `castellan_store::MAX_PAGE`).
    limit: Option<u32>,
}

impl ListQuery {
    fn is_paged(&self) -> bool {
        self.limit.is_some()
            || self.q.is_some()
            || self.class.is_some()
            || self.firmware.is_some()
            || self.state.is_some()
            || self.sort.is_some()
            || self.offset > 0
    }

    fn to_store(&self) -> Result<DeviceQuery, ApiError> {
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(DeviceState::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown state {s:?} (pending, onboarded, quarantined, revoked,                      decommissioned)"
                ))
            })?),
        };
        let sort = match self.sort.as_deref() {
            None => DeviceSort::default(),
            Some(s) => DeviceSort::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown sort {s:?} (id, class, firmware, last_seen)"
                ))
            })?,
        };
        Ok(DeviceQuery {
            search: self.q.clone(),
            device_class: self.class.clone(),
            firmware_version: self.firmware.clone(),
            state,
            sort,
            descending: self.desc,
            offset: self.offset,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// One page of devices as the API shows them, and how many match: the device list of the API
/// and of the console.
pub(crate) async fn page(
    core: &Core,
    query: &DeviceQuery,
) -> Result<(u64, Vec<DeviceJson>), ApiError> {
    let page = core.store.device_page(query).await?;
    let mut out = Vec::with_capacity(page.devices.len());
    for d in page.devices {
        out.push(to_json(core, d).await);
    }
    Ok((page.total, out))
}

/// `GET /api/v1/devices[?q=&class=&firmware=&state=&sort=&desc=&offset=&limit=]`; a paged
/// answer says how many match in `X-Total-Count`.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(ListQuery),
    responses((status = 200, description = "One page of devices", body = Vec<DeviceJson>,
        headers(("x-total-count" = u64, description = "How many devices match"))), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson)))]
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
    Query(q): Query<ListQuery>,
) -> Result<([(&'static str, String); 1], Json<Vec<DeviceJson>>), ApiError> {
    if q.is_paged() {
        let (total, devices) = page(&core, &q.to_store()?).await?;
        return Ok(([("x-total-count", total.to_string())], Json(devices)));
    }
    let mut out = Vec::new();
    for d in core.store.list_devices().await? {
        out.push(to_json(&core, d).await);
    }
    Ok(([("x-total-count", out.len().to_string())], Json(out)))
}

/// `GET /api/v1/devices/{id}`.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    responses((status = 200, description = "The device", body = DeviceJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn get_one(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceJson>, ApiError> {
    let d = device_or_404(&core, &id).await?;
    Ok(Json(to_json(&core, d).await))
}

/// `?limit=` of the telemetry endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Limit {
    /// At most this many (default 10, at most 100).
    limit: Option<u32>,
}

/// One telemetry message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TelemetryJson {
    /// When it was received (Unix seconds).
    at: i64,
    /// The message as the device sent it (null if it was not JSON).
    payload: serde_json::Value,
}

/// `GET /api/v1/devices/{id}/telemetry?limit=N` (newest first, default 10, at most 100).
#[utoipa::path(get, path = "/api/v1/devices/{id}/telemetry", tag = "devices",
    params(("id" = String, Path, description = "The device id"), Limit),
    responses((status = 200, description = "Telemetry, newest first", body = Vec<TelemetryJson>), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn telemetry(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<TelemetryJson>>, ApiError> {
    device_or_404(&core, &id).await?;
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let rows = core.store.latest_telemetry(&id, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| TelemetryJson {
                at: r.at,
                payload: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    ))
}

/// One verified detection report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DetectionJson {
    /// The report's counter (monotonic per device).
    counter: u64,
    /// When it was received (Unix seconds).
    received_at: i64,
    /// The first event the report covers (events scored since the device started).
    first_event: u64,
    /// Events the report covers.
    events: u64,
    /// Highest window score in the period (milli-nats of excess surprise).
    score_milli: u32,
    /// The device's alarm threshold (milli-nats).
    alarm_milli: u32,
    /// The window score crossed the alarm threshold in the period.
    crossed: bool,
    /// Reports missing just before this one (counters skipped).
    gap: u64,
    /// The sensors' counters since boot: gate entries, refused pointers, refused calls,
    /// application events, application events flooded, floods, faults, PC samples.
    counters: serde_json::Value,
    /// SHA-256 of the model that scored (hex).
    model_digest: String,
}

/// `GET /api/v1/devices/{id}/detections?limit=N` (highest counter first, default 10, at most
/// 100): the device's verified detection reports.
#[utoipa::path(get, path = "/api/v1/devices/{id}/detections", tag = "devices",
    params(("id" = String, Path, description = "The device id"), Limit),
    responses((status = 200, description = "Detection reports, newest first", body = Vec<DetectionJson>), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn detections(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<DetectionJson>>, ApiError> {
    device_or_404(&core, &id).await?;
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let rows = core.store.detections(&id, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| DetectionJson {
                counter: r.report.counter,
                received_at: r.report.received_at,
                first_event: r.report.first_event,
                events: r.report.events,
                score_milli: r.report.score_milli,
                alarm_milli: r.report.alarm_milli,
                crossed: r.report.crossed,
                gap: r.gap,
                counters: serde_json::from_str(&r.report.counters)
                    .unwrap_or(serde_json::Value::Null),
                model_digest: r.report.model_digest,
            })
            .collect(),
    ))
}

/// Optional body of the revoke endpoint.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// RFC 5280 reason name (`keyCompromise`, `cessationOfOperation`, ...).
    reason: Option<String>,
}

fn parse_reason(name: &str) -> Option<RevocationReason> {
    (0u8..=10)
        .filter_map(RevocationReason::from_code)
        .find(|r| r.name().eq_ignore_ascii_case(name))
}

/// `POST /api/v1/devices/{id}/revoke`: revoke the IDevID and the LDevID, refuse the device at
/// its next connection, close its open session.
#[utoipa::path(post, path = "/api/v1/devices/{id}/revoke", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    request_body(content = Option<RevokeBody>, description = "Optional: the RFC 5280 reason"),
    responses((status = 200, description = "Revoked", body = super::openapi::RevokedJson), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn revoke(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(AxumExt<AuditNote>, Json<serde_json::Value>), ApiError> {
    let req: RevokeBody = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeBody::default()
    } else {
        super::error::parse_json(&body)?
    };
    let reason = match req.reason.as_deref() {
        None => RevocationReason::Unspecified,
        Some(n) => parse_reason(n)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown revocation reason {n:?}")))?,
    };
    let (note, json) = revoke_device(&core, &id, reason).await?;
    Ok((axum::Extension(AuditNote(note)), Json(json)))
}

/// Revoke the IDevID and the LDevID of device `id`, reload the revocation set and close its
/// session: what `POST /api/v1/devices/{id}/revoke` does (and the console's revoke). Returns
/// the audit note and the API's answer.
pub(crate) async fn revoke_device(
    core: &Core,
    id: &str,
    reason: RevocationReason,
) -> Result<(String, serde_json::Value), ApiError> {
    let d = device_or_404(core, id).await?;
    let now = unix_now();
    let mut revoked = Vec::new();
    let certs = [
        (Some(d.idevid_serial.clone()), "manufacturer"),
        (d.ldevid_serial.clone(), "operational"),
    ];
    for (serial, issuer) in certs {
        let Some(serial) = serial else { continue };
        core.store
            .revoke(&Revocation {
                serial: serial.clone(),
                issuer: issuer.into(),
                reason: reason.code(),
                revoked_at: now,
                device_id: Some(id.to_string()),
            })
            .await?;
        revoked.push(serial);
    }
    core.reload_revocations().await?;
    let closed = core.kick(id).await.unwrap_or(false);
    let note = format!(
        "revoked {} ({reason}); {}",
        revoked.join(", "),
        if closed {
            "open session closed"
        } else {
            "no open session"
        }
    );
    Ok((
        note,
        serde_json::json!({
            "device_id": id,
            "revoked_serials": revoked,
            "reason": reason.name(),
            "session_closed": closed,
        }),
    ))
}

type AxumExt<T> = axum::Extension<T>;

/// `POST /api/v1/devices/{id}/quarantine`: restrict the device to the update channel (its
/// session is closed; it reconnects with the quarantine policy).
#[utoipa::path(post, path = "/api/v1/devices/{id}/quarantine", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    responses((status = 200, description = "Quarantined", body = super::openapi::QuarantineJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn quarantine(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<(AxumExt<AuditNote>, Json<serde_json::Value>), ApiError> {
    set_quarantine(&core, &id, true).await
}

/// `DELETE /api/v1/devices/{id}/quarantine`: lift the restriction.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/quarantine", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    responses((status = 200, description = "Released from quarantine", body = super::openapi::QuarantineJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn release(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<(AxumExt<AuditNote>, Json<serde_json::Value>), ApiError> {
    set_quarantine(&core, &id, false).await
}

pub(crate) async fn set_quarantine(
    core: &Core,
    id: &str,
    on: bool,
) -> Result<(AxumExt<AuditNote>, Json<serde_json::Value>), ApiError> {
    device_or_404(core, id).await?;
    core.store.set_quarantined(id, on).await?;
    let closed = core.kick(id).await.unwrap_or(false);
    let note = format!(
        "{}; {}",
        if on {
            "quarantined (update channel only)"
        } else {
            "released from quarantine"
        },
        if closed {
            "session closed to apply the new policy"
        } else {
            "no open session"
        }
    );
    Ok((
        axum::Extension(AuditNote(note)),
        Json(serde_json::json!({ "device_id": id, "quarantined": on, "session_closed": closed })),
    ))
}

/// `POST /api/v1/devices/{id}/heal`: heal this quarantined device as the heal policy says: a
/// device whose measurement is the last good release's already gets the signed
/// reboot-and-reattest command (202, `heal: reattest`); any other a campaign of the last good
/// release (201, `heal: campaign`). Once it attests the good measurement it goes on probation,
/// then leaves quarantine.
#[utoipa::path(post, path = "/api/v1/devices/{id}/heal", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    responses((status = 201, description = "The healing campaign (`heal: campaign`, with the campaign's fields)", body = crate::response::Healing), (status = 202, description = "The reboot-and-reattest command was sent (`heal: reattest`)", body = crate::response::Healing), (status = 404, description = "No such object", body = super::openapi::ErrorJson), (status = 409, description = "A reattest is pending already", body = super::openapi::ErrorJson), (status = 422, description = "Refused by the service's rules", body = super::openapi::ErrorJson)))]
pub(crate) async fn heal(
    State(core): State<Arc<Core>>,
    axum::Extension(op): axum::Extension<castellan_store::Operator>,
    Path(id): Path<String>,
) -> Result<
    (
        axum::http::StatusCode,
        AxumExt<AuditNote>,
        Json<crate::response::Healing>,
    ),
    ApiError,
> {
    let (status, note, h) = heal_device(&core, &id, &op.name).await?;
    Ok((status, axum::Extension(AuditNote(note)), Json(h)))
}

/// Heal device `id` for `actor`: what `POST /api/v1/devices/{id}/heal` does (and the console's
/// heal): a reboot-and-reattest when its measurement is already the good one, the heal campaign
/// of the last good release otherwise. Returns the status to answer with, the audit note and
/// what was started.
pub(crate) async fn heal_device(
    core: &Arc<Core>,
    id: &str,
    actor: &str,
) -> Result<(axum::http::StatusCode, String, crate::response::Healing), ApiError> {
    let h = crate::response::heal(core, id, actor).await?;
    let (status, note) = match &h {
        crate::response::Healing::Campaign(c) => (
            axum::http::StatusCode::CREATED,
            format!(
                "heal of {id}: campaign {} of release {} (the last good release of its class)",
                c.campaign_id, c.release_id
            ),
        ),
        crate::response::Healing::Reattest(r) => (
            axum::http::StatusCode::ACCEPTED,
            format!(
                "heal of {id}: measurement good, reboot-and-reattest command sent (token due by \
                 {})",
                r.deadline
            ),
        ),
    };
    Ok((status, note, h))
}

/// `POST /api/v1/devices/{id}/decommission`: ask for the signed decommission (202 while it
/// waits for a second operator, 200 once the command is sent; the proof of erasure arrives
/// later, see `response::decommission`).
#[utoipa::path(post, path = "/api/v1/devices/{id}/decommission", tag = "devices", params(("id" = String, Path, description = "The device id (its serial)")),
    responses((status = 200, description = "The signed decommission command was sent", body = crate::response::decommission::Requested), (status = 202, description = "Recorded; a second operator must ask too", body = crate::response::decommission::Requested), (status = 404, description = "No such object", body = super::openapi::ErrorJson), (status = 409, description = "Not onboarded, already decommissioned, or already pending", body = super::openapi::ErrorJson)))]
pub(crate) async fn decommission(
    State(core): State<Arc<Core>>,
    axum::Extension(op): axum::Extension<castellan_store::Operator>,
    Path(id): Path<String>,
) -> Result<
    (
        axum::http::StatusCode,
        AxumExt<AuditNote>,
        Json<crate::response::decommission::Requested>,
    ),
    ApiError,
> {
    let (status, note, r) = decommission_device(&core, &id, &op.name).await?;
    Ok((status, axum::Extension(AuditNote(note)), Json(r)))
}

/// `operator` asks to decommission device `id`: what `POST /api/v1/devices/{id}/decommission`
/// does (and the console's decommission). Returns the answer's status, the audit note and the
/// request's state.
pub(crate) async fn decommission_device(
    core: &Arc<Core>,
    id: &str,
    operator: &str,
) -> Result<
    (
        axum::http::StatusCode,
        String,
        crate::response::decommission::Requested,
    ),
    ApiError,
> {
    use crate::response::decommission::{DecommissionError as E, Requested, request};
    let r = request(core, id, operator).await.map_err(|e| {
        let code = e.code();
        let inner = match &e {
            E::UnknownDevice(_) => ApiError::NotFound(e.to_string()),
            E::NotOnboarded(_) | E::AlreadyDecommissioned(_) | E::Pending(_) => {
                ApiError::Conflict(e.to_string())
            }
            E::Sign(_) | E::Send(_) | E::Store(_) => ApiError::Internal(e.to_string()),
        };
        ApiError::coded(code, inner)
    })?;
    let (status, note) = match &r {
        Requested::AwaitingApproval { requested_by, .. } => (
            axum::http::StatusCode::ACCEPTED,
            format!(
                "decommission of {id} requested by {requested_by}: awaiting a second decommissioner"
            ),
        ),
        Requested::Sent {
            started,
            requested_by,
            approved_by,
        } => (
            axum::http::StatusCode::OK,
            format!(
                "decommission of {id} requested by {requested_by}, approved by {approved_by}: \
                 signed command sent, proof due by {}",
                started.deadline
            ),
        ),
    };
    Ok((status, note, r))
}
