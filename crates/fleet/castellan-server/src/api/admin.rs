//! Service endpoints: health, the CA bundle, operators, and the audit log.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use castellan_store::{Decision, Role, StoreError, unix_now};
use serde::{Deserialize, Serialize};

use super::{ApiError, AuditNote};
use crate::core::Core;

/// `GET /api/v1/health`.
#[utoipa::path(get, path = "/api/v1/health", tag = "service", operation_id = "api.health",
    responses((status = 200, description = "The service is up", body = super::openapi::HealthJson)))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /api/v1/pki/ca`: root, manufacturer and operational CA certificates, PEM.
#[utoipa::path(get, path = "/api/v1/pki/ca", tag = "service", operation_id = "api.pki.ca",
    responses((status = 200, description = "Root, manufacturer and operational CA certificates", body = String, content_type = "application/x-pem-file")))]
pub(crate) async fn ca_bundle(State(core): State<Arc<Core>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        crate::server::ca_bundle_pem(&core.pki),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOperator {
    /// The operator's name.
    name: String,
    /// admin, release-manager, operator or auditor.
    role: String,
}

/// `POST /api/v1/operators`: create an operator; its token is in the answer, once.
#[utoipa::path(post, path = "/api/v1/operators", tag = "operators", request_body = NewOperator,
    responses((status = 201, description = "Created; the token is shown once", body = super::openapi::OperatorCreatedJson),
        (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson)))]
pub(crate) async fn create_operator(
    State(core): State<Arc<Core>>,
    body: Bytes,
) -> Result<
    (
        StatusCode,
        axum::Extension<AuditNote>,
        Json<serde_json::Value>,
    ),
    ApiError,
> {
    let req: NewOperator = super::error::parse_json(&body)?;
    super::factory::check_name("operator name", &req.name)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown role {:?} (admin, release-manager, operator, auditor)",
            req.role
        ))
    })?;
    let now = unix_now();
    core.store.create_operator(&req.name, role, now).await?;
    let token = core.store.issue_token(&req.name, "api", now, None).await?;
    Ok((
        StatusCode::CREATED,
        axum::Extension(AuditNote(format!(
            "operator {} created with role {role}",
            req.name
        ))),
        Json(serde_json::json!({ "name": req.name, "role": role.as_str(), "token": token })),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Entries after this sequence number.
    after: Option<u64>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<u32>,
}

/// One audit entry as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntryJson {
    /// Sequence number.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// "allowed" or "refused".
    pub decision: String,
    /// Why.
    pub reason: String,
    /// The refusal's stable machine code, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The entry's hash, hex.
    pub hash: String,
}

/// `GET /api/v1/audit?after=SEQ&limit=N` (oldest first, default 100, at most 1,000).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(Page),
    responses((status = 200, description = "Audit entries, oldest first", body = Vec<AuditEntryJson>)))]
pub(crate) async fn audit_list(
    State(core): State<Arc<Core>>,
    Query(p): Query<Page>,
) -> Result<Json<Vec<AuditEntryJson>>, ApiError> {
    let entries = core
        .store
        .audit_entries(p.after.unwrap_or(0), p.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntryJson {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                decision: match e.decision {
                    Decision::Allowed => "allowed",
                    Decision::Refused => "refused",
                }
                .into(),
                reason: e.reason,
                code: e.code,
                hash: hex::encode(e.hash),
            })
            .collect(),
    ))
}

/// `GET /api/v1/audit/verify`: `{"intact": true, "entries": N, ...}` or `{"intact": false,
/// "violation": "..."}` naming the modified, removed or reordered entry.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The hash chain's verification", body = super::openapi::AuditVerifyJson)))]
pub(crate) async fn audit_verify(
    State(core): State<Arc<Core>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match core.store.verify_audit().await {
        Ok(r) => Ok(Json(serde_json::json!({
            "intact": true,
            "entries": r.count,
            "head_hash": hex::encode(r.head_hash),
            "anchor_checked": r.anchor_checked,
        }))),
        Err(StoreError::AuditTampered(v)) => Ok(Json(serde_json::json!({
            "intact": false,
            "violation": v.to_string(),
        }))),
        Err(e) => Err(e.into()),
    }
}
