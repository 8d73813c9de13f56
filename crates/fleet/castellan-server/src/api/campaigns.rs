//! Campaign endpoints: create (release-manager), list and show (every device reader), and the
//! release manager's pause, resume, abort and rollback. The rules live in the campaign engine
//! ([`crate::campaign`]); these handlers parse, call it and describe the change for the audit
//! log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use castellan_store::Operator;

use super::{ApiError, AuditNote};
use crate::campaign;
use crate::core::Core;
use crate::protocol::{CampaignJson, CampaignRequest, RollbackRequest};

type Answer = (StatusCode, Extension<AuditNote>, Json<CampaignJson>);

fn answer(status: StatusCode, note: String, c: CampaignJson) -> Answer {
    (status, Extension(AuditNote(note)), Json(c))
}

/// `POST /api/v1/campaigns`.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = CampaignRequest,
    responses((status = 201, description = "The campaign, started", body = CampaignJson), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson), (status = 422, description = "Refused by the service's rules", body = super::openapi::ErrorJson)))]
pub(crate) async fn create(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let req: CampaignRequest = super::error::parse_json(&body)?;
    super::check_name("device class", &req.device_class)?;
    let c = campaign::create(&core, &req, &op.name).await?;
    let note = format!(
        "campaign {} created: release {} to {} devices of class {} (canary {}, waves {})",
        c.campaign_id,
        c.release_id,
        c.devices.len(),
        c.device_class,
        c.canary,
        c.waves.join(" ")
    );
    Ok(answer(StatusCode::CREATED, note, c))
}

/// `GET /api/v1/campaigns`.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    responses((status = 200, description = "Every campaign", body = Vec<CampaignJson>)))]
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
) -> Result<Json<Vec<CampaignJson>>, ApiError> {
    let mut out = Vec::new();
    for c in core.store.list_campaigns().await? {
        out.push(campaign::campaign_json(&core, &c).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/campaigns/{id}`.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = String, Path, description = "The campaign id")),
    responses((status = 200, description = "The campaign and its devices", body = CampaignJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson)))]
pub(crate) async fn get_one(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<CampaignJson>, ApiError> {
    Ok(Json(campaign::view(&core, &id).await?))
}

async fn act(core: &Core, id: &str, action: &str, op: &Operator) -> Result<Answer, ApiError> {
    let c = campaign::act(core, id, action, &op.name).await?;
    let note = format!("campaign {id}: {action} (now {})", c.state);
    Ok(answer(StatusCode::OK, note, c))
}

/// `POST /api/v1/campaigns/{id}/pause`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns", params(("id" = String, Path, description = "The campaign id")),
    responses((status = 200, description = "Paused", body = CampaignJson), (status = 404, description = "No such campaign", body = super::openapi::ErrorJson), (status = 409, description = "Not in a state that allows it", body = super::openapi::ErrorJson)))]
pub(crate) async fn pause(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "pause", &op).await
}

/// `POST /api/v1/campaigns/{id}/resume`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns", params(("id" = String, Path, description = "The campaign id")),
    responses((status = 200, description = "Resumed", body = CampaignJson), (status = 404, description = "No such campaign", body = super::openapi::ErrorJson), (status = 409, description = "Not in a state that allows it", body = super::openapi::ErrorJson)))]
pub(crate) async fn resume(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "resume", &op).await
}

/// `POST /api/v1/campaigns/{id}/abort`.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/abort", tag = "campaigns", params(("id" = String, Path, description = "The campaign id")),
    responses((status = 200, description = "Aborted", body = CampaignJson), (status = 404, description = "No such campaign", body = super::openapi::ErrorJson), (status = 409, description = "Not in a state that allows it", body = super::openapi::ErrorJson)))]
pub(crate) async fn abort(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "abort", &op).await
}

/// `POST /api/v1/campaigns/{id}/rollback {"release_id"}`: answers the new campaign.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/rollback", tag = "campaigns", params(("id" = String, Path, description = "The campaign id")),
    request_body = RollbackRequest,
    responses((status = 201, description = "The rollback campaign", body = CampaignJson), (status = 404, description = "No such campaign", body = super::openapi::ErrorJson), (status = 409, description = "Not in a state that allows it", body = super::openapi::ErrorJson),
        (status = 422, description = "Refused by the service's rules", body = super::openapi::ErrorJson)))]
pub(crate) async fn rollback(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, ApiError> {
    let req: RollbackRequest = super::error::parse_json(&body)?;
    let c = campaign::rollback(&core, &id, &req.release_id, &op.name).await?;
    let note = format!(
        "campaign {id} rolled back by campaign {}: release {} to {} devices",
        c.campaign_id,
        c.release_id,
        c.devices.len()
    );
    Ok(answer(StatusCode::CREATED, note, c))
}
