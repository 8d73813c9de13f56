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
pub(crate) async fn pause(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "pause", &op).await
}

/// `POST /api/v1/campaigns/{id}/resume`.
pub(crate) async fn resume(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "resume", &op).await
}

/// `POST /api/v1/campaigns/{id}/abort`.
pub(crate) async fn abort(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<Answer, ApiError> {
    act(&core, &id, "abort", &op).await
}

/// `POST /api/v1/campaigns/{id}/rollback {"release_id"}`: answers the new campaign.
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
