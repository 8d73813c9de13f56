//! Alert and response-policy endpoints: readers list alerts; operators acknowledge and resolve
//! them; an admin sets a class's response policy. The analysis that raises alerts is
//! `crate::response`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use castellan_store::{AlertState, Operator, ResponsePolicy, unix_now};
use serde::Deserialize;

use super::{ApiError, AuditNote};
use crate::core::Core;
use crate::protocol::{AlertJson, ResponsePolicyJson};
use crate::response::{alert_json, default_policy};

/// Query of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// Only alerts in this state.
    state: Option<String>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<u32>,
}

/// `GET /api/v1/alerts[?state=open|acknowledged|resolved][&limit=N]`: newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, description = "Alerts, newest first", body = Vec<AlertJson>), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson)))]
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Vec<AlertJson>>, ApiError> {
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(AlertState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown alert state {s:?}: open, acknowledged or resolved"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let alerts = core.store.alerts(state, limit).await?;
    Ok(Json(alerts.into_iter().map(alert_json).collect()))
}

/// `POST /api/v1/alerts/{id}/acknowledge`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path, description = "The alert id")),
    responses((status = 200, description = "The alert, acknowledged", body = AlertJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson)))]
pub(crate) async fn acknowledge(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<(Extension<AuditNote>, Json<AlertJson>), ApiError> {
    move_alert(&core, &op, &id, AlertState::Acknowledged).await
}

/// `POST /api/v1/alerts/{id}/resolve`.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = String, Path, description = "The alert id")),
    responses((status = 200, description = "The alert, resolved", body = AlertJson), (status = 404, description = "No such object", body = super::openapi::ErrorJson), (status = 409, description = "Conflict with the current state", body = super::openapi::ErrorJson)))]
pub(crate) async fn resolve(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(id): Path<String>,
) -> Result<(Extension<AuditNote>, Json<AlertJson>), ApiError> {
    move_alert(&core, &op, &id, AlertState::Resolved).await
}

/// Move alert `id` to `to` as `op`: what acknowledge and resolve do, with the audit note.
pub(crate) async fn move_alert(
    core: &Core,
    op: &Operator,
    id: &str,
    to: AlertState,
) -> Result<(Extension<AuditNote>, Json<AlertJson>), ApiError> {
    let Some(before) = core.store.alert(id).await? else {
        return Err(ApiError::NotFound(format!("no alert {id}")));
    };
    if !core
        .store
        .set_alert_state(id, to, &op.name, unix_now())
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "alert {id} is {}: a resolved alert stays resolved",
            before.state.as_str()
        )));
    }
    let after = core
        .store
        .alert(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id}")))?;
    let note = format!(
        "alert {id} {} by {} (was {}): {}",
        to.as_str(),
        op.name,
        before.state.as_str(),
        before.summary
    );
    Ok((Extension(AuditNote(note)), Json(alert_json(after))))
}

fn policy_json(p: ResponsePolicy) -> ResponsePolicyJson {
    ResponsePolicyJson {
        device_class: p.device_class,
        auto_quarantine: p.auto_quarantine,
        max_quarantines_per_hour: p.max_quarantines_per_hour,
        updated_by: p.updated_by,
    }
}

/// `GET /api/v1/policies/{class}`: the class's response policy (the default if none is set).
#[utoipa::path(get, path = "/api/v1/policies/{class}", tag = "alerts", params(("class" = String, Path, description = "The device class")),
    responses((status = 200, description = "The response policy", body = ResponsePolicyJson)))]
pub(crate) async fn get_policy(
    State(core): State<Arc<Core>>,
    Path(class): Path<String>,
) -> Result<Json<ResponsePolicyJson>, ApiError> {
    let p = core
        .store
        .response_policy(&class)
        .await?
        .unwrap_or_else(|| default_policy(&class));
    Ok(Json(policy_json(p)))
}

/// `PUT /api/v1/policies/{class}` `{auto_quarantine, max_quarantines_per_hour}`.
#[utoipa::path(put, path = "/api/v1/policies/{class}", tag = "alerts", params(("class" = String, Path, description = "The device class")), request_body = ResponsePolicyJson,
    responses((status = 200, description = "The policy set", body = ResponsePolicyJson), (status = 400, description = "Invalid request", body = super::openapi::ErrorJson)))]
pub(crate) async fn set_policy(
    State(core): State<Arc<Core>>,
    Extension(op): Extension<Operator>,
    Path(class): Path<String>,
    body: Bytes,
) -> Result<(Extension<AuditNote>, Json<ResponsePolicyJson>), ApiError> {
    let req: ResponsePolicyJson = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the policy is not valid JSON: {e}")))?;
    if !req.device_class.is_empty() && req.device_class != class {
        return Err(ApiError::BadRequest(format!(
            "the body names class {:?}, the path {class:?}",
            req.device_class
        )));
    }
    let p = ResponsePolicy {
        device_class: class.clone(),
        auto_quarantine: req.auto_quarantine,
        max_quarantines_per_hour: req.max_quarantines_per_hour,
        updated_at: unix_now(),
        updated_by: op.name.clone(),
    };
    core.store.set_response_policy(&p).await?;
    let note = format!(
        "response policy of {class}: automatic quarantine {}, at most {} an hour",
        if p.auto_quarantine { "on" } else { "off" },
        p.max_quarantines_per_hour
    );
    Ok((Extension(AuditNote(note)), Json(policy_json(p))))
}
